"""The `tinycabac` command line: encode, decode, info, verify, export-c, demo."""
from __future__ import annotations

import argparse
import json
import lzma
import os
import signal
import sys
import threading
import zlib
from pathlib import Path

import numpy as np

from . import __version__, codec, native
from .container import FormatError
from .quantize import QUANTIZERS
from .device import device_buffers
from .export_c import c_files, default_symbol
from .modelfile import (
    PACKED_SKELETON_NAME,
    Model,
    ModelFileError,
    apply_update,
    decode_model,
    encode_update,
    model_from_bytes,
    packed_skeleton_sizes,
    read_model,
    tflite_names,
    write_atomic,
    writes_in_place,
)
from .models import default_model_path
from .native import DecodeError
from .quantize import snr_db

PROGRESS_MIN_ELEMENTS = 1_000_000  # show a progress bar for models at least this large


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


# ---------------------------------------------------------------- helpers


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise CliError(f"cannot read {what} {path}: {error.strerror or error}") from error


def _write_output(path: Path, data: bytes, force: bool) -> None:
    if path.exists() and not force and not writes_in_place(path):  # -o /dev/stdout needs no --force
        raise CliError(f"{path} exists; use --force to overwrite it")
    try:
        write_atomic(path, data)
    except OSError as error:
        raise CliError(f"cannot write {path}: {error.strerror or error}") from error


def _progress_callback(total: int):
    """A progress bar on stderr for long encodes (tqdm when available)."""
    if total < PROGRESS_MIN_ELEMENTS or not sys.stderr.isatty():
        return None, lambda: None
    try:
        from tqdm import tqdm
    except ImportError:
        done = [0]

        def plain(name: str, elements: int) -> None:
            done[0] += elements
            print(f"\rencoding {100 * done[0] // total:3d}%  {name[:40]:40s}", end="", file=sys.stderr)

        return plain, lambda: print(file=sys.stderr)
    bar = tqdm(total=total, unit="w", unit_scale=True, desc="encoding", file=sys.stderr)

    def update(name: str, elements: int) -> None:
        if elements:
            bar.update(elements)
        else:  # a tensor starts: name it, since a large one takes a while
            bar.set_postfix_str(name[:40])

    return update, bar.close


def _encode_options(args, model) -> dict:
    options = {"quantizer": args.quantizer}
    if args.step is not None:
        options["step"] = args.step
    if args.qp is not None:
        options["qp"] = args.qp
    if args.snr_db is not None:
        options["snr_db"] = args.snr_db
    if args.bits_per_weight is not None:
        options["bits_per_weight"] = args.bits_per_weight
    if args.max_size is not None:
        options["max_size"] = args.max_size
    if args.per_channel:
        options["axis"] = model.channel_axes()
    if args.max_history is not None:
        options["max_history"] = args.max_history
    if args.prediction is not None:
        options["prediction"] = args.prediction
    return options


def _prediction_text(t) -> str:
    """diff:H, scale:H, or factors:HxRANK (FORMAT 5.7, 5.8); - for none;
    "+peaks" when the channel peaks are sent as positions (5.9)."""
    if t.prediction == "factors":
        return f"factors:{t.history}x{t.rank}"
    short = {"difference": "diff", "scale": "scale"}
    text = f"{short[t.prediction]}:{t.history}" if t.history else "-"
    return text if not t.peak else "peaks" if text == "-" else text + "+peaks"


def _mode_text(t) -> str:
    """The mode, marking dependent quantization (FORMAT 6.2) with "+dq"."""
    return t.mode + ("+dq" if t.quantizer == "dependent" else "")


