"""The tinycabac command line, run as a user would (a subprocess per call)."""
from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import with_header_crc

import tinycabac
from tinycabac import codec, modelfile
from tinycabac.container import FORMAT_VERSION
from tinycabac.models import default_model_path

INT8_MODEL = default_model_path("int8")
FLOAT_MODEL = default_model_path("float32")
REPO = Path(__file__).resolve().parents[1]


def run(*args, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "tinycabac.cli", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_encode_without_input_uses_the_bundled_model_and_round_trips(tmp_path):
    result = run("encode", cwd=tmp_path)
    stream = tmp_path / "digits_int8.tcb"
    assert stream.is_file() and "bits/w" in result.stdout and "dense1/weights" in result.stdout
    run("decode", stream, "-o", "rebuilt.tflite", cwd=tmp_path)
    assert (tmp_path / "rebuilt.tflite").read_bytes() == INT8_MODEL.read_bytes()
    verify = run("verify", stream, INT8_MODEL, cwd=tmp_path)
    assert verify.stdout.startswith("OK") and "bit-exact" in verify.stdout
    assert "the device rebuilds the same .tflite" in verify.stdout  # decoder_c/tflite through cffi


def test_size_target_from_the_command_line(tmp_path):
    run("encode", FLOAT_MODEL, "-o", "s.tcb", "--max-size", "9000", cwd=tmp_path)
    assert 8000 < (tmp_path / "s.tcb").stat().st_size <= 9000
    failing = run("encode", FLOAT_MODEL, "-o", "t.tcb", "--max-size", "900", cwd=tmp_path, check=False)
    assert failing.returncode != 0 and "cannot fit 900 bytes" in failing.stderr
    assert len(failing.stderr.strip().splitlines()) == 1 and not (tmp_path / "t.tcb").exists()


def test_float_model_quantized_with_snr_target_and_info_table(tmp_path):
    run("encode", FLOAT_MODEL, "-o", "f.tcb", "--snr-db", "35", "--per-channel", cwd=tmp_path)
    info = run("info", "f.tcb", "--source", FLOAT_MODEL, cwd=tmp_path).stdout
    header = info.splitlines()[0].split()
    assert header == ["tensor", "elements", "dtype", "mode", "pred", "bytes", "bits/w", "ratio", "SNR", "dB"]
    rows = [line.split() for line in info.splitlines() if line.startswith("dense1/weights")]
    assert rows and rows[0][3] == "quantized" and float(rows[0][-1]) >= 35.0
    # --per-channel: a step per output channel of each filter, one for a bias
    steps = {t.name: len(t.steps) for t in tinycabac.info((tmp_path / "f.tcb").read_bytes()) if t.steps}
    assert steps["dense1/weights"] == 48 and steps["conv/filter"] == 16 and steps["dense1/bias"] == 1
    verify = run("verify", "f.tcb", FLOAT_MODEL, "--min-snr", "35", cwd=tmp_path)
    assert "lowest SNR" in verify.stdout and "the device rebuilds the same .tflite" in verify.stdout
    failing = run("verify", "f.tcb", FLOAT_MODEL, "--min-snr", "60", cwd=tmp_path, check=False)
    assert failing.returncode == 1 and "MISMATCH" in failing.stdout
    run("decode", "f.tcb", "-o", "f.tflite", cwd=tmp_path)
    assert modelfile.read_model(tmp_path / "f.tflite").kind == "tflite"


def test_trellis_quantizer_from_the_command_line(tmp_path):
    run("encode", FLOAT_MODEL, "-o", "t.tcb", "--snr-db", "35", "--quantizer", "trellis", cwd=tmp_path)
    info = run("info", "t.tcb", "--source", FLOAT_MODEL, cwd=tmp_path).stdout
    rows = [line.split() for line in info.splitlines() if line.startswith("dense1/weights")]
    assert rows and rows[0][3] == "quantized+dq" and float(rows[0][-1]) >= 35.0
    run("verify", "t.tcb", FLOAT_MODEL, "--min-snr", "35", cwd=tmp_path)


def test_max_history_option_bounds_prediction(tmp_path):
    rows = np.tile(np.arange(-60, 60, dtype=np.int8), (40, 1))  # every row repeats: prediction pays
    np.savez(tmp_path / "rows.npz", w=rows)
    run("encode", "rows.npz", "-o", "auto.tcb", cwd=tmp_path)
    run("encode", "rows.npz", "-o", "off.tcb", "--max-history", "0", cwd=tmp_path)
    assert codec.info((tmp_path / "auto.tcb").read_bytes())[0].history == 120
    assert codec.info((tmp_path / "off.tcb").read_bytes())[0].history == 0
    assert (tmp_path / "auto.tcb").stat().st_size < (tmp_path / "off.tcb").stat().st_size
    table = run("info", "auto.tcb", cwd=tmp_path).stdout
    assert [line.split()[4] for line in table.splitlines() if line.startswith("w ")] == ["diff:120"]
    run("encode", "rows.npz", "-o", "scale.tcb", "--prediction", "scale", cwd=tmp_path)
    assert codec.info((tmp_path / "scale.tcb").read_bytes())[0].prediction == "scale"
    # working memory up to (65535 + 1) * 64 bytes (FORMAT 3.4), not one more
    bad = run("encode", "rows.npz", "-o", "bad.tcb", "--max-history", "4194305", cwd=tmp_path, check=False)
    assert bad.returncode != 0 and "history" in bad.stderr and not (tmp_path / "bad.tcb").exists()


def test_factor_prediction_from_the_command_line(tmp_path):
    """--prediction factors codes a low-rank tensor with factors (FORMAT 5.8),
    info names H and the rank, and --max-history bounds (H + 1) * rank."""
    rng = np.random.default_rng(3)
    low_rank = rng.standard_normal((64, 6)) @ rng.standard_normal((6, 96)) * 15 + rng.normal(size=(64, 96))
    np.savez(tmp_path / "head.npz", w=np.clip(np.rint(low_rank), -127, 127).astype(np.int8))
    run("encode", "head.npz", "-o", "f.tcb", "--prediction", "factors", cwd=tmp_path)
    info = codec.info((tmp_path / "f.tcb").read_bytes())[0]
    assert info.prediction == "factors" and info.history == 96 and info.work_size == 97 * info.rank
    table = run("info", "f.tcb", cwd=tmp_path).stdout
    assert [line.split()[4] for line in table.splitlines() if line.startswith("w ")] == [f"factors:96x{info.rank}"]
    run("encode", "head.npz", "-o", "small.tcb", "--prediction", "factors", "--max-history", "400", cwd=tmp_path)
    assert codec.info((tmp_path / "small.tcb").read_bytes())[0].work_size <= 400
    run("verify", "f.tcb", "head.npz", cwd=tmp_path)


def test_info_gives_the_packed_skeleton_its_own_ratio(tmp_path):
    """The packed tensor's row counts packed bytes; a line says what they hold."""
    stream = REPO / "tests" / "golden" / "digits_int8.tcb"
    skeleton = modelfile.decode_model(stream.read_bytes()).skeleton
    packed = next(t for t in codec.info(stream.read_bytes()) if t.name == modelfile.PACKED_SKELETON_NAME)
    line = run("info", stream, cwd=tmp_path).stdout.splitlines()[-1]
    assert line.startswith(f"skeleton: {len(skeleton)} bytes of the .tflite file besides its coded weights, "
                           f"LZ77-packed to {packed.elements} (FORMAT 3.6), coded in {packed.payload_bytes}: ")
    plain = run("info", REPO / "tests" / "golden" / "lossless_int8.tcb", cwd=tmp_path).stdout
    assert "skeleton:" not in plain
    document = json.loads(run("info", stream, "--json", cwd=tmp_path).stdout)
    assert (document["skeleton_bytes"], document["packed_skeleton_bytes"]) == (len(skeleton), packed.elements)


def test_info_json_describes_the_stream_for_scripts(tmp_path):
    run("encode", FLOAT_MODEL, "-o", "f.tcb", "--snr-db", "35", "--per-channel", cwd=tmp_path)
    stream = (tmp_path / "f.tcb").read_bytes()
    document = json.loads(run("info", "f.tcb", "--json", "--source", FLOAT_MODEL, cwd=tmp_path).stdout)
    summaries = codec.info(stream)
    assert document["format_version"] == stream[4] == FORMAT_VERSION and document["stream_bytes"] == len(stream)
    assert document["payload_bytes"] + document["container_bytes"] == len(stream)
    assert document["payload_bytes"] == sum(t.payload_bytes for t in summaries)
    assert document["history_bytes_needed"] == max(t.work_size for t in summaries)
    # float32 weights decode to 4 bytes each; the .tflite file rebuilds to its own size
    assert document["largest_tensor_bytes"] == max(4 * t.elements if t.dtype == "float32" else t.original_bytes
                                                   for t in summaries)
    assert document["tflite_file_bytes"] == FLOAT_MODEL.stat().st_size  # lossy, but the same file size
    assert document["tflite_places_bytes"] % 8 == 4
    tensors = document["tensors"]
    assert [t["name"] for t in tensors] == [t.name for t in summaries]
    for entry, summary in zip(tensors, summaries):
        assert entry["shape"] == list(summary.shape) and entry["payload_bytes"] == summary.payload_bytes
        assert entry["mode"] == summary.mode and entry["quantizer"] == summary.quantizer
    weights = next(t for t in tensors if t["name"] == "dense1/weights")
    assert weights["snr_db"] >= 35.0 and len(weights["steps"]) == weights["shape"][0]
    assert weights["tflite_name"] == "dense1/weights"  # short: coded under its own name
    skeleton = next(t for t in tensors if t["name"] == "__tflite_packed_skeleton__")
    assert skeleton["mode"] == "lossless" and "offset" in skeleton and "snr_db" not in skeleton
    assert "tflite_name" not in skeleton


def test_info_and_verify_name_the_tflite_tensors_coded_under_their_index(tmp_path):
    from test_tflite_io import named_dense_model

    long_name = "model/dense/MatMul;model/dense/BiasAdd/ReadVariableOp/resource"
    (tmp_path / "m.tflite").write_bytes(named_dense_model(long_name, "dense/bias"))
    encoded = run("encode", "m.tflite", "-o", "m.tcb", "--step", "0.001", cwd=tmp_path).stdout.splitlines()
    table = run("info", "m.tcb", cwd=tmp_path).stdout.splitlines()
    assert [line.split()[-1] for line in encoded if line.startswith("t1 ")] == [long_name]  # from the source model
    assert table[0].split()[-2:] == ["TFLite", "name"]
    rows = {line.split()[0]: line.split() for line in table[2:] if not line.startswith(("stream:", "skeleton:"))}
    assert rows["t1"][-1] == long_name and len(rows["dense/bias"]) == 9  # a kept name is not repeated
    document = json.loads(run("info", "m.tcb", "--json", cwd=tmp_path).stdout)
    assert {t["name"]: t.get("tflite_name") for t in document["tensors"]} == {
        "t1": long_name, "dense/bias": "dense/bias", "__tflite_packed_skeleton__": None, "__tflite_places__": None,
    }
    bundled = run("encode", INT8_MODEL, "-o", "b.tcb", cwd=tmp_path).stdout
    assert "TFLite name" not in bundled  # no column when every weight has its own name
    failing = run("verify", "m.tcb", "m.tflite", "--min-snr", "200", cwd=tmp_path, check=False)
    assert failing.returncode == 1 and f"MISMATCH t1 ({long_name}): SNR" in failing.stdout
    assert "MISMATCH dense/bias: SNR" in failing.stdout


@pytest.fixture(scope="module")
def long_named_stream(tmp_path_factory) -> bytes:
    from test_tflite_io import named_dense_model

    model = modelfile.model_from_bytes(named_dense_model("model/dense/MatMul;model/dense/BiasAdd", "dense/bias"))
    return modelfile.encode_model(model, step=2.0**-10)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(corruptions=st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=4),
       in_directory=st.booleans())
