"""Pieces shared by the benchmarks: general-purpose compressors, entropies, tinycabac
import, and markdown tables."""

from __future__ import annotations

import bz2
import lzma
import sys
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

import brotli
import numpy as np
import zstandard

REPO_DIR = Path(__file__).resolve().parent.parent
DOCS_DIR = REPO_DIR / "docs"

# Name -> function returning the compressed size in bytes, at each tool's strongest setting.
GENERAL_COMPRESSORS: dict[str, Callable[[bytes], int]] = {
    "zlib -9": lambda data: len(zlib.compress(data, 9)),
    "bzip2 -9": lambda data: len(bz2.compress(data, 9)),
    "xz -9e": lambda data: len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)),
    "zstd -19": lambda data: len(zstandard.ZstdCompressor(level=19).compress(data)),
    "brotli -11": lambda data: len(brotli.compress(data, quality=11)),
}


def general_compressor_bits(data: bytes) -> dict[str, int]:
    return {name: 8 * compress(data) for name, compress in GENERAL_COMPRESSORS.items()}


def payload_bits(levels: np.ndarray) -> int:
    """Bits of the payload the real encoder writes for `levels` coded alone, without the
    container: what the experiments under bench/experiments compare their codings with."""
    import tinycabac

    stream = tinycabac.encode({"x": levels})
    return 8 * tinycabac.info(stream)[0].payload_bytes


def order0_bits(values: np.ndarray) -> float:
    """Ideal code length of `values` under their own order-0 (histogram) model."""
    _, counts = np.unique(values, return_counts=True)
    probabilities = counts / values.size
    return float(-(counts * np.log2(probabilities)).sum())


def per_row_order0_bits(rows: np.ndarray) -> float:
    """Sum of order-0 code lengths with a separate histogram for each row."""
    return sum(order0_bits(row) for row in rows)


# TFLite Micro's own weight compression (its `compress` tool, LUT method): every value
# becomes an index into a table of the tensor's, or each output channel's, distinct
# values.  Its DECODE operator takes indices of 1 to 7 bits, so a tensor that needs
# 8 stays as it is.
TFLM_LUT = "TFLM LUT"
TFLM_MAX_INDEX_BITS = 7


def tflm_lut_bits(rows: np.ndarray, element_bits: int = 8) -> int:
    """Bits TFLM's LUT compression takes for a tensor (rows = output channels):
    packed indices plus value tables, per tensor or per channel, whichever is
    smaller; the tensor as stored when neither fits 7-bit indices."""
    from tflite_micro.tensorflow.lite.micro.compression import lut

    stored = rows.size * element_bits
    if rows.size == 0:
        return 0
    sizes = [stored]
    for axis in (None, 0):
        compressed = lut.compress_array(rows, axis)
        index_bits = compressed.index_bitwidth
        if index_bits <= TFLM_MAX_INDEX_BITS:
            table_length = max(len(table) for table in compressed.lookup_tables)  # lut.pack_lookup_tables
            tables = len(compressed.lookup_tables) * table_length * element_bits
            sizes.append(8 * -(-rows.size * index_bits // 8) + tables)  # lut.pack_indices: whole bytes
    return min(sizes)


def load_tinycabac():
    """The tinycabac package if it can encode yet, else None (the bench runs without it)."""
    try:
        import tinycabac
    except ImportError:
        sys.path.insert(0, str(REPO_DIR / "host"))
        try:
            import tinycabac
        except ImportError:
            return None
    if not (hasattr(tinycabac, "encode") and hasattr(tinycabac, "decode")):
        return None
    return tinycabac


def markdown_table(header: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def fixed(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"