def _size_table(stream: bytes, snrs: dict[str, float | None], tflite_names_known: dict[str, str] | None = None) -> str:
    """The per-tensor table.  The TFLite names of index-named weights come
    from `tflite_names_known` (the source model's, when the caller has read
    it) or else from the stream's skeleton."""
    rows = [("tensor", "elements", "dtype", "mode", "pred", "bytes", "bits/w", "ratio", "SNR dB")]
    total_in = total_out = 0
    summaries = codec.info(stream)
    for t in summaries:
        snr = snrs.get(t.name)
        snr_text = "" if "lossless" in t.mode else ("inf" if snr == float("inf") else f"{snr:.2f}" if snr is not None else "?")
        rows.append(
            (
                t.name, str(t.elements), t.dtype, _mode_text(t), _prediction_text(t),
                str(t.payload_bytes), f"{t.bits_per_weight:.3f}", f"{t.ratio:.2f}", snr_text,
            )
        )
        total_in += t.original_bytes
        total_out += t.payload_bytes
    rows = _with_tflite_names(rows, tflite_names(stream) if tflite_names_known is None else tflite_names_known)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(_table_cell(cell, i, w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    overhead = len(stream) - total_out
    lines.append(f"stream: {len(stream)} bytes ({total_out} payload + {overhead} header/directory) from {total_in} bytes of tensors")
    lines.append(device_buffers(stream).summary())
    lines += _packed_skeleton_note(stream, summaries)
    return "\n".join(lines)


def _renamed(names: dict[str, str]) -> dict[str, str]:
    """Of {stream name: TFLite name}, the weights coded under their tensor's
    index (tflite_io.stream_name) instead of their TFLite name."""
    return {name: tflite for name, tflite in names.items() if name != tflite}


def _with_tflite_names(rows: list[tuple], names: dict[str, str]) -> list[tuple]:
    """The rows with a last column of TFLite names, for the weights coded
    under their tensor's index instead (long names); unchanged if none is."""
    renamed = _renamed(names)
    if not renamed:
        return rows
    return [rows[0] + ("TFLite name",)] + [row + (renamed.get(row[0], ""),) for row in rows[1:]]


# The size table's columns of names (the stream's, and the TFLite name after
# the figures) read from the left, its figures from the right.
_NAME_COLUMNS = (0, 9)


def _table_cell(cell: str, column: int, width: int) -> str:
    return cell.ljust(width) if column in _NAME_COLUMNS else cell.rjust(width)


def _packed_skeleton_note(stream: bytes, summaries: list) -> list[str]:
    """The .tflite skeleton's own ratio, which the packed tensor's row does
    not show (its elements are the packed bytes)."""
    try:
        sizes = packed_skeleton_sizes(stream)
    except FormatError:  # info still lists a stream whose tensors do not decode
        return []
    if sizes is None:
        return []
    skeleton, packed = sizes
    coded = next(t.payload_bytes for t in summaries if t.name == PACKED_SKELETON_NAME)
    return [f"skeleton: {skeleton} bytes of the .tflite file besides its coded weights, LZ77-packed to {packed} "
            f"(FORMAT 3.6), coded in {coded}: {skeleton / max(coded, 1):.2f}x"]


def _tensor_snrs(source: dict[str, np.ndarray], decoded: dict[str, np.ndarray]) -> dict[str, float]:
    """SNR of each float tensor the source has too, in the same shape (verify
    reports a different shape as a mismatch; info leaves its SNR empty)."""
    return {
        name: snr_db(source[name], decoded[name])
        for name in decoded
        if name in source and np.asarray(source[name]).dtype.kind == "f"
        and np.shape(source[name]) == decoded[name].shape
    }


# ---------------------------------------------------------------- commands


def cmd_encode(args) -> int:
    source = Path(args.input) if args.input else default_model_path("int8")
    model = read_model(source)
    output = Path(args.output) if args.output else Path(source.name).with_suffix(".tcb")
    if any(output.resolve() == Path(model_path).resolve() for model_path in (source, args.base) if model_path):
        raise CliError("output would overwrite an input model")
    total = sum(np.asarray(a).size for a in model.tensors.values())
    progress, finish = _progress_callback(total)
    base = read_model(args.base) if args.base else None
    try:
        if base is not None:
            stream = encode_update(model, base, progress=progress, **_encode_options(args, model))
        else:
            stream = codec.encode(model.stream_tensors(), progress=progress, **_encode_options(args, model))
    finally:
        finish()
    # decoded before it is written: a stream the decoder refuses is never left behind
    decoded = apply_update(base, stream) if base is not None else decode_model(stream)
    _write_output(output, stream, args.force)
    if not args.quiet:
        print(_size_table(stream, _tensor_snrs(model.tensors, decoded.tensors), model.tflite_names()))
        print(f"wrote {output}")
    return 0


def _decode_whole(stream: bytes, path) -> Model:
    """The model a stream holds whole; an update stream needs its base."""
    try:
        return decode_model(stream)
    except FormatError as error:
        try:
            update = codec.is_update(stream)
        except FormatError:
            update = False
        if not update:
            raise
        raise CliError(f"{path} is an update stream: apply it to its base with "
                       f"`tinycabac apply BASE {path} -o NEW`") from error


def _write_model_file(model: Model, output: Path, args) -> None:
    """Write the model as the output's extension asks (decode, apply): a
    .tflite stream's weight arrays can go to an .npz archive, but arrays
    make no .tflite file."""
    suffix = output.suffix.lower()
    if suffix == ".npz" and model.kind == "tflite":
        model = Model("npz", model.tensors)
    if suffix == ".tflite" and model.kind != "tflite":
        raise CliError(f"the stream holds arrays, not a .tflite model; write them to an .npz file, not {output}")
    _write_output(output, model.to_bytes(), args.force)
    if not args.quiet:
        print(f"wrote {output} ({model.kind}, {len(model.tensors)} tensors)")


def cmd_decode(args) -> int:
    source = Path(args.input)
    model = _decode_whole(_read_bytes(source, "stream"), source)
    suffix = ".tflite" if model.kind == "tflite" else ".npz"
    output = Path(args.output) if args.output else Path(source.name).with_suffix(suffix)
    if output.resolve() == source.resolve():
        raise CliError("output would overwrite the input stream")
    _write_model_file(model, output, args)
    return 0


def cmd_apply(args) -> int:
    base_path, update_path = Path(args.base), Path(args.update)
    base = read_model(base_path)
    model = apply_update(base, _read_bytes(update_path, "update"))
    suffix = ".tflite" if model.kind == "tflite" else ".npz"
    output = Path(args.output) if args.output else Path(update_path.name).with_suffix(suffix)
    if output.resolve() in (base_path.resolve(), update_path.resolve()) and not args.force:
        raise CliError(f"output {output} would overwrite an input; use --force")
    _write_model_file(model, output, args)
    return 0


def _snr_json(snr: float | None) -> float | str | None:
    """JSON has no infinity or NaN: an exact reconstruction is the string
    "inf", an all-zero source with noise "-inf", a source holding NaN "nan"."""
    if snr is None or np.isfinite(snr):
        return snr if snr is None else round(snr, 4)
    return str(snr)


def _tensor_json(t: codec.TensorSummary, snr: float | None) -> dict:
    entry = {
        "name": t.name, "dtype": t.dtype, "shape": list(t.shape), "elements": t.elements,
        "mode": t.mode, "quantizer": t.quantizer, "prediction": t.prediction, "history": t.history,
        "rank": t.rank, "peak": t.peak, "peak_axis": t.peak_axis, "work_bytes": t.work_size, "payload_bytes": t.payload_bytes, "original_bytes": t.original_bytes,
        "bits_per_weight": round(t.bits_per_weight, 6), "ratio": round(t.ratio, 6),
    }
    if t.quantizer is None:
        entry["offset"] = t.offset
    else:
        entry["steps"] = t.steps
        entry["snr_db"] = _snr_json(snr)
    return entry


def _info_json(stream: bytes, snrs: dict[str, float | None]) -> str:
    """The info table as one JSON document, for scripts (size budgets in CI)."""
    tensors = codec.info(stream)  # validates the stream before byte 4 is read
    names = tflite_names(stream)
    payload = sum(t.payload_bytes for t in tensors)
    buffers = device_buffers(stream)
    document = {
        "format_version": stream[4],
        "stream_bytes": len(stream),
        "payload_bytes": payload,
        "container_bytes": len(stream) - payload,
        "tensor_bytes": sum(t.original_bytes for t in tensors),
        # the working memory (history buffer) a C decoder must be given for every tensor to decode
        "history_bytes_needed": buffers.work_size,
        "largest_tensor_bytes": buffers.largest_tensor,
        "tensors": [_tensor_json(t, snrs.get(t.name)) for t in tensors],
    }
    for entry in document["tensors"]:  # the name a .tflite weight has in the file
        tflite_name = names.get(entry["name"])
        if tflite_name is not None:
            entry["tflite_name"] = tflite_name
    if buffers.tflite_file is not None:  # the buffers tc_tflite_rebuild fills
        document["tflite_file_bytes"], document["tflite_places_bytes"] = buffers.tflite_file, buffers.tflite_places
    elif buffers.tflite_problem is not None:  # a places table that does not decode
        document["tflite_rebuild_problem"] = buffers.tflite_problem
    sizes = packed_skeleton_sizes(stream)
    if sizes is not None:  # what the packed tensor holds (FORMAT 3.6)
        document["skeleton_bytes"], document["packed_skeleton_bytes"] = sizes
    return json.dumps(document, indent=2, allow_nan=False)


def cmd_info(args) -> int:
    stream = _read_bytes(Path(args.input), "stream")
    snrs = {}
    if args.source:
        source, decoded = read_model(args.source), _decode_whole(stream, args.input)
        problems = _compare_models(source, decoded)
        if problems:  # the SNR column would be empty or meaningless: say why
            print(f"tinycabac: warning: {args.source} is not the model this stream was made from: "
                  f"{problems[0]}", file=sys.stderr)
        snrs = _tensor_snrs(source.tensors, decoded.tensors)
    print(_info_json(stream, snrs) if args.json else _size_table(stream, snrs))
    return 0


def _labels(model: Model) -> dict[str, str]:
    """How verify names a tensor: its stream name, and for a .tflite weight
    coded under its tensor index (tflite_io.stream_name) its TFLite name."""
    renamed = _renamed(model.tflite_names())
    return {name: f"{name} ({renamed[name]})" if name in renamed else name for name in model.tensors}


def _compare_models(source, decoded) -> list[str]:
    """Mismatches between a source model and a decoded stream."""
    problems = []
    if source.kind != decoded.kind:
        return [f"stream holds a {decoded.kind} model, source is {source.kind}"]
    if source.kind == "tflite" and source.skeleton != decoded.skeleton:
        problems.append("non-weight bytes of the .tflite differ")
    if list(source.tensors) != list(decoded.tensors):
        return problems + ["tensor names or order differ"]
    label = _labels(source)
    for name, original in source.tensors.items():
        original = np.asarray(original)
        got = decoded.tensors[name]
        if original.shape != got.shape:
            problems.append(f"{label[name]}: shape {got.shape} != {original.shape}")
        elif not _decodes_as(original.dtype, got.dtype):
            problems.append(f"{label[name]}: decoded dtype {got.dtype} != {original.dtype}")
        elif original.dtype.kind == "f":
            if not np.all(np.isfinite(original)):
                problems.append(f"{label[name]}: the source holds NaN or infinity, which no stream codes")
            # otherwise lossy: reported as SNR
        elif not np.array_equal(original, got):
            problems.append(f"{label[name]}: decoded values differ from the source")
    return problems


def _decodes_as(source: np.dtype, decoded: np.dtype) -> bool:
    """Whether a tensor of dtype `source` decodes to `decoded`: integers to
    themselves in either byte order, floats to floats (an .npz float16
    tensor comes back as its float32 reconstruction)."""
    if source.kind == "f":
        return decoded.kind == "f"
    return source.newbyteorder("=") == decoded.newbyteorder("=")


def cmd_verify(args) -> int:
    stream = _read_bytes(Path(args.stream), "stream")
    source_bytes = _read_bytes(Path(args.source), "source")
    source = model_from_bytes(source_bytes, args.source)
    decoded = _decode_whole(stream, args.stream)  # the C decoder checks every CRC
    problems = _compare_models(source, decoded)
    lossy = _tensor_snrs(source.tensors, decoded.tensors)
    # A .tflite file comes back byte for byte when lossless; an .npz archive
    # as its arrays (the zip's compression and dates are not coded).
    rebuilt = decoded.to_bytes() if decoded.kind == "tflite" else None
    if rebuilt is not None and not lossy and not problems and rebuilt != source_bytes:
        problems.append("rebuilt file differs from the source")
    label = _labels(source)
    for name, value in lossy.items():
        if args.min_snr is not None and value < args.min_snr:
            problems.append(f"{label[name]}: SNR {value:.2f} dB below {args.min_snr} dB")
    device = native.rebuild_tflite(stream) if decoded.kind == "tflite" else None
    if device is not None and device != rebuilt:
        problems.append("the device's rebuild of the .tflite file (decoder_c/tflite) differs from the host's")
    for problem in problems:
        print(f"MISMATCH {problem}")
    if problems:
        return 1
    detail = f"lossy tensors: {len(lossy)}, lowest SNR {min(lossy.values()):.2f} dB" if lossy else "bit-exact"
    if device is not None:
        detail += "; the device rebuilds the same .tflite"
    print(f"OK {args.stream} decodes to {args.source} ({detail})")
    return 0


def cmd_export_c(args) -> int:
    source = Path(args.input)
    stream = _read_bytes(source, "stream")
    codec.info(stream)  # refuse to embed something the decoder would reject
    prefix = Path(args.output) if args.output else Path(source.name).with_suffix("")
    symbol = args.symbol if args.symbol is not None else default_symbol(prefix.name)
    c_path, h_path = prefix.with_suffix(".c"), prefix.with_suffix(".h")
    for path in (c_path, h_path):
        if path.exists() and not args.force:
            raise CliError(f"{path} exists; use --force to overwrite it")
    buffers = device_buffers(stream)
    if buffers.tflite_problem is not None:  # a device could not rebuild the file: do not embed it
        raise CliError(f"{source}: {buffers.tflite_problem}")
    c_text, h_text = c_files(stream, symbol, h_path.name, source=str(source), macros=buffers.c_macros())
    # each file whole or not at all; the large .c first, so a full disk
    # fails before the header changes
    _write_output(c_path, c_text.encode(), force=True)
    _write_output(h_path, h_text.encode(), force=True)
    print(f"wrote {c_path} and {h_path} ({len(stream)} bytes as {symbol}[])")
    return 0


def _general_purpose_sizes(raw: bytes) -> dict[str, int]:
    return {"zlib -9": len(zlib.compress(raw, 9)), "xz -9e": len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))}


