"""tcdec (firmware/micropython) on format 13's channel peaks (FORMAT 5.9),
varint directory fields (FORMAT 2, 3.2) and trained context starts (5.2),
against the C decoder of record.

Peaked streams are decoded on the MicroPython unix port (viper path and
plain path), and on CPython (plain path), whole, through a 64-byte window
(seekable and forward-only), in 7-element pieces and in pieces of 1 to 9
elements: each must give the C decoder's bytes, or its error status.
"""
from __future__ import annotations

import ast
import re
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

from conftest import with_header_crc
from test_micropython import (
    MICROPYTHON_MODES,
    MODULE_DIR,
    REPO,
    TIMEOUT,
    assert_matches_c,
    bit_flips,
    c_decode,
    micropython,
    pieces_script,
    run_batch,
    tcdec,
    truncations,
    wasm_micropython,
)

import tinycabac
from tinycabac import native
from tinycabac.container import MODE_LOSSLESS, PREDICT_NONE, PREDICT_SCALE, TensorEntry, leb128, write_stream
from tinycabac.peaks import truncated_binary

# ---------------------------------------------------------------------------
# Peaked streams.


def channel_rows(levels: np.ndarray, axis: int) -> np.ndarray:
    """Element indices (C order) as [channel, place in the channel] (FORMAT 5.9)."""
    index = np.arange(levels.size).reshape(levels.shape)
    return np.moveaxis(index, axis, 0).reshape(levels.shape[axis], -1)


def with_peaks(rng, levels: np.ndarray, axis: int, magnitude: int, places=None) -> np.ndarray:
    """`levels` (int64) with one +-magnitude per channel along `axis`, at
    `places` (random if None), and every other level kept below it."""
    levels = np.clip(levels, -(magnitude - 1), magnitude - 1)
    rows = channel_rows(levels, axis)
    flat = levels.ravel().copy()
    for channel, row in enumerate(rows):
        place = rng.integers(row.size) if places is None else places[channel]
        flat[row[place]] = magnitude if rng.random() < 0.5 else -magnitude
    return flat.reshape(levels.shape)


def hand_peaked(name: str, levels: np.ndarray, axis: int, magnitude: int, dtype, offset: int = 0,
                history: int = 0) -> TensorEntry:
    """A lossless entry coded with channel peaks along `axis` (FORMAT 5.9) by
    hand, whatever axis the encoder would choose: each channel's first
    +-magnitude is its peak; scale prediction (FORMAT 5.7) when `history`."""
    levels = np.asarray(levels, dtype=np.int64)
    rows = channel_rows(levels, axis)
    flat = levels.ravel()
    mask = np.zeros(flat.size, dtype=bool)
    preamble = []
    for row in rows:
        place = int(np.flatnonzero(np.abs(flat[row]) == magnitude)[0])
        mask[row[place]] = True
        code, bits = truncated_binary(place, row.size)
        preamble.append(((code << 1) | int(flat[row[place]] < 0), bits + 1))
    coded = flat[~mask]
    activity = native.initial_activity(coded) if coded.size else 0
    columns = native.column_activities(flat, history, activity, mask)[~mask] if history else None
    payload = native.encode_levels(coded, name, activity, columns, preamble)
    values = (levels + offset).astype(dtype)
    return TensorEntry(name, np.dtype(dtype), levels.shape, MODE_LOSSLESS, payload, zlib.crc32(values.tobytes()),
                       activity, PREDICT_SCALE if history else PREDICT_NONE, history, offset=offset,
                       peak=magnitude, peak_axis=axis)  # fmt: skip


def laplace(rng, shape, scale) -> np.ndarray:
    return np.rint(rng.laplace(size=shape) * scale).astype(np.int64)


def peak_count(data: bytes) -> int:
    """How many of a stream's tensors have channel peaks, as tcdec reads them."""
    decoder = tcdec.Decoder(data)
    return sum(1 for index in range(len(decoder)) if decoder.info(index).peak)


