"""Measure the heap tcdec needs beyond the output buffer while decoding a stream file.

    micropython [-X heapsize=N] heap_probe.py MODULE_DIR STREAM_PATH MODE [plain] [CHUNK_BYTES]

Decodes every tensor in pieces into one preallocated output buffer.  MODE:
    count     garbage collector disabled: gc.mem_alloc() then only grows, so
              its growth from before Decoder() to the end bounds everything
              the decode allocated, live or garbage ("allocated").
    gc        collector enabled: run under a small -X heapsize to show the
              decode fits; the smallest heapsize that works, minus the
              smallest that runs MODE baseline, is the true peak.
    baseline  everything except the decode (imports, buffers, hashers).
Prints one JSON line: allocated bytes (count), decoded elements, a SHA-256
per tensor and the decode time.
"""
import gc
import hashlib
import json
import sys
import time
from binascii import hexlify


def main():
    module_dir, path, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    accelerated = not (len(sys.argv) > 4 and sys.argv[4] == "plain")
    chunk_bytes = int(sys.argv[5]) if len(sys.argv) > 5 else 4096
    sys.path.insert(0, module_dir)
    import tcdec

    output = bytearray(chunk_bytes)
    full_view = memoryview(output)
    hashers = [hashlib.sha256() for _ in range(16)]
    names = []
    gc.collect()
    if mode == "baseline":
        print(json.dumps({"baseline": gc.mem_alloc()}))
        return
    if mode == "count":
        gc.disable()
    start_heap = gc.mem_alloc()
    started = time.ticks_us()
    elements = 0
    with open(path, "rb") as stream:
        decoder = tcdec.Decoder(stream, 1024, accelerated)
        for index in range(len(decoder)):
            info = decoder.info(index)
            names.append(info.name)
            hasher = hashers[index]
            for count in decoder.chunks(index, output):
                used = count * info.itemsize
                hasher.update(full_view if used == chunk_bytes else full_view[:used])
                elements += count
    elapsed_us = time.ticks_diff(time.ticks_us(), started)
    allocated = gc.mem_alloc() - start_heap
    gc.enable()
    digests = [hexlify(hashers[i].digest()).decode() for i in range(len(names))]
    result = {"elements": elements, "seconds": elapsed_us / 1e6, "names": names, "sha256": digests}
    result["accelerated"] = tcdec.ACCELERATED and accelerated
    if mode == "count":
        result["allocated"] = allocated
    print(json.dumps(result))


main()
