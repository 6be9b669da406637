"""Decode a batch of streams with tcdec and print one JSON line per stream and mode.

Runs unchanged under MicroPython (unix port) and CPython, so one process
decodes hundreds of streams:

    micropython decode_batch.py MODULE_DIR BUNDLE MODES

MODULE_DIR holds tcdec (.py or .mpy) and usually tcdec_viper.  BUNDLE is b"TCBUNDLE" followed by
streams, each a little-endian u32 length and the bytes.  MODES is a comma
list of:
    bytes   tcdec.decode(data)
    file    tcdec.decode(seekable file-like, 64-byte window)
    stream  tcdec.decode(non-seekable reader without seek/tell, 64-byte window)
    path    tcdec.decode(open(temporary file)), default window
    chunks  Decoder.open(i).readinto(7-element buffer) for every tensor
    plain   tcdec.decode(data, accelerated=False)
Each line: {"item": i, "mode": m, "tensors": [[name, shape, typecode, sha256], ...]}
or {"item": i, "mode": m, "error": class name, "status": tc_status}; a
non-DecodeError exception prints "crash" and the harness fails the test.
The last line is {"done": n, "module": tcdec.__file__, "accelerated": bool}.
"""
import gc
import io
import json
import struct
import sys

try:
    from binascii import hexlify
except ImportError:
    hexlify = None

import hashlib


def hex_digest(hasher):
    return hexlify(hasher.digest()).decode()


class ForwardOnly:
    """A stream that can only read forward (like a socket or a UART)."""

    def __init__(self, data):
        self._inner = io.BytesIO(data)

    def read(self, size):
        return self._inner.read(size)

    def readinto(self, buffer):
        return self._inner.readinto(buffer)


def describe(tensors):
    result = []
    for name in sorted(tensors):
        shape, data = tensors[name]
        result.append([name, list(shape), typecode_of(data), hex_digest(hashlib.sha256(bytes(data)))])
    return result


def typecode_of(data):
    typecode = getattr(data, "typecode", None)
    if typecode is None:  # MicroPython arrays have no .typecode
        text = repr(data[:0])
        typecode = text[7]  # "array('b')"
    return typecode


def decode_chunks(tcdec, data):
    decoder = tcdec.Decoder(data)
    result = []
    for index in range(len(decoder)):
        info = decoder.info(index)
        hasher = hashlib.sha256()
        buffer = bytearray(7 * info.itemsize)
        view = memoryview(buffer)
        reader = decoder.open(index)
        total = 0
        while True:
            count = reader.readinto(buffer)
            if count == 0:
                break
            hasher.update(view[: count * info.itemsize])
            total += count
        if total != info.size:
            raise AssertionError("chunked decode gave %d of %d elements" % (total, info.size))
        result.append([info.name, list(info.shape), info.typecode, hex_digest(hasher)])
    result.sort()
    return result


def decode_mode(tcdec, data, mode, scratch):
    if mode == "bytes":
        return describe(tcdec.decode(data))
    if mode == "file":
        return describe(tcdec.decode(io.BytesIO(data), 64))
    if mode == "stream":
        return describe(tcdec.decode(ForwardOnly(data), 64))
    if mode == "path":
        with open(scratch, "wb") as f:
            f.write(data)
        with open(scratch, "rb") as f:
            return describe(tcdec.decode(f))
    if mode == "chunks":
        return decode_chunks(tcdec, data)
    if mode == "plain":
        return describe(tcdec.decode(data, 1024, False))
    raise ValueError("unknown mode " + mode)


def read_bundle(path):
    """Yield the streams one at a time: a bundle may not fit the heap whole.
    The caller drops each stream before asking for the next; collecting
    first puts the next one at the bottom of MicroPython's heap rather than
    between the last decode's garbage, where it would split the free space
    that the next large output array needs."""
    with open(path, "rb") as f:
        if f.read(8) != b"TCBUNDLE":
            raise ValueError("not a bundle")
        while True:
            size = f.read(4)
            if not size:
                return
            gc.collect()
            yield f.read(struct.unpack("<I", size)[0])


def main():
    module_dir, bundle, modes = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    sys.path.insert(0, module_dir)
    import tcdec

    scratch = bundle + ".scratch"
    count = 0
    for item, data in enumerate(read_bundle(bundle)):
        count += 1
        for mode in modes:
            line = {"item": item, "mode": mode}
            try:
                line["tensors"] = decode_mode(tcdec, data, mode, scratch)
            except tcdec.DecodeError as error:
                line["error"] = type(error).__name__
                line["status"] = error.status
            except Exception as error:  # a bug, not a rejection: the test fails on it
                line["crash"] = "%s: %s" % (type(error).__name__, error)
            print(json.dumps(line))
        data = None  # see read_bundle
    print(json.dumps({"done": count, "module": tcdec.__file__, "accelerated": tcdec.ACCELERATED}))


main()