def encoder_peaked(seed: int) -> list[bytes]:
    """Streams whose int8 tensors tinycabac's encoder codes with peaks: every
    output channel (first or last axis) holds a +-127, as TFLite's
    symmetric per-channel quantization leaves them; with and without
    scale prediction, beside tensors without peaks."""
    rng = np.random.default_rng(seed)
    streams = []
    for options in ({}, {"prediction": "scale"}, {"prediction": "scale", "history": {"conv": 8, "dense": 40}}):
        tensors = {
            "conv": with_peaks(rng, laplace(rng, (16, 3, 3, 8), 20), 0, 127).astype(np.int8),
            "depthwise": with_peaks(rng, laplace(rng, (1, 3, 3, 32), 30), 3, 127).astype(np.int8),
            "dense": with_peaks(rng, laplace(rng, (24, 40), 12), 0, 127).astype(np.int8),
            "bias": rng.integers(-3000, 3000, size=24).astype(np.int32),
            "plain": laplace(rng, (5, 7), 3).astype(np.int8),
        }
        streams.append(tinycabac.encode(tensors, **options))
    return streams


def hand_peaked_streams(seed: int) -> list[bytes]:
    """Peaks the encoder does not choose but the format allows: a middle
    axis; channels of 1 element (all peaks, k = 0), of a power of two (no
    long codes), of 3, of 32767 (nearly all long) and of 32768 (the limit);
    the first and the last element a peak; int16, int32 with P = 2**31 and
    uint8 with an offset; scale prediction whose rows do not align with the
    channels, H = 1; 2000 channels, whose entries span many 64-byte
    windows; and a peaked tensor between tensors without peaks, which reuse
    the decoder's state."""
    rng = np.random.default_rng(seed)
    streams = []
    middle = with_peaks(rng, laplace(rng, (4, 5, 6), 9), 1, 127)
    streams.append(write_stream([hand_peaked("middle", middle, 1, 127, np.int8)]))
    streams.append(write_stream([hand_peaked("middle_scale", middle, 1, 127, np.int8, history=7)]))
    streams.append(write_stream([hand_peaked("middle_h1", middle, 1, 127, np.int8, history=1)]))
    ones = with_peaks(rng, np.zeros((5, 1), np.int64), 0, 100)
    streams.append(write_stream([hand_peaked("ones", ones, 0, 100, np.int8)]))
    streams.append(write_stream([hand_peaked("ones_last", with_peaks(rng, np.zeros((1, 9), np.int64), 1, 3), 1, 3,
                                             np.int8, history=2)]))  # fmt: skip
    power = with_peaks(rng, laplace(rng, (8, 16), 5), 0, 60)
    streams.append(write_stream([hand_peaked("power", power, 0, 60, np.int8)]))
    three = with_peaks(rng, laplace(rng, (3, 7), 2), 1, 9)
    streams.append(write_stream([hand_peaked("three", three, 1, 9, np.int8, history=3)]))
    ends = with_peaks(rng, laplace(rng, (6, 10), 5), 0, 127, places=[0, 9, 0, 9, 5, 9])
    streams.append(write_stream([hand_peaked("ends", ends, 0, 127, np.int8)]))
    edge = with_peaks(rng, laplace(rng, (10, 6), 5), 1, 127, places=[9, 0, 9, 0, 9, 9])
    streams.append(write_stream([hand_peaked("edge_last", edge, 1, 127, np.int8, history=6)]))
    long_codes = with_peaks(rng, laplace(rng, (1, 32767), 30), 0, 127, places=[32766])
    streams.append(write_stream([hand_peaked("n32767", long_codes, 0, 127, np.int8)]))
    limit = with_peaks(rng, laplace(rng, (32768, 2), 30), 1, 127)
    streams.append(write_stream([hand_peaked("n32768", limit, 1, 127, np.int8, history=2)]))
    wide = with_peaks(rng, laplace(rng, (7, 30), 3000), 0, 32767)
    streams.append(write_stream([hand_peaked("i16", wide, 0, 32767, np.int16, history=30)]))
    # int32: every peak -2**31 (with offset 5 the value is 5 - 2**31), or P = 2**31 - 1
    low = laplace(rng, (4, 3, 5), 2**20)
    flat = low.reshape(4, 15)
    flat[np.arange(4), rng.integers(15, size=4)] = -(2**31)
    streams.append(write_stream([hand_peaked("i32_top", low, 0, 2**31, np.int32, offset=5)]))
    high = with_peaks(rng, laplace(rng, (3, 4, 4), 2**24), 2, 2**31 - 1)
    streams.append(write_stream([hand_peaked("i32", high, 2, 2**31 - 1, np.int32, offset=0)]))
    unsigned = with_peaks(rng, laplace(rng, (5, 12), 20), 1, 127)
    streams.append(write_stream([hand_peaked("u8", unsigned, 1, 127, np.uint8, offset=128)]))
    many = with_peaks(rng, laplace(rng, (2000, 4), 4), 0, 50)
    streams.append(write_stream([hand_peaked("many", many, 0, 50, np.int8, history=4)]))
    plain = laplace(rng, (9, 11), 6)
    plain_entry = TensorEntry("before", np.dtype(np.int8), plain.shape, MODE_LOSSLESS,
                              native.encode_levels(plain, "before", 20), zlib.crc32(plain.astype(np.int8).tobytes()),
                              20)  # fmt: skip
    after = TensorEntry("after", np.dtype(np.int8), plain.shape, MODE_LOSSLESS,
                        native.encode_levels(-plain, "after", 20), zlib.crc32((-plain).astype(np.int8).tobytes()), 20)
    streams.append(write_stream([plain_entry, hand_peaked("mixed", middle, 1, 127, np.int8, history=5), after]))
    return streams


