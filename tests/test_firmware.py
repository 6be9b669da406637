"""The C decoder on Cortex-M: every QEMU board decodes what the host decodes.

For each QEMU env of firmware/platformio.ini (Cortex-M0, M3, M4F, M7) the
firmware is built offline with `pio run` and run under qemu-system-arm with
semihosting.  Builds are shared: one build per env embeds every valid stream
at once (TINYCABAC_STREAM takes a path list, os.pathsep-separated), a second
embeds the corrupted streams.  The firmware prints, per stream,

    stream <file> <bytes>
    tensor <name> <elements> crc32=<hex>   (one per tensor)
    tflite <bytes> crc32=<hex>             (a stream of a .tflite file, rebuilt
                                            on boards with the RAM for it)
    OK | FAIL <reason>

and the digests must equal zlib.crc32 of the host decoder's arrays, and of
the .tflite file the host rebuilds.

Needs pio (platformio==6.2.0 with scons==4.11.1), arm-none-eabi-gcc and
qemu-system-arm; they are skipped locally when missing, a failure under CI.
"""
from __future__ import annotations

import json
import os
import subprocess
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import tinycabac
from tinycabac.models import default_model_path
from tinycabac.modelfile import decode_model, encode_model, read_model

from conftest import golden_manifest, require_tool, with_header_crc

REPO = Path(__file__).resolve().parents[1]
FIRMWARE = REPO / "firmware"
BOARDS = REPO / "boards" / "platform" / "boards"
GOLDEN = REPO / "tests" / "golden"
# The bundled model stream the firmware embeds when TINYCABAC_STREAM is
# unset (firmware/scripts/embed_streams.py, DEFAULT_STREAM): the golden
# vector that is `tinycabac encode`'s output for the bundled int8 model.
DEFAULT_STREAM = GOLDEN / "digits_int8.tcb"

QEMU_ENVS = ["mps2_an385", "mps2_an386", "mps2_an500", "microbit"]
# The envs with RAM to rebuild a .tflite file (TINYCABAC_TFLITE_BUFFER_SIZE).
TFLITE_REBUILD_ENVS = {"mps2_an385", "mps2_an386", "mps2_an500"}
REAL_BOARD_ENVS = {"nucleo_f446re": "ststm32", "pico": "raspberrypi", "esp32dev": "espressif32"}
BUILD_TIMEOUT_S = 300
RUN_TIMEOUT_S = 60
FAULT_EXIT_STATUS = 3  # boards/platform/runtime/startup.c


def require_tools(*names: str) -> None:
    for name in names:
        require_tool(name)


def pio_environment(build_dir: Path, streams: list[Path] | None) -> dict[str, str]:
    env = dict(os.environ)
    env["PLATFORMIO_SETTING_ENABLE_TELEMETRY"] = "No"
    env["PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL"] = "3650"
    env["PLATFORMIO_BUILD_DIR"] = str(build_dir)  # keep the developer's firmware/.pio/build intact
    env.pop("TINYCABAC_STREAM", None)
    if streams is not None:
        env["TINYCABAC_STREAM"] = os.pathsep.join(str(path) for path in streams)
    return env