def test_info_of_a_damaged_tflite_stream_lists_it_or_says_why(tmp_path, capsys, long_named_stream,
                                                                corruptions, in_directory):
    """Finding the TFLite names decodes the skeleton and the places: damage
    there (or anywhere) must leave info listing the stream, or failing with
    one clear line, never a traceback."""
    from tinycabac import cli

    data = bytearray(long_named_stream)
    directory_end = 20 + int.from_bytes(data[8:12], "little")
    start, end = (20, directory_end) if in_directory else (directory_end, len(data))
    for position, value in corruptions:
        data[start + position % (end - start)] = value
    path = tmp_path / "damaged.tcb"
    path.write_bytes(with_header_crc(data))
    status = cli.main(["info", str(path)])
    out, err = capsys.readouterr()
    listed = (status, err) == (0, "") and out.startswith("tensor ")
    assert listed or in_directory and status == 1 and err.count("\n") == 1, (out, err)  # payloads: still listed


def test_info_json_reports_an_exact_reconstruction_as_inf(tmp_path):
    halves = np.arange(-20, 20, dtype=np.float32) * 0.5  # multiples of the step: reconstructed exactly
    np.savez(tmp_path / "halves.npz", w=halves)
    run("encode", "halves.npz", "-o", "h.tcb", "--step", "0.5", cwd=tmp_path)
    out = run("info", "h.tcb", "--json", "--source", "halves.npz", cwd=tmp_path).stdout
    assert json.loads(out)["tensors"][0]["snr_db"] == "inf"
    assert json.loads(run("info", "h.tcb", "--json", cwd=tmp_path).stdout)["tensors"][0]["snr_db"] is None


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path):
    many = {f"t{i}": np.full(3, i % 100, np.int8) for i in range(1500)}  # JSON far larger than a pipe
    (tmp_path / "many.tcb").write_bytes(tinycabac.encode(many))
    reader = subprocess.Popen([sys.executable, "-m", "tinycabac.cli", "info", "--json", "many.tcb"], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout.read(10) == b'{\n  "forma'
    reader.stdout.close()
    assert reader.wait(timeout=120) == 1 and reader.stderr.read() == b""


def test_verify_reports_a_different_model(tmp_path):
    run("encode", INT8_MODEL, "-o", "a.tcb", cwd=tmp_path)
    other = modelfile.read_model(INT8_MODEL)
    other.tensors["dense2/weights"] = other.tensors["dense2/weights"].copy()
    other.tensors["dense2/weights"][0, 0] ^= 1
    (tmp_path / "other.tflite").write_bytes(other.to_bytes())
    result = run("verify", "a.tcb", "other.tflite", cwd=tmp_path, check=False)
    assert result.returncode == 1 and "dense2/weights" in result.stdout


def test_a_float_tensor_of_another_shape_is_a_mismatch_not_a_numpy_error(tmp_path):
    np.savez(tmp_path / "f.npz", v=np.linspace(-1, 1, 12, dtype=np.float32))
    np.savez(tmp_path / "other.npz", v=np.ones((3, 4), np.float32))
    run("encode", "f.npz", "-o", "f.tcb", cwd=tmp_path)
    result = run("verify", "f.tcb", "other.npz", cwd=tmp_path, check=False)
    assert result.returncode == 1 and result.stdout == "MISMATCH v: shape (12,) != (3, 4)\n" and not result.stderr
    info = run("info", "f.tcb", "--source", "other.npz", cwd=tmp_path).stdout  # no SNR for it, no error
    assert info.splitlines()[2].split()[0] == "v" and info.splitlines()[2].rstrip().endswith("?")


def test_npz_models(tmp_path):
    arrays = {"w": np.arange(-60, 60, dtype=np.int8).reshape(10, 12), "f": np.linspace(-1, 1, 50, dtype=np.float32)}
    np.savez(tmp_path / "m.npz", **arrays)
    run("encode", "m.npz", "--step", "0.01", cwd=tmp_path)
    run("decode", "m.tcb", "-o", "back.npz", cwd=tmp_path)
    with np.load(tmp_path / "back.npz") as back:
        assert np.array_equal(back["w"], arrays["w"])
        assert np.max(np.abs(back["f"] - arrays["f"])) <= 0.005 + 1e-7


def test_export_c_writes_a_header_and_source(tmp_path):
    run("encode", "-o", "m.tcb", cwd=tmp_path)
    run("export-c", "m.tcb", "-o", "model_stream", "--symbol", "model_stream", cwd=tmp_path)
    source = (tmp_path / "model_stream.c").read_text()
    header = (tmp_path / "model_stream.h").read_text()
    assert "const unsigned char model_stream[]" in source and "model_stream_len" in header
    refused = run("export-c", "m.tcb", "-o", "model_stream", cwd=tmp_path, check=False)
    assert refused.returncode == 1 and "exists" in refused.stderr


def test_update_encode_and_apply(tmp_path):
    base = modelfile.read_model(INT8_MODEL)
    new = modelfile.read_model(INT8_MODEL)
    new.tensors["dense1/weights"] = np.clip(new.tensors["dense1/weights"].astype(int) + (np.arange(12288).reshape(48, 256) % 3 == 0), -127, 127).astype(np.int8)
    (tmp_path / "new.tflite").write_bytes(new.to_bytes())
    run("encode", "--base", INT8_MODEL, "new.tflite", "-o", "update.tcb", cwd=tmp_path)
    assert (tmp_path / "update.tcb").stat().st_size < 0.5 * len(tinycabac.encode(new.stream_tensors()))
    run("apply", INT8_MODEL, "update.tcb", "-o", "applied.tflite", cwd=tmp_path)
    assert (tmp_path / "applied.tflite").read_bytes() == new.to_bytes()
    wrong = run("apply", "new.tflite", "update.tcb", "-o", "x.tflite", cwd=tmp_path, check=False)
    assert wrong.returncode == 1 and "different base" in wrong.stderr and not (tmp_path / "x.tflite").exists()
    assert base.kind == "tflite"


def test_an_update_stream_needs_apply_not_decode(tmp_path):
    """decode, verify and info --source of an update stream say, in one line
    and without writing anything, which command takes it."""
    run("encode", "--base", INT8_MODEL, INT8_MODEL, "-o", "u.tcb", cwd=tmp_path)
    for args in (("decode", "u.tcb", "-o", "x.tflite"), ("verify", "u.tcb", INT8_MODEL),
                 ("info", "u.tcb", "--source", INT8_MODEL)):
        refused = run(*args, cwd=tmp_path, check=False)
        assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
        assert "u.tcb is an update stream" in refused.stderr and "tinycabac apply BASE u.tcb" in refused.stderr
    assert not (tmp_path / "x.tflite").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (("encode", "missing.tflite"), "cannot read missing.tflite"),
        (("decode", "missing.tcb"), "cannot read stream missing.tcb"),
        (("info", "junk.bin"), "not a tinycabac stream"),
        (("info", "--json", "truncated.tcb"), "truncated"),
        (("decode", "truncated.tcb"), "truncated"),
        (("encode", "junk.bin"), "neither a .tflite flatbuffer nor an .npz archive"),
        (("encode", "--step", "-1", "float.npz"), "positive finite"),
        (("encode", "nan.npz"), "NaN or infinity"),
        (("encode", "obj.npz"), "unsupported dtype"),
        (("encode", "reserved.npz"), "'__tflite_skeleton__': names starting with '__' are reserved"),
    ],
)
def test_bad_input_is_one_clear_line_and_a_nonzero_exit(tmp_path, args, message):
    (tmp_path / "junk.bin").write_bytes(b"\x00junk" * 10)
    (tmp_path / "truncated.tcb").write_bytes(tinycabac.encode({"a": np.arange(100, dtype=np.int8)})[:40])
    np.savez(tmp_path / "float.npz", w=np.ones(4, np.float32))
    np.savez(tmp_path / "nan.npz", w=np.array([1.0, np.nan], np.float32))
    np.savez(tmp_path / "obj.npz", w=np.ones(3, np.float64))
    np.savez(tmp_path / "reserved.npz", __tflite_skeleton__=np.zeros(3, np.uint8))  # would pose as a .tflite
    result = run(*args, cwd=tmp_path, check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinycabac: error:") and message in lines[0], result.stderr


def npz_archive(compressed: bool) -> bytes:
    archive = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(archive, w=np.arange(100, dtype=np.int8),
                                                      b=np.ones((30, 3), np.float32))  # fmt: skip
    return archive.getvalue()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans(), st.lists(st.tuples(st.integers(0, 2**31), st.integers(0, 255)), min_size=1, max_size=6),
       st.integers(0, 2**31))  # fmt: skip