def out_of_range_peaks() -> list[bytes]:
    """Peaks whose value falls outside the dtype (FORMAT 6.1: a corrupt
    payload, -8), which no encoder writes: int8 with P = 127 and offset 10
    (137), a negative one with offset -10, uint8 with offset 0 (-5), and
    int8 with P = 2**31."""
    rng = np.random.default_rng(3)
    cases = []
    for magnitude, offset, dtype, negative in ((127, 10, np.int8, False), (127, -10, np.int8, True),
                                               (5, 0, np.uint8, True), (2**31, 0, np.int8, False)):
        levels = laplace(rng, (3, 8), 2).clip(-4, 4)
        levels[:, 2] = -magnitude if negative else magnitude
        entry = hand_peaked("bad", levels, 0, magnitude, np.int64, offset)
        cases.append(write_stream([TensorEntry(**dict(entry.__dict__, dtype=np.dtype(dtype), crc32=0))]))
    return cases


def test_streams_carry_peaks():
    assert all(peak_count(data) >= 2 for data in encoder_peaked(1))
    assert all(peak_count(data) >= 1 for data in hand_peaked_streams(2))


@pytest.mark.parametrize("source", ["encoder", "hand"])
def test_peaked_streams_on_micropython(tmp_path, source):
    """Viper and plain path, from bytes, through a 64-byte window (seekable
    and forward-only: the entries, then values, wait for input alike) and
    in 7-element pieces, equal the C decoder's output."""
    streams = encoder_peaked(4) if source == "encoder" else hand_peaked_streams(5)
    results, footer = run_batch([micropython()], MODULE_DIR, streams, MICROPYTHON_MODES + ",path,plain", tmp_path)
    assert footer["accelerated"] is True
    assert_matches_c(streams, results)
    assert all(isinstance(got, list) for by_mode in results for got in by_mode.values())


def test_peaked_streams_on_cpython(tmp_path):
    streams = encoder_peaked(6) + hand_peaked_streams(7)
    results, footer = run_batch([sys.executable], MODULE_DIR, streams, "bytes,file,stream,chunks", tmp_path)
    assert footer["accelerated"] is False
    assert_matches_c(streams, results)
    assert all(isinstance(got, list) for by_mode in results for got in by_mode.values())