def pio_build(env_name: str, build_dir: Path, streams: list[Path] | None) -> Path:
    """Build one env offline; return its ELF."""
    result = subprocess.run(
        ["pio", "run", "-d", str(FIRMWARE), "-e", env_name],
        env=pio_environment(build_dir, streams),
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert result.returncode == 0, f"pio run -e {env_name} failed:\n{result.stdout}\n{result.stderr}"
    return build_dir / env_name / "program.elf"


def qemu_command(env_name: str, elf: Path) -> list[str]:
    build = json.loads((BOARDS / f"{env_name}.json").read_text())["build"]
    return [
        "timeout", str(RUN_TIMEOUT_S), "qemu-system-arm",
        "-M", build["qemu_machine"], "-cpu", build["qemu_cpu"],
        "-display", "none", "-serial", "none", "-monitor", "none",
        "-chardev", "stdio,id=semihost",
        "-semihosting-config", "enable=on,target=native,chardev=semihost",
        "-kernel", str(elf),
    ]  # fmt: skip


@dataclass
class StreamReport:
    label: str
    size: int
    tensors: list[tuple[str, int, str]] = field(default_factory=list)
    tflite: tuple[int, str] | None = None  # size and CRC-32 of the rebuilt .tflite
    verdict: str = ""


def parse_report(text: str) -> dict[str, StreamReport]:
    """The firmware's output, stream by stream."""
    reports: dict[str, StreamReport] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("stream "):
            label, size = line[len("stream ") :].rsplit(" ", 1)
            current = reports[label] = StreamReport(label, int(size))
        elif line.startswith("tensor "):
            name, elements, crc = line[len("tensor ") :].rsplit(" ", 2)
            assert crc.startswith("crc32=") and len(crc) == 14, line
            current.tensors.append((name, int(elements), crc[len("crc32=") :]))
        elif line.startswith("tflite "):
            size, crc = line[len("tflite ") :].split(" ")
            assert crc.startswith("crc32=") and len(crc) == 14 and current.tflite is None, line
            current.tflite = (int(size), crc[len("crc32=") :])
        elif line == "OK" or line.startswith("FAIL "):
            assert current is not None and not current.verdict, f"verdict outside a stream: {line}"
            current.verdict = line
        elif line:
            raise AssertionError(f"unexpected firmware output line: {line!r}")
    return reports


def run_firmware(env_name: str, elf: Path) -> tuple[int, dict[str, StreamReport]]:
    result = subprocess.run(
        qemu_command(env_name, elf), capture_output=True, text=True, timeout=RUN_TIMEOUT_S + 10
    )
    assert result.returncode != 124, f"{env_name}: firmware timed out:\n{result.stdout}"
    assert result.returncode != FAULT_EXIT_STATUS, f"{env_name}: hard fault:\n{result.stdout}"
    return result.returncode, parse_report(result.stdout)


def host_digests(data: bytes) -> list[tuple[str, int, str]]:
    """What the firmware must print: name, elements, CRC-32 of the host decode."""
    decoded = tinycabac.decode(data, include_reserved=True)
    digests = []
    for name, array in decoded.items():
        little_endian = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        digests.append((name, array.size, f"{zlib.crc32(little_endian.tobytes()):08x}"))
    return digests


def host_tflite_digest(data: bytes) -> tuple[int, str] | None:
    """What a board that rebuilds .tflite files must print for a stream."""
    if "__tflite_places__" not in {t.name for t in tinycabac.info(data)}:
        return None
    rebuilt = decode_model(data).to_bytes()
    return len(rebuilt), f"{zlib.crc32(rebuilt):08x}"


def bundled_model_stream() -> bytes:
    """The bundled model as `tinycabac encode` writes it (no arguments: the
    int8 digits model), which is what the firmware embeds by default."""
    data = encode_model(read_model(default_model_path("int8")))
    assert DEFAULT_STREAM.read_bytes() == data, "run `make golden`: the default stream is stale"
    return data


def corrupted_variants(data: bytes) -> dict[str, bytes]:
    """Damaged copies of a valid stream, each rejected by the host decoder."""
    payload_start = len(data) - sum(t.payload_bytes for t in tinycabac.info(data))
    variants = {
        "bad_magic.tcb": b"X" + data[1:],
        "header_bit_flip.tcb": _flip(data, 10, 0x10),
        "directory_bit_flip.tcb": _flip(data, 30, 0x10),  # the directory starts at byte 20
        "truncated.tcb": data[: payload_start + (len(data) - payload_start) // 2],
        "trailing_byte.tcb": data + b"\0",
        # FORMAT 7's other whole-stream checks, behind a valid header CRC
        "name_twice.tcb": _rename(data, b"dense2/weights", b"dense1/weights"),
        "name_not_utf8.tcb": _rename(data, b"dense2/weights", b"dense2/w\xffights"),
        "name_overlong_utf8.tcb": _rename(data, b"dense2/weights", b"dense2/\xc0\xafights"),
        "name_surrogate.tcb": _rename(data, b"dense2/weights", b"dense2/\xed\xa0\x80ghts"),
    }
    # A payload bit flip the host detects (payload error or tensor CRC): some
    # flips near a payload's end can leave the decoded values unchanged.
    for position in range(payload_start + (len(data) - payload_start) // 3, len(data)):
        flipped = _flip(data, position, 0x04)
        if _host_rejects(flipped):
            variants["payload_bit_flip.tcb"] = flipped
            break
    assert all(_host_rejects(v) for v in variants.values())
    assert "payload_bit_flip.tcb" in variants
    return variants


def _rename(data: bytes, name: bytes, new_name: bytes) -> bytes:
    """`data` with a directory name replaced by one of the same length."""
    assert len(new_name) == len(name) and data.count(name) == 1
    return with_header_crc(bytearray(data.replace(name, new_name)))


def _flip(data: bytes, position: int, mask: int) -> bytes:
    return data[:position] + bytes([data[position] ^ mask]) + data[position + 1 :]


def _host_rejects(data: bytes) -> bool:
    try:
        tinycabac.decode(data, include_reserved=True)
    except (tinycabac.FormatError, ValueError):
        return True
    return False


# firmware/src/main.c: the filter that lets the device check a stream's names
# for a repeat in one pass over the directory, and the hash that picks a bit.
NAME_FILTER_BITS = 2048


def firmware_name_bit(name: bytes) -> int:
    value = 2166136261
    for byte in name:
        value = ((value ^ byte) * 16777619) & 0xFFFFFFFF
    return (value ^ (value >> 11) ^ (value >> 22)) % NAME_FILTER_BITS


def many_names_stream(count: int = 300) -> bytes:
    """A stream of many small tensors, with names that share a filter bit and
    still differ: the device must look those up and accept them."""
    names = [f"layer{i}/w" for i in range(count)]
    bits = [firmware_name_bit(name.encode()) for name in names]
    assert len(set(bits)) < len(bits), "no two names share a filter bit"
    return tinycabac.encode({name: np.arange(i % 7 + 1, dtype=np.int8) - 3 for i, name in enumerate(names)})


@pytest.fixture(scope="module")
def valid_streams(tmp_path_factory) -> list[Path]:
    """Golden vectors and the bundled model, as files with distinct names."""
    directory = tmp_path_factory.mktemp("valid_streams")
    vectors = golden_manifest()["vectors"].values()
    # update vectors need their base model: tests/test_firmware_update.py runs those
    sources = {v["file"]: (GOLDEN / v["file"]).read_bytes() for v in vectors if "base" not in v}
    sources["bundled_model.tcb"] = bundled_model_stream()
    # names at the edges of UTF-8's 1- to 4-byte forms pass the device's check
    edges = ["\x7f", "\x80", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\uffff", "\U00010000", "\U0010ffff"]
    sources["utf8_names.tcb"] = tinycabac.encode({f"w{c}": np.arange(i + 1, dtype=np.int8) for i, c in enumerate(edges)})
    sources["many_names.tcb"] = many_names_stream()
    assert len(sources) > 1, "tests/golden/*.tcb is empty"
    # the device must reconstruct dependent-quantized tensors (FORMAT 6.2) too
    assert "trellis_float.tcb" in sources
    assert any(t.quantizer == "dependent" for data in sources.values() for t in tinycabac.info(data))
    paths = []
    for name, data in sources.items():
        paths.append(directory / name)
        paths[-1].write_bytes(data)
    return paths


@pytest.fixture(scope="module")
def corrupted_streams(tmp_path_factory) -> list[Path]:
    directory = tmp_path_factory.mktemp("corrupted_streams")
    paths = []
    for name, data in corrupted_variants(bundled_model_stream()).items():
        paths.append(directory / name)
        paths[-1].write_bytes(data)
    return paths


@pytest.fixture(scope="module")
def build_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pio_build")


@pytest.mark.parametrize("env_name", QEMU_ENVS)
def test_firmware_digests_match_host_decoder(env_name, valid_streams, build_root):
    require_tools("pio", "arm-none-eabi-gcc", "qemu-system-arm", "timeout")
    elf = pio_build(env_name, build_root / "valid", valid_streams)
    status, reports = run_firmware(env_name, elf)

    assert list(reports) == [path.name for path in valid_streams]
    for path in valid_streams:
        data = path.read_bytes()
        report = reports[path.name]
        assert report.size == len(data)
        assert report.verdict == "OK", f"{env_name} {path.name}: {report.verdict}"
        assert report.tensors == host_digests(data), f"{env_name} {path.name}"
        expected_tflite = host_tflite_digest(data) if env_name in TFLITE_REBUILD_ENVS else None
        assert report.tflite == expected_tflite, f"{env_name} {path.name}"
    assert any(report.tflite for report in reports.values()) == (env_name in TFLITE_REBUILD_ENVS)
    assert status == 0


@pytest.mark.parametrize("env_name", QEMU_ENVS)
def test_firmware_reports_corrupted_streams(env_name, corrupted_streams, build_root):
    require_tools("pio", "arm-none-eabi-gcc", "qemu-system-arm", "timeout")
    elf = pio_build(env_name, build_root / "corrupted", corrupted_streams)
    status, reports = run_firmware(env_name, elf)

    assert status == 1
    assert list(reports) == [path.name for path in corrupted_streams]
    for path in corrupted_streams:
        verdict = reports[path.name].verdict
        assert verdict.startswith("FAIL "), f"{env_name} {path.name}: {verdict!r}"
        reason = verdict[len("FAIL ") :].split(" (tensor ")[0]
        with pytest.raises((tinycabac.FormatError, ValueError)) as host_error:
            tinycabac.decode(path.read_bytes(), include_reserved=True)
        assert reason in str(host_error.value), f"{env_name} {path.name}: {verdict!r} vs {host_error.value}"


# firmware/platformio.ini: TINYCABAC_HISTORY_SIZE, the RAM set aside for
# prediction (FORMAT 5.7, 5.8), which a tensor with distance H needs H of,
# and one with factors of rank R for rows of H (H + 1) * R.
FIRMWARE_HISTORY_SIZE = {"mps2_an386": 16384, "microbit": 4096}


def predicted_rows(rows: int, columns: int) -> np.ndarray:
    """int8 rows that repeat each other up to a small drift."""
    rng = np.random.default_rng(columns)
    row = rng.integers(-60, 60, size=columns)
    return np.clip(row + np.arange(rows)[:, None] % 3 - 1, -128, 127).astype(np.int8)


def pruned_rows(rows: int, columns: int) -> np.ndarray:
    """int8 rows sharing their zero and large columns, not their signs."""
    rng = np.random.default_rng(columns + 1)
    sizes = np.where(np.arange(columns) % 4 == 0, 0, rng.integers(1, 100, size=columns))
    return (sizes * rng.choice([-1, 1], size=(rows, columns))).astype(np.int8)


def low_rank_rows(rows: int, columns: int, rank: int) -> np.ndarray:
    """int8 rows near a subspace of `rank` dimensions."""
    rng = np.random.default_rng(rank)
    product = rng.standard_normal((rows, rank)) @ rng.standard_normal((rank, columns)) * 20
    return np.clip(np.rint(product + rng.normal(size=(rows, columns))), -127, 127).astype(np.int8)


def history_limit_streams(directory: Path, h: int) -> dict[str, Path]:
    """A stream whose difference, scale and factor prediction need exactly
    the firmware's history buffer of h bytes, and one that needs a byte more."""
    columns = h // 4 - 1  # factors of rank 4: (columns + 1) * 4 = h
    at_limit = tinycabac.encode(
        {"plain": predicted_rows(1, h)[0], "rows": predicted_rows(3, h), "pruned": pruned_rows(3, h),
         "factored": low_rank_rows(64, columns, 8)},
        prediction={"plain": "none", "rows": "difference", "pruned": "scale", "factored": "factors"},
        history={"plain": 0, "rows": h, "pruned": h},
        max_history=h,
    )
    kinds = [(t.prediction, t.history, t.work_size) for t in tinycabac.info(at_limit)]
    assert kinds == [("none", 0, 0), ("difference", h, h), ("scale", h, h), ("factors", columns, h)]
    streams = {
        "history_at_limit.tcb": at_limit,
        "history_over_limit.tcb": tinycabac.encode({"rows": pruned_rows(3, h)}, prediction="scale", history=h + 1),
    }
    paths = {}
    for name, data in streams.items():
        paths[name] = directory / name
        paths[name].write_bytes(data)
    return paths


@pytest.mark.parametrize("env_name", ["mps2_an386", "microbit"])
def test_firmware_history_buffer_limit(env_name, tmp_path):
    """H up to TINYCABAC_HISTORY_SIZE decodes with either kind of prediction
    (on the 16 KB microbit too); a larger H is refused with both sizes named,
    and a non-zero exit."""
    require_tools("pio", "arm-none-eabi-gcc", "qemu-system-arm", "timeout")
    h = FIRMWARE_HISTORY_SIZE[env_name]
    paths = history_limit_streams(tmp_path, h)
    elf = pio_build(env_name, tmp_path / "build", list(paths.values()))
    status, reports = run_firmware(env_name, elf)
    at_limit = reports["history_at_limit.tcb"]
    assert at_limit.verdict == "OK"
    assert at_limit.tensors == host_digests(paths["history_at_limit.tcb"].read_bytes())
    assert reports["history_over_limit.tcb"].verdict == (
        f"FAIL history buffer too small ({h + 1} > {h}) (tensor 0)"
    )
    assert status == 1


def test_firmware_embeds_the_default_stream_when_unset(build_root):
    """No TINYCABAC_STREAM: the bundled model at DEFAULT_STREAM is embedded."""
    require_tools("pio", "arm-none-eabi-gcc", "qemu-system-arm", "timeout")
    expected = host_digests(bundled_model_stream())
    elf = pio_build("mps2_an386", build_root / "default", None)
    status, reports = run_firmware("mps2_an386", elf)
    assert status == 0
    assert reports[DEFAULT_STREAM.name].verdict == "OK"
    assert reports[DEFAULT_STREAM.name].tensors == expected
    # lossless: the device rebuilt the bundled .tflite file itself
    original = default_model_path("int8").read_bytes()
    assert reports[DEFAULT_STREAM.name].tflite == (len(original), f"{zlib.crc32(original):08x}")


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
def test_missing_stream_fails_the_build_with_a_clear_message(tmp_path, relative):
    """A relative path is looked for from where pio was started, then from
    firmware/: the message names both places, not only the last."""
    require_tools("pio", "arm-none-eabi-gcc")
    name = Path("no_such_dir") / "no_such_stream.tcb"
    env = pio_environment(tmp_path / "build", [name if relative else tmp_path / name])
    env["PWD"] = str(tmp_path)
    result = subprocess.run(
        ["pio", "run", "-d", str(FIRMWARE), "-e", "microbit"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    assert result.returncode != 0
    places = f"{tmp_path / name} or {FIRMWARE / name}" if relative else f"{tmp_path / name}"
    assert f"TINYCABAC_STREAM names {places}, which does not exist" in result.stderr + result.stdout


def test_real_board_envs_parse_offline():
    """Stock-platform envs cannot build without PlatformIO's registry, but
    their configuration must be valid."""
    require_tools("pio")
    result = subprocess.run(
        ["pio", "project", "config", "-d", str(FIRMWARE), "--json-output"],
        env=pio_environment(FIRMWARE / ".pio" / "build", None),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    sections = {name: dict(options) for name, options in json.loads(result.stdout)}
    for env_name, platform in REAL_BOARD_ENVS.items():
        assert sections[f"env:{env_name}"]["platform"] == platform
        assert sections[f"env:{env_name}"]["framework"] == ["arduino"]
    for env_name in QEMU_ENVS:
        assert f"env:{env_name}" in sections


def test_relative_stream_path_is_taken_from_the_invocation_directory(tmp_path):
    """`TINYCABAC_STREAM=tests/golden/x.tcb pio run -d firmware` from the
    repository root finds the file, although PlatformIO works in firmware/."""
    require_tools("pio", "arm-none-eabi-gcc")
    golden = sorted(GOLDEN.glob("*.tcb"))[0]
    env = pio_environment(tmp_path / "build", [golden.relative_to(REPO)])
    env["PWD"] = str(REPO)
    result = subprocess.run(
        ["pio", "run", "-d", "firmware", "-e", "microbit"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Embedding {golden} (" in result.stdout