def test_a_damaged_npz_archive_loads_or_is_a_model_file_error(compressed, corruptions, cut):
    """zipfile and numpy raise half a dozen kinds of exception on a mangled
    archive (unsupported method, encryption flag, short member, bad deflate
    stream); the CLI must still print one line, not a traceback."""
    data = bytearray(npz_archive(compressed))
    for position, value in corruptions:
        data[position % len(data)] = value
    data = data[: max(4, cut % (len(data) + 1))]
    try:
        modelfile.model_from_bytes(bytes(data))
    except modelfile.ModelFileError:
        pass


def test_an_archive_asking_for_encryption_is_one_clear_line(tmp_path):
    data = bytearray(npz_archive(False))
    data[data.index(b"PK\x01\x02") + 8] |= 1  # the first member's central-directory flags: encrypted
    (tmp_path / "locked.npz").write_bytes(bytes(data))
    result = run("encode", "locked.npz", "-o", "x.tcb", cwd=tmp_path, check=False)
    assert result.returncode == 1 and not (tmp_path / "x.tcb").exists()
    assert result.stderr.startswith("tinycabac: error: locked.npz: not a readable .npz archive") and \
        len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_tensor_claiming_more_elements_than_its_payload_holds_is_refused_before_allocation(tmp_path):
    """A damaged directory (CRC repaired) claims 2^31 - 1 int32 elements for a
    6-byte payload: refused before 8 GiB are asked for, so a machine with
    little memory, here a 3 GB address space, gets one line, not numpy's
    MemoryError traceback."""
    import resource

    from tinycabac.container import TensorEntry, write_stream

    honest = tinycabac.encode({"a": np.arange(5, dtype=np.int32)})
    payload = honest[-tinycabac.info(honest)[0].payload_bytes:]
    entry = TensorEntry("a", np.dtype(np.int32), (0x7FFFFFFF,), 0, payload, 0)
    (tmp_path / "huge.tcb").write_bytes(write_stream([entry]))

    def small_address_space():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    result = subprocess.run([sys.executable, "-m", "tinycabac.cli", "decode", "huge.tcb", "-o", "huge.npz"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120, preexec_fn=small_address_space)
    assert result.returncode == 1 and not (tmp_path / "huge.npz").exists()
    assert result.stderr == f"tinycabac: error: tensor 'a': 2147483647 elements in {len(payload)} bytes: corrupt payload\n"


def test_out_of_memory_is_one_clear_line(monkeypatch, capsys):
    from tinycabac import cli

    def too_big(args):
        raise MemoryError("Unable to allocate 8.00 GiB")

    monkeypatch.setattr(cli, "cmd_info", too_big)
    assert cli.main(["info", "x.tcb"]) == 1
    assert capsys.readouterr().err == "tinycabac: error: out of memory: Unable to allocate 8.00 GiB\n"


def test_a_failed_encode_leaves_no_file_and_keeps_an_existing_one(tmp_path):
    np.savez(tmp_path / "nan.npz", w=np.array([1.0, np.nan], np.float32))
    run("encode", "nan.npz", "-o", "out.tcb", cwd=tmp_path, check=False)
    assert not (tmp_path / "out.tcb").exists()
    (tmp_path / "out.tcb").write_bytes(b"precious")
    refused = run("encode", "-o", "out.tcb", cwd=tmp_path, check=False)
    assert refused.returncode == 1 and (tmp_path / "out.tcb").read_bytes() == b"precious"
    run("encode", "nan.npz", "-o", "out.tcb", "--force", cwd=tmp_path, check=False)
    assert (tmp_path / "out.tcb").read_bytes() == b"precious"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.tcb")] == []


def test_atomic_write_survives_a_failing_writer(tmp_path, monkeypatch):
    target = tmp_path / "model.tcb"
    target.write_bytes(b"old")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError):
        modelfile.write_atomic(target, b"new data")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.tcb"]