def test_peaked_streams_on_the_webassembly_port(tmp_path):
    """A 32-bit MicroPython (31-bit small ints; plain path): P = 2**31 and
    2**31 - 1, 2000 channels through a 64-byte window."""
    streams = encoder_peaked(16)[:1] + hand_peaked_streams(17)
    results, footer = run_batch(wasm_micropython(), MODULE_DIR, streams, "bytes,chunks,file", tmp_path)
    assert footer["accelerated"] is False
    assert_matches_c(streams, results)
    assert all(isinstance(got, list) for by_mode in results for got in by_mode.values())


def test_peaked_tensors_in_pieces(tmp_path):
    """The peak state (entries read, the next peak, the scale ring's slot)
    carries over between readinto() calls: pieces of 1 to 9 elements
    through a 64-byte window, viper and plain path, on MicroPython and
    CPython."""
    rng = np.random.default_rng(8)
    middle = with_peaks(rng, laplace(rng, (4, 5, 6), 9), 1, 127)
    many = with_peaks(rng, laplace(rng, (300, 3), 4), 0, 50)
    streams = [encoder_peaked(9)[1],
               write_stream([hand_peaked("middle", middle, 1, 127, np.int8, history=7),
                             hand_peaked("many", many, 0, 50, np.int8)])]  # fmt: skip
    script, expected = pieces_script(tmp_path, streams)
    for interpreter in (micropython(), sys.executable):
        process = subprocess.run([interpreter, str(script)], capture_output=True, text=True, timeout=TIMEOUT)
        assert process.returncode == 0, process.stderr
        assert process.stdout.splitlines() == expected * 18, interpreter


def test_out_of_range_peaks_are_corrupt_payloads(tmp_path):
    streams = out_of_range_peaks()
    assert all(c_decode(data) == tcdec.CorruptPayloadError.status for data in streams)
    for interpreter, modes in (([micropython()], "bytes,chunks,plain"), ([sys.executable], "bytes,chunks")):
        results, _ = run_batch(interpreter, MODULE_DIR, streams, modes, tmp_path)
        assert_matches_c(streams, results, exact_errors=tuple(modes.split(",")))


def test_damaged_peaked_streams_match_c(tmp_path):
    """Every cut and random bit flips of peaked streams: tcdec's verdict is
    the C decoder's (output or status), on the viper and the plain path."""
    rng = np.random.default_rng(10)
    small = write_stream([hand_peaked("m", with_peaks(rng, laplace(rng, (4, 3, 5), 9), 1, 127), 1, 127, np.int8,
                                      history=3)])  # fmt: skip
    streams = truncations(small) + bit_flips(small, 200, 11) + bit_flips(encoder_peaked(12)[2], 150, 13)
    results, _ = run_batch([micropython()], MODULE_DIR, streams, "bytes,chunks,plain", tmp_path)
    assert_matches_c(streams, results)
    # through a window: a seekable file (measured when opened, so a flipped
    # directory_size is found short before its bytes are read)
    results, _ = run_batch([micropython()], MODULE_DIR, streams[::3], "file", tmp_path)
    assert_matches_c(streams[::3], results, exact_errors=())


# ---------------------------------------------------------------------------
# The directory's varints and peak fields (FORMAT 2, 3.2, 7).


def raw_stream(entries: list[bytes], payload_area: bytes = bytes(8)) -> bytes:
    directory = b"".join(entries)
    head = bytearray(b"TCAB" + struct.pack("<BBHII", 13, 0, len(entries), len(directory), len(payload_area)))
    return with_header_crc(head + bytes(4) + directory + payload_area)


def raw_entry(*, dtype=1, mode=0, prediction=0, history=b"", ndim=None, dims=(leb128(8),), lossless=b"\0\0",
              payload=b"\0\x04", name=b"x") -> bytes:
    """A directory entry from field bytes (varints as given, valid or not)."""
    return (bytes([len(name)]) + name + bytes([dtype, mode, 0, prediction]) + history
            + bytes([len(dims) if ndim is None else ndim]) + b"".join(dims) + lossless + payload + bytes(4))  # fmt: skip


