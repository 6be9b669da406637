"""tcdec's working memory (prediction rings, factors, peak entries) across
the tensors of one Decoder.

read(), read_into() and chunks() take it from one buffer the Decoder owns
and grows only for a tensor that needs more; readers from open() own
theirs.  Tensors of every kind of working memory, in an order where it
grows and shrinks and with the shared buffer filled with junk between
tensors, must decode as the C decoder does, on the MicroPython unix port
(viper and plain path) and on CPython; interleaved open() readers too,
with shared reads between their pieces; and the shared path must not
allocate a buffer per tensor.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from test_micropython import MODULE_DIR, TIMEOUT, _low_rank, _repeated_rows, c_decode, micropython, tcdec
from test_micropython_peaks import laplace, with_peaks

import tinycabac

# Each kind of working memory, in stream order; the script reads them in
# READ_ORDER, where the buffer grows (24 -> 200 -> 4000) and every tensor
# after "peaked" finds the bytes of a larger one before it.
KINDS = {  # name: (prediction, history, peaks)
    "peaked": ("auto", None, True),
    "factors": ("factors", 36, False),
    "scale": ("scale", 200, False),
    "peaked_scale": ("scale", 72, True),
    "difference": ("difference", 24, False),
    "plain": ("none", None, False),
    "quantized": ("difference", 30, False),
}
READ_ORDER = ["difference", "scale", "factors", "peaked", "peaked_scale", "difference", "quantized", "plain",
              "factors", "scale"]  # fmt: skip


def work_stream() -> bytes:
    rng = np.random.default_rng(30)
    tensors = {
        "peaked": with_peaks(rng, laplace(rng, (2000, 2, 3), 12), 0, 127).astype(np.int8),
        "factors": np.clip(np.rint(_low_rank(rng, 40, 36, 4, 14, 2)), -128, 127).astype(np.int8),
        "scale": _repeated_rows(rng, 12, 200, -128, 127, 3, np.int8),
        "peaked_scale": with_peaks(rng, laplace(rng, (16, 3, 3, 8), 20), 0, 127).astype(np.int8),
        "difference": _repeated_rows(rng, 10, 24, -40, 40, 1, np.int8),
        "plain": laplace(rng, (5, 7), 3).astype(np.int8),
        "quantized": (np.tile(rng.standard_normal((1, 6, 5)), (8, 1, 1)) + rng.standard_normal((8, 6, 5)) * 0.05)
        .astype(np.float32),
    }
    prediction = {name: kind[0] for name, kind in KINDS.items()}
    history = {name: kind[1] for name, kind in KINDS.items() if kind[1]}
    return tinycabac.encode(tensors, prediction=prediction, history=history, step=0.01)


@pytest.fixture(scope="module")
def stream() -> bytes:
    data = work_stream()
    infos = {info.name: info for info in tinycabac.info(data)}
    assert list(infos) == list(KINDS)
    for name, (prediction, history, peaks) in KINDS.items():
        info = infos[name]
        assert info.prediction == ("none" if prediction == "auto" else prediction), name
        assert (info.history, bool(info.peak)) == (history or 0, peaks), name
    sizes = {name: info.work_size for name, info in infos.items()}
    assert sizes == {"peaked": 4000, "factors": 148, "scale": 200, "peaked_scale": 104, "difference": 24,
                     "plain": 0, "quantized": 30}  # fmt: skip
    return data


# One script for both interpreters: JSON lines of decoded digests, and of
# whether the shared buffer was replaced by each read.
SCRIPT = """
import sys, gc, hashlib, binascii, json
sys.path.insert(0, MODULE_DIR)
import tcdec

data = open(STREAM, 'rb').read()


def digest(view):
    return binascii.hexlify(hashlib.sha256(bytes(view)).digest()).decode()


def poison(decoder):
    work = decoder._work
    for i in range(len(work)):
        work[i] = 0xA5


def read_all(decoder, api, name):
    info = decoder.info(name)
    if api == 'read':
        return bytes(decoder.read(name))
    if api == 'read_into':
        out = bytearray(info.nbytes)
        decoder.read_into(name, out)
        return out
    out = bytearray()
    piece = bytearray(7 * info.itemsize)
    for count in decoder.chunks(name, piece):
        out += piece[:count * info.itemsize]
    return out


def shared_reads(accelerated, api, junk):
    decoder = tcdec.Decoder(data, 1024, accelerated)
    digests, grew = [], []
    for name in ORDER:
        before = decoder._work
        digests.append(digest(read_all(decoder, api, name)))
        grew.append(decoder._work is not before)
        if junk and decoder._work is not None:
            poison(decoder)
    print(json.dumps({'test': 'shared', 'accelerated': accelerated, 'api': api, 'junk': junk,
                      'digests': digests, 'grew': grew}))


def interleaved(accelerated):
    # open() readers in 5-element pieces through a 64-byte window; in the
    # first rounds a shared read, and junk in the shared buffer, after each
    decoder = tcdec.Decoder(open(STREAM, 'rb'), 64, accelerated)
    names = [name for name in OPEN if name != 'plain']
    readers = [decoder.open(name) for name in names]
    outputs = [bytearray() for _ in names]
    rounds = 0
    active = True
    while active:
        active = False
        for reader, output in zip(readers, outputs):
            piece = bytearray(5 * reader.info.itemsize)
            count = reader.readinto(piece)
            output += piece[:count * reader.info.itemsize]
            active = active or count > 0
        if rounds < 2 * len(ORDER):
            decoder.read(ORDER[rounds % len(ORDER)])
            poison(decoder)
        rounds += 1
    print(json.dumps({'test': 'open', 'accelerated': accelerated, 'names': names,
                      'digests': [digest(output) for output in outputs]}))


