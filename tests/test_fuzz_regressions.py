"""Saved fuzz inputs (tests/regressions/) replayed through the cffi decoder.

The fuzz binaries replay them too (decoder_c/fuzz/run_fuzzers.sh); this test
needs no clang.  Stream targets share one layout (decoder_c/fuzz/fuzz_common.h):
8 control bytes, for fuzz_directory a queried name, then the stream, whose
header CRC is repaired when bit 0 of byte 0 is set.  Every directory entry
the decoder returns must keep its payload inside the payload area and name a
quantizer the format defines (FORMAT 3.2: uniform or dependent for the
quantized modes, none for the lossless ones), and a tensor it decodes must
match its CRC-32; errors are fine, crashes are not.
fuzz_roundtrip inputs are level records, replayed by their fuzz binary only.
"""
from __future__ import annotations

import struct
from pathlib import Path

import pytest
from conftest import with_header_crc
from regressions.restamp import REGRESSIONS, STREAM_TARGETS, stream_start

from tinycabac import native
from tinycabac.container import FORMAT_VERSION, QUANTIZED_MODES, QUANTIZER_DEPENDENT, QUANTIZER_UNIFORM, FormatError

INPUTS = sorted(p for target in STREAM_TARGETS for p in (REGRESSIONS / target).glob("*") if p.is_file())


def stream_of(path: Path) -> bytes:
    data = path.read_bytes()
    stream = bytearray(data[stream_start(path, data) :])
    if data[0] & 1 and len(stream) >= 20 and len(stream) - 20 >= struct.unpack_from("<I", stream, 8)[0]:
        return with_header_crc(stream)
    return bytes(stream)


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_saved_streams_carry_the_current_format_version(path):
    """One of an older version would stop at the version check and test
    nothing more: tests/regressions/restamp.py updates them with a format."""
    stream = stream_of(path)
    assert stream[:4] != b"TCAB" or stream[4] == FORMAT_VERSION


@pytest.mark.parametrize("path", INPUTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_regression_input_is_rejected_or_decoded_consistently(path):
    try:
        stream = native.Stream(stream_of(path))
    except (native.DecodeError, FormatError):
        return
    payload_start = 20 + stream._stream.directory_size
    for index in range(stream.tensor_count):
        info = stream.info(index)
        assert payload_start <= info.payload_offset, f"{info.name}: payload starts inside the header/directory"
        assert info.payload_offset + info.payload_size <= stream.end_of_payloads
        allowed = (QUANTIZER_UNIFORM, QUANTIZER_DEPENDENT) if info.mode in QUANTIZED_MODES else (QUANTIZER_UNIFORM,)
        assert info.quantizer in allowed, f"{info.name}: reserved quantizer {info.quantizer} accepted"
        try:
            values = stream.decode(index)
        except (native.DecodeError, FormatError, ValueError):
            continue
        assert native.crc32(values.astype(values.dtype.newbyteorder("<")).tobytes()) == info.crc32