def peak_fields(peak: int, axis: int | None = None, offset: bytes = b"\0") -> bytes:
    return offset + leb128(peak) + (b"" if axis is None else bytes([axis]))


def directory_faults() -> list[tuple[bytes, int]]:
    """(stream, the status FORMAT 7 gives it): malformed varints in every
    varint field are reserved fields (-6), values beyond a field's limit
    limits (-7), and the peak rules, in the C decoder's order."""
    cases = [
        # varints of 6 bytes, a fifth byte above 0x0F, a last byte 0 after the first
        (raw_entry(dims=(b"\x88\x80\x80\x80\x80\x00",)), -6),
        (raw_entry(dims=(b"\x88\x80\x80\x80\x10",)), -6),
        (raw_entry(dims=(b"\x88\x00",)), -6),
        (raw_entry(dims=(b"\x80\x00",)), -6),
        (raw_entry(dims=(b"\x88\x80\x80\x80\x00",)), -6),
        (raw_entry(dims=(leb128(2**31),)), -7),
        (raw_entry(dims=(leb128(2**32 - 1),)), -7),
        (raw_entry(dims=(leb128(2**31 - 1), leb128(2))), -7),
        (raw_entry(dims=(b"\x88",)), -6),  # the next field's 0 ends it
        (raw_entry(payload=b"\0\x84\x84\x84\x84")[:-4], -6),  # runs past the directory
        (raw_entry(prediction=2, history=b"\x81\x00"), -6),
        (raw_entry(prediction=2, history=leb128(65536)), -7),
        (raw_entry(prediction=2, history=leb128(0)), -6),
        # field by field: a reserved dtype or prediction before history's limit,
        # history's limit before a rank (tests/spec/specdec.py reads FORMAT 7 so too)
        (raw_entry(prediction=2, history=leb128(65536), dtype=9), -6),
        (raw_entry(prediction=4, history=leb128(65536)), -6),
        (raw_entry(prediction=3, history=leb128(65536) + b"\0\0"), -7),
        (raw_entry(prediction=3, history=leb128(65536), ndim=0, dims=(), lossless=b"", payload=b"")[:-4], -7),
        (raw_entry(lossless=b"\xff\xff\xff\xff\x1f\0"), -6),
        (raw_entry(lossless=b"\x80\x00\0"), -6),
        (raw_entry(lossless=b"\0\x80\x00"), -6),
        (raw_entry(payload=b"\x80\x00\x04"), -6),
        (raw_entry(payload=b"\0\x84\x00"), -6),
        (raw_entry(payload=b"\0" + leb128(9)), -6),  # outside the payload area
        # peaks
        (raw_entry(lossless=peak_fields(2**31 + 1, 0)), -7),
        (raw_entry(lossless=peak_fields(2**32 - 1, 0)), -7),
        (raw_entry(prediction=1, history=leb128(2), lossless=peak_fields(5, 0)), -6),
        (raw_entry(prediction=3, history=leb128(2) + b"\1\0", lossless=peak_fields(5, 0)), -6),
        (raw_entry(prediction=1, history=leb128(2), lossless=peak_fields(2**31 + 1, 0)), -7),
        (raw_entry(lossless=peak_fields(5, 1)), -6),  # axis >= ndim
        (raw_entry(dims=(leb128(3), leb128(0)), lossless=peak_fields(5, 0), payload=b"\0\0"), -6),
        (raw_entry(dims=(leb128(70000), leb128(0)), lossless=peak_fields(5, 0), payload=b"\0\0"), -6),
        (raw_entry(dims=(leb128(65536), leb128(1)), lossless=peak_fields(5, 0)), -7),
        (raw_entry(dims=(leb128(2), leb128(32769)), lossless=peak_fields(5, 0)), -7),
        (raw_entry(dims=(leb128(2), leb128(32769)), lossless=peak_fields(5, 2)), -6),
        (raw_entry(lossless=peak_fields(5), payload=b"")[:-4], -6),  # the entry ends before peak_axis
    ]
    return [(raw_stream([entry]), status) for entry, status in cases]