def test_atomic_write_keeps_links_and_never_replaces_a_pipe_or_device(tmp_path):
    import threading

    real = tmp_path / "models" / "m.tcb"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "current.tcb"
    link.symlink_to(real)
    modelfile.write_atomic(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    modelfile.write_atomic(fifo, b"streamed")
    reader.join(timeout=30)
    assert received == [b"streamed"] and fifo.is_fifo()


def test_sigterm_during_a_write_leaves_no_temporary_file(tmp_path):
    """SIGTERM unwinds like Ctrl-C: exit status 130, nothing half-written."""
    script = (
        "import os, signal, sys\n"
        "from tinycabac import cli\n"
        "os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGTERM)\n"
        "sys.exit(cli.main(['encode', '-o', 'out.tcb']))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 128 + signal.SIGTERM and "terminated" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_cli_restores_the_caller_s_sigterm_handler(tmp_path):
    from tinycabac import cli

    def mine(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        assert cli.main(["encode", "-q", "-o", str(tmp_path / "x.tcb")]) == 0
        assert signal.getsignal(signal.SIGTERM) is mine
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        assert cli.main(["info", str(tmp_path / "x.tcb")]) == 0
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_output_to_dev_stdout_through_a_pipe(tmp_path):
    """-o /dev/stdout is written in place, never replaced by a file."""
    result = subprocess.run(
        [sys.executable, "-m", "tinycabac", "encode", "-q", "-o", "/dev/stdout"],  # no --force: not a file
        cwd=tmp_path, capture_output=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == (REPO / "tests" / "golden" / "digits_int8.tcb").read_bytes()


def test_outputs_never_overwrite_an_input_and_follow_the_extension(tmp_path):
    model = tmp_path / "m.npz"
    np.savez(model, w=np.arange(100, dtype=np.int8))
    refused = run("encode", model, "-o", model, "--force", cwd=tmp_path, check=False)
    assert refused.returncode == 1 and "overwrite an input" in refused.stderr
    assert modelfile.read_model(model).kind == "npz"

    run("encode", "-o", "d.tcb", cwd=tmp_path)  # the bundled .tflite model
    run("decode", "d.tcb", "-o", "weights.npz", cwd=tmp_path)
    with np.load(tmp_path / "weights.npz") as archive:
        assert np.array_equal(archive["dense1/weights"], modelfile.read_model(INT8_MODEL).tensors["dense1/weights"])
    run("encode", "--base", INT8_MODEL, INT8_MODEL, "-o", "u.tcb", cwd=tmp_path)
    run("apply", INT8_MODEL, "u.tcb", "-o", "applied.npz", cwd=tmp_path)
    with np.load(tmp_path / "applied.npz") as archive:
        assert "dense1/weights" in archive.files
    run("encode", model, "-o", "a.tcb", cwd=tmp_path)
    arrays = run("decode", "a.tcb", "-o", "a.tflite", cwd=tmp_path, check=False)
    assert arrays.returncode == 1 and "not a .tflite model" in arrays.stderr
    assert not (tmp_path / "a.tflite").exists()


def test_info_warns_when_the_source_is_not_the_stream_s_model(tmp_path):
    run("encode", FLOAT_MODEL, "-o", "f.tcb", cwd=tmp_path)
    matched = run("info", "f.tcb", "--source", FLOAT_MODEL, cwd=tmp_path)
    assert matched.stderr == ""
    other = run("info", "f.tcb", "--source", INT8_MODEL, cwd=tmp_path)
    assert "warning:" in other.stderr and "is not the model this stream was made from" in other.stderr
    assert "dense1/weights" in other.stdout  # the table is still printed


def test_an_empty_npz_archive_is_named_as_such(tmp_path):
    np.savez(tmp_path / "empty.npz")
    result = run("encode", "empty.npz", cwd=tmp_path, check=False)
    assert result.returncode == 1 and "empty .npz archive" in result.stderr


@pytest.mark.parametrize("name", ["file", "allow_pickle", "a/b", "x.npy", "é"])
def test_decode_to_npz_keeps_every_name(tmp_path, name):
    """np.savez(**tensors) took "file" and "allow_pickle" as its own
    arguments: one crashed, the other wrote an empty archive."""
    tensors = {name: np.arange(20, dtype=np.int8), "w": np.ones(3, np.int16)}
    (tmp_path / "m.tcb").write_bytes(tinycabac.encode(tensors))
    run("decode", "m.tcb", "-o", "back.npz", cwd=tmp_path)
    with np.load(tmp_path / "back.npz") as back:
        assert back.files == list(tensors) and all(np.array_equal(back[n], a) for n, a in tensors.items())
    assert "OK" in run("verify", "m.tcb", "back.npz", cwd=tmp_path).stdout


def test_a_name_an_npz_archive_cannot_hold_is_refused_and_nothing_written(tmp_path):
    (tmp_path / "m.tcb").write_bytes(tinycabac.encode({"a\x00b": np.zeros(2, np.int8), "a\x00c": np.ones(2, np.int8)}))
    result = run("decode", "m.tcb", "-o", "back.npz", cwd=tmp_path, check=False)
    assert result.returncode == 1 and "cannot hold a NUL character" in result.stderr
    assert not (tmp_path / "back.npz").exists()


def _npz_member(header: dict, data: bytes) -> bytes:
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, header)
    return member.getvalue() + data


def test_npz_archives_np_load_would_misread_are_refused(tmp_path):
    """A member name twice (np.load keeps one array), and a header claiming
    far more data than its member holds (np.load allocates it first)."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as members, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the name it is told to write twice
        for value in (1, 2):
            members.writestr("a.npy", _npz_member({"descr": "|i1", "fortran_order": False, "shape": (3,)}, bytes([value] * 3)))
    (tmp_path / "twice.npz").write_bytes(archive.getvalue())
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as members:
        members.writestr("w.npy", _npz_member({"descr": "<f4", "fortran_order": False, "shape": (10**11,)}, bytes(16)))
    (tmp_path / "huge.npz").write_bytes(archive.getvalue())
    for name, message in (("twice.npz", "member 'a.npy' appears twice"), ("huge.npz", "claims 400000000000 bytes")):
        result = run("encode", name, cwd=tmp_path, check=False)
        assert result.returncode == 1 and message in result.stderr and len(result.stderr.splitlines()) == 1


def test_verify_compares_npz_arrays_not_archive_bytes(tmp_path):
    """A compressed or big-endian source decodes to the same arrays in a
    different file; verify judges the arrays (names, dtypes, values)."""
    np.savez_compressed(tmp_path / "packed.npz", w=np.arange(40, dtype=np.int8))
    np.savez(tmp_path / "big_endian.npz", w=np.arange(20, dtype=">i4"), f=np.linspace(-1, 1, 9).astype(">f4"))
    for name in ("packed", "big_endian"):
        run("encode", f"{name}.npz", "-o", f"{name}.tcb", "--step", "0.001", cwd=tmp_path)
        assert run("verify", f"{name}.tcb", f"{name}.npz", cwd=tmp_path).stdout.startswith("OK")


@pytest.mark.parametrize("coded, source, problem", [
    (np.int8, np.arange(-10, 10, dtype=np.float32), "w: decoded dtype int8 != float32"),
    (np.int8, np.arange(-10, 10, dtype=np.int16), "w: decoded dtype int8 != int16"),
    (np.float32, np.full(20, np.nan, np.float32), "w: the source holds NaN or infinity"),
])  # fmt: skip
def test_verify_refuses_a_source_of_another_dtype_or_with_nan(tmp_path, coded, source, problem):
    (tmp_path / "w.tcb").write_bytes(tinycabac.encode({"w": np.arange(-10, 10).astype(coded)}))
    np.savez(tmp_path / "source.npz", w=source)
    result = run("verify", "w.tcb", "source.npz", "--min-snr", "30", cwd=tmp_path, check=False)
    assert result.returncode == 1 and f"MISMATCH {problem}" in result.stdout


def test_info_json_names_snrs_json_cannot_hold(tmp_path):
    (tmp_path / "f.tcb").write_bytes(tinycabac.encode({"z": np.linspace(-1, 1, 20, dtype=np.float32),
                                                       "n": np.linspace(-1, 1, 20, dtype=np.float32)}))  # fmt: skip
    np.savez(tmp_path / "source.npz", z=np.zeros(20, np.float32), n=np.full(20, np.nan, np.float32))
    document = json.loads(run("info", "--json", "f.tcb", "--source", "source.npz", cwd=tmp_path).stdout)
    assert [t["snr_db"] for t in document["tensors"]] == ["-inf", "nan"]


def test_python_dash_m_tinycabac_runs_the_command_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "tinycabac", "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip()


def test_per_channel_leaves_tensors_with_too_many_channels_at_one_step(tmp_path):
    """The format allows 65536 steps per tensor: --per-channel gives a wider
    tensor one step, an explicit axis is refused, and no stream a decoder
    would refuse is ever written."""
    np.savez(tmp_path / "emb.npz", table=np.ones((70_000, 2), np.float32), w=np.ones((4, 3), np.float32))
    run("encode", "emb.npz", "-o", "emb.tcb", "--per-channel", cwd=tmp_path)
    steps = {t.name: len(t.steps) for t in tinycabac.info((tmp_path / "emb.tcb").read_bytes())}
    assert steps == {"table": 1, "w": 4}
    with pytest.raises(tinycabac.FormatError, match="65536 steps"):
        tinycabac.encode({"table": np.ones((70_000, 2), np.float32)}, axis=0)


def test_outputs_get_the_permissions_a_plain_write_would(tmp_path):
    fresh, kept = tmp_path / "fresh.tcb", tmp_path / "kept.tcb"
    kept.write_bytes(b"old")
    kept.chmod(0o600)
    previous = os.umask(0o027)
    try:
        modelfile.write_atomic(fresh, b"new")
        modelfile.write_atomic(kept, b"new")
    finally:
        os.umask(previous)
    assert fresh.stat().st_mode & 0o777 == 0o640  # 0o666 less the umask, not mkstemp's 0o600
    assert kept.stat().st_mode & 0o777 == 0o600 and kept.read_bytes() == b"new"


def test_a_failed_export_c_leaves_both_files_as_they_were(tmp_path, monkeypatch):
    from tinycabac import cli

    (tmp_path / "m.tcb").write_bytes(tinycabac.encode({"a": np.arange(100, dtype=np.int8)}))
    (tmp_path / "m.c").write_text("old source")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    assert cli.main(["export-c", "m.tcb", "--force"]) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.c", "m.tcb"]
    assert (tmp_path / "m.c").read_text() == "old source"


def test_demo_runs_end_to_end(tmp_path):
    result = run("demo", "--workdir", tmp_path / "demo", cwd=tmp_path)
    assert result.stdout.count("verify: OK") == 2
    assert result.stdout.count("the device's rebuild of the .tflite is identical") == 2
    assert "test accuracy: original" in result.stdout
    # the whole stream beside LZ compressors of the whole file, as well as the weights beside theirs
    assert result.stdout.count("whole file: tinycabac ") == 2 and result.stdout.count("weights only: tinycabac ") == 2


def test_every_argument_of_every_command_says_what_it_is_in_help():
    """`tinycabac CMD --help` explains each argument: decode's -o (which
    extensions, which default), export-c's prefix, demo's options."""
    import argparse

    from tinycabac.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    silent = [
        f"{name} {action.dest}"
        for name, parser in commands.choices.items()
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert silent == []