def heap():
    # bytes allocated per read_into of a tensor with 4000 bytes of working
    # memory, and of one with none, once the buffer is there
    decoder = tcdec.Decoder(data)
    out = bytearray(decoder.info('peaked').nbytes)
    result = {'test': 'heap'}
    for name in ('peaked', 'plain'):
        decoder.read_into(name, out)
        gc.collect()
        gc.disable()
        start = gc.mem_alloc()
        for _ in range(10):
            decoder.read_into(name, out)
        result[name] = (gc.mem_alloc() - start) // 10
        gc.enable()
    print(json.dumps(result))


for accelerated in ((True, False) if tcdec.ACCELERATED else (False,)):
    for api in ('read', 'read_into', 'chunks'):
        for junk in (False, True):
            shared_reads(accelerated, api, junk)
    interleaved(accelerated)
if hasattr(gc, 'mem_alloc'):
    heap()
print(json.dumps({'test': 'done', 'accelerated': tcdec.ACCELERATED}))
"""


def run_script(interpreter: str, data: bytes, tmp_path) -> list[dict]:
    path = tmp_path / "work.tcb"
    path.write_bytes(data)
    script = tmp_path / "work.py"
    constants = (f"MODULE_DIR = {str(MODULE_DIR)!r}\nSTREAM = {str(path)!r}\nORDER = {READ_ORDER!r}\n"
                 f"OPEN = {list(KINDS)!r}\n")  # fmt: skip
    script.write_text(constants + SCRIPT)
    process = subprocess.run([interpreter, str(script)], capture_output=True, text=True, timeout=TIMEOUT)
    assert process.returncode == 0, process.stderr[-3000:]
    return [json.loads(line) for line in process.stdout.splitlines()]


def expected_growth() -> list[bool]:
    sizes = {"peaked": 4000, "factors": 148, "scale": 200, "peaked_scale": 104, "difference": 24, "plain": 0,
             "quantized": 30}  # fmt: skip
    grew, largest = [], 0
    for name in READ_ORDER:
        grew.append(sizes[name] > largest)
        largest = max(largest, sizes[name])
    return grew


def check_results(lines: list[dict], data: bytes, accelerated: bool):
    expected = {name: digest for name, _, _, digest in c_decode(data)}
    assert lines[-1] == {"test": "done", "accelerated": accelerated}
    paths = [True, False] if accelerated else [False]
    shared = [line for line in lines if line["test"] == "shared"]
    assert [(line["accelerated"], line["api"], line["junk"]) for line in shared] == [
        (path, api, junk) for path in paths for api in ("read", "read_into", "chunks") for junk in (False, True)
    ]
    for line in shared:
        assert line["digests"] == [expected[name] for name in READ_ORDER], line
        # one buffer, replaced only by a tensor that needs more than any before
        assert line["grew"] == expected_growth(), line
    opened = [line for line in lines if line["test"] == "open"]
    assert [line["accelerated"] for line in opened] == paths
    for line in opened:
        assert line["digests"] == [expected[name] for name in line["names"]], line
        assert len(line["names"]) == len(KINDS) - 1


def test_growth_order_grows_and_shrinks():
    grew = expected_growth()
    assert grew == [True, True, False, True, False, False, False, False, False, False]


def test_shared_work_memory_on_micropython(stream, tmp_path):
    lines = run_script(micropython(), stream, tmp_path)
    check_results(lines, stream, accelerated=True)
    heap = [line for line in lines if line["test"] == "heap"]
    assert len(heap) == 1
    # a fresh 4000-byte buffer per read would cost 4000 more than a tensor
    # without working memory; the shared one costs a memoryview
    assert heap[0]["peaked"] - heap[0]["plain"] < 512, heap[0]


def test_shared_work_memory_on_cpython(stream, tmp_path):
    lines = run_script(sys.executable, stream, tmp_path)
    check_results(lines, stream, accelerated=False)
    assert not [line for line in lines if line["test"] == "heap"]


def test_shared_and_open_readers_hold_their_own_buffers(stream):
    """In process (CPython): shared readers slice the decoder's one buffer,
    exactly work_size bytes; an open() reader owns a buffer of its own."""
    decoder = tcdec.Decoder(stream)
    assert decoder._work is None
    decoder.read("peaked")
    work = decoder._work
    assert len(work) == 4000
    for name in ("factors", "scale", "difference", "peaked_scale", "quantized", "plain"):
        decoder.read(name)
        assert decoder._work is work
    chunks = decoder.chunks("scale", bytearray(16))
    next(chunks)
    reader = tcdec.TensorReader(decoder, decoder.info("factors"), True)
    assert len(reader._ring) == 148 and reader._ring.obj is work.obj
    opened = decoder.open("scale")
    assert len(opened._ring) == 200 and opened._ring.obj is not work.obj
    assert bytes(opened._ring) == bytes([decoder.info("scale").initial_activity]) * 200
    with pytest.raises(RuntimeError):
        next(chunks)  # the shared state and buffer went to the factors' reader


@pytest.mark.parametrize("count", [0, 1, 2, 3, 7, 8, 9, 200, 4000])
def test_fill_sets_exactly_count_bytes(count):
    buffer = bytearray(b"\x11" * 4001)
    tcdec._fill(memoryview(buffer), count, 0xA7)
    assert buffer == b"\xa7" * count + b"\x11" * (4001 - count)