def test_directory_faults_match_format_and_c(tmp_path):
    """tcdec reports each fault as FORMAT 7 says, on every path and port,
    and so does the C decoder."""
    cases = directory_faults()
    streams = [data for data, _ in cases]
    for interpreter, modes in (([micropython()], "bytes,file,chunks,plain"), ([sys.executable], "bytes,file,stream")):
        results, _ = run_batch(interpreter, MODULE_DIR, streams, modes, tmp_path)
        for (data, status), by_mode in zip(cases, results):
            assert set(by_mode.values()) == {status}, (data.hex(), by_mode)
    assert [c_decode(data) for data in streams] == [status for _, status in cases]


def test_directory_numbers_at_their_limits():
    """Varints of 5 bytes, a zigzag offset of -2**31 and 2**31 - 1, P = 2**31
    and the largest channels: read as the C decoder reads them."""
    entries = [
        raw_entry(name=b"a", dims=(leb128(1),), lossless=leb128(2**32 - 1) + leb128(2**31) + b"\0"),
        raw_entry(name=b"b", dims=(leb128(1),), lossless=leb128(2**32 - 2) + b"\0", payload=b"\x04\x04"),
        raw_entry(name=b"c", prediction=2, history=leb128(65535), dims=(leb128(65535), leb128(1)),
                  lossless=b"\x03" + leb128(5) + b"\0"),  # fmt: skip
    ]
    decoder = tcdec.Decoder(raw_stream(entries))
    stream = native.Stream(raw_stream(entries))
    for index, (offset, peak, axis, work) in enumerate(((-(2**31), 2**31, 0, 2), (2**31 - 1, 0, None, 0),
                                                        (-2, 5, 0, 65535 + 2 * 65535))):  # fmt: skip
        info, c_info = decoder.info(index), stream.info(index)
        assert (info.offset, info.peak, info.peak_axis, info.work_size) == (offset, peak, axis, work)
        assert (c_info.offset, c_info.peak, c_info.work_size) == (offset, peak, work)


def test_peak_fields_match_host_info():
    for data in encoder_peaked(14) + hand_peaked_streams(15):
        decoder = tcdec.Decoder(data)
        for index, summary in enumerate(tinycabac.info(data)):
            info = decoder.info(index)
            assert (info.peak, info.work_size) == (summary.peak, summary.work_size)
            assert info.peak_axis == (summary.peak_axis if summary.peak else None)
            assert len(decoder.open(index)._ring) == info.work_size


# ---------------------------------------------------------------------------
# FORMAT 5.2: the contexts' starts.


def format_init_table() -> bytes:
    text = (REPO / "docs" / "FORMAT.md").read_text()
    block = re.search(r"INIT = \[(.*?)\]", text, re.S).group(1)
    return bytes(int(x) for x in block.replace(",", " ").split())


def c_init_table() -> bytes:
    text = (REPO / "decoder_c" / "tc_model.h").read_text()
    block = re.search(r"tc_context_init\[TC_CONTEXT_COUNT\] = \{(.*?)\};", text, re.S).group(1)
    return bytes(int(x) for x in block.replace(",", " ").split())


def viper_init_table() -> bytes:
    tree = ast.parse((MODULE_DIR / "tcdec_viper.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["_CONTEXT_INIT"]:
            return ast.literal_eval(node.value)
    raise AssertionError("tcdec_viper.py has no _CONTEXT_INIT")


def test_context_init_tables_are_the_format_s():
    table = format_init_table()
    assert len(table) == 166 and all(2 <= x <= 254 for x in table)
    assert tcdec._CONTEXT_INIT == table == viper_init_table() == c_init_table()
    state = tcdec._new_state()
    tcdec._prepare_plain(state)
    contexts = list(state[tcdec._S_PREFIX : tcdec._S_CONTEXT_END])
    assert contexts == [128 * x for x in table for _ in "fs"]