def _comparison_line(what: str, ours: int, raw: bytes, of: str) -> str:
    sizes = ", ".join(f"{name} {size} B" for name, size in _general_purpose_sizes(raw).items())
    return f"{what}: tinycabac {ours} B; {sizes} (of {of})"


def cmd_demo(args) -> int:
    """Encode the bundled models, decode with the C decoder, verify, compare."""
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for kind, options in (("int8", {}), ("float32", {"snr_db": args.snr_db})):
        path = default_model_path(kind)
        source_bytes = path.read_bytes()
        model = model_from_bytes(source_bytes, str(path))
        stream = codec.encode(model.stream_tensors(), **options)
        out = workdir / f"digits_{kind}.tcb"
        write_atomic(out, stream)
        decoded = decode_model(stream)
        rebuilt = decoded.to_bytes()
        problems = _compare_models(model, decoded)
        if kind == "int8" and rebuilt != source_bytes:
            problems.append("rebuilt .tflite differs")
        if native.rebuild_tflite(stream) != rebuilt:  # what a device runs (decoder_c/tflite)
            problems.append("the device's rebuild of the .tflite differs")
        print(f"\n== {path.name}: {len(source_bytes)} bytes -> {out} ({len(stream)} bytes)")
        print(_size_table(stream, _tensor_snrs(model.tensors, decoded.tensors), model.tflite_names()))
        weights = sum(t.payload_bytes for t in codec.info(stream) if not t.name.startswith("__"))
        raw_weights = b"".join(np.ascontiguousarray(a).tobytes() for a in model.tensors.values())
        what = "the same int8 bytes" if kind == "int8" else "the float32 originals, lossless"
        print(_comparison_line("weights only", weights, raw_weights, what))
        print(_comparison_line("whole file", len(stream), source_bytes, "the .tflite file, lossless"))
        verdict = "OK, bit-exact" if kind == "int8" else "OK"
        verdict += ", and the device's rebuild of the .tflite is identical"
        print(f"verify: {verdict if not problems else 'FAILED: ' + '; '.join(problems)}")
        accuracy = _accuracy_line(source_bytes, rebuilt)
        if accuracy:
            print(accuracy)
        if problems:
            return 1
    return 0


def _accuracy_line(original: bytes, rebuilt: bytes) -> str:
    try:
        from .models import evaluate_accuracy

        return f"test accuracy: original {evaluate_accuracy(original):.4f}, decoded {evaluate_accuracy(rebuilt):.4f}"
    except ImportError:
        return "test accuracy: skipped (install ai-edge-litert to run the models)"


# ---------------------------------------------------------------- parser


def _add_coding_options(p: argparse.ArgumentParser) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument("--step", type=float, help="quantization step for float tensors")
    group.add_argument("--qp", type=int, help="NNR-style QP: step = (1 + (qp%%4)/4) * 2^(qp//4)")
    group.add_argument("--snr-db", type=float, help=f"target weight SNR in dB (default {codec.DEFAULT_SNR_DB:g})")
    group.add_argument(
        "--bits-per-weight", type=float,
        help="rate target per tensor: finest step whose payload the coder estimates at this many bits per weight",
    )
    group.add_argument(
        "--max-size", type=int, metavar="BYTES",
        help="size target: the highest weight SNR, the same for every float tensor, whose whole stream fits",
    )
    p.add_argument(
        "--per-channel", action="store_true",
        help="one step per output channel of each filter (the operator's output-channel axis in a .tflite "
        "file, axis 0 of 2-D and larger .npz arrays); other tensors keep one step",
    )
    p.add_argument("--quantizer", choices=QUANTIZERS, default="nearest", help="level choice: nearest, rdoq, or trellis (dependent quantization; default nearest)")
    p.add_argument(
        "--max-history", type=int, metavar="N",
        help="the most RAM, in bytes, a decoder may need for a tensor's prediction: a distance of H "
        "elements takes H, factors of rank R for rows of H take (H + 1) * R, channel peaks 2 per "
        "channel (default 16384, 0 turns prediction and peaks off)",
    )
    p.add_argument(
        "--prediction", choices=("auto", "none", "difference", "scale", "factors"),
        help="prediction: difference from the level one row back, scale from the column's running "
        "size, or factors (low-rank factors of the rows, sent in the stream) "
        "(default auto: whichever codes smallest)",
    )


_MODEL_OUTPUT_HELP = (
    "output model: .tflite, or .npz for the arrays (default: the {name}'s name with .tflite for a "
    "stream of a .tflite file, else .npz, in the current directory)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinycabac", description="DeepCABAC-style weight compression for microcontrollers")
    parser.add_argument("--version", action="version", version=f"tinycabac {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("encode", help="encode a .tflite or .npz model into a .tcb stream")
    p.add_argument("input", nargs="?", help="model file (default: the bundled int8 digits model)")
    p.add_argument("-o", "--output", help="output .tcb (default: input name with .tcb, in the current directory)")
    p.add_argument("--base", help="code an update against this model (.tflite/.npz) the receiver already holds")
    _add_coding_options(p)
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success (no size table)")
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("decode", help="decode a .tcb stream back into a .tflite or .npz model")
    p.add_argument("input", help=".tcb stream (an update stream needs `apply`)")
    p.add_argument("-o", "--output", help=_MODEL_OUTPUT_HELP.format(name="input"))
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("apply", help="apply an update stream to the base model it was made for")
    p.add_argument("base", help="the base model (.tflite or .npz)")
    p.add_argument("update", help="update stream from `encode --base`")
    p.add_argument("-o", "--output", help=_MODEL_OUTPUT_HELP.format(name="update"))
    p.add_argument("-f", "--force", action="store_true", help="overwrite an existing output, even an input")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("info", help="per-tensor table of a stream")
    p.add_argument("input", help=".tcb stream")
    p.add_argument("--source", help="original model, to show the SNR of lossy tensors")
    p.add_argument("--json", action="store_true",
                   help='one JSON document instead of the table (an exact reconstruction has snr_db "inf")')
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("verify", help="decode with the C decoder and compare with the source model")
    p.add_argument("stream", help=".tcb stream")
    p.add_argument("source", help="the model it was made from (.tflite or .npz)")
    p.add_argument("--min-snr", type=float, help="fail if a lossy tensor's SNR is below this (dB)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("export-c", help="write a stream as a const C array (.c/.h) for firmware")
    p.add_argument("input", help=".tcb stream")
    p.add_argument(
        "-o", "--output",
        help="output path prefix: writes PREFIX.c and PREFIX.h (default: the input's name without its "
        "extension, in the current directory)",
    )
    p.add_argument("--symbol", help="C array name; its size is SYMBOL_len (default: the prefix's file name made a C identifier)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing .c/.h files")
    p.set_defaults(func=cmd_export_c)

    p = sub.add_parser("demo", help="encode, decode and verify the bundled models, with a size table")
    p.add_argument("--workdir", default=os.environ.get("TINYCABAC_DEMO_DIR", "build/demo"),
                   help="where the streams are written (default: $TINYCABAC_DEMO_DIR, else build/demo)")
    p.add_argument("--snr-db", type=float, default=40.0,
                   help="target weight SNR of the float32 model, in dB (default %(default)g)")
    p.set_defaults(func=cmd_demo)
    return parser


class Terminated(BaseException):
    """SIGTERM, raised so that it unwinds like Ctrl-C and removes a
    half-written temporary file."""


def _raise_terminated(signum, _frame) -> None:
    raise Terminated


def _catch_sigterm():
    """Install the SIGTERM handler for the command's duration; returns the
    handler to restore, or None where none was installed (not the main
    thread, or SIGTERM ignored by whoever started us)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_IGN or previous is None:
        return None
    signal.signal(signal.SIGTERM, _raise_terminated)
    return previous


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    previous_sigterm = _catch_sigterm()
    try:
        return args.func(args)
    except BrokenPipeError:
        # The reader left early (`tinycabac info --json | head`): quiet, as
        # Unix tools are, with stdout pointed away so the exit flush is too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (CliError, ModelFileError, FormatError, DecodeError, ValueError, OSError) as error:
        print(f"tinycabac: error: {error}", file=sys.stderr)
        return 1
    except MemoryError as error:  # a model larger than this machine's memory; outputs are atomic
        print(f"tinycabac: error: out of memory: {error or 'allocation failed'}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tinycabac: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("tinycabac: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)


if __name__ == "__main__":
    sys.exit(main())
