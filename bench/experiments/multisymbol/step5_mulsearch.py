# Step 5: the counts decoder (POW2=0, M=1, 12 contexts, ESC=2) with one division per weight (MULSEARCH, amsx.h):
# same encoder and bitstream, decoded bit-exactly; instructions per weight on Cortex-M4 / M0+ as in step4_mcu.py.
# Exactness: (1) the harness checks every tensor's CRC-32 on the MCU; (2) host: the corpus round trip
# (prediction none) and the same decode of the digits blob by both decoders, then both decoders on corrupted
# payloads (bytes flipped / truncated), comparing return codes and every output value.
import ctypes, sys
import numpy as np
from msym_env import build_mcu
import amsx_run
from step4_mcu import amsx_blob, count, digits_int8, CORES

BASE = dict(MB=1, NCTX=12, ESC=2)
VARIANTS = {
    "counts (3 divisions)": dict(),
    "counts, MULSEARCH=1 (search by multiplication; raw bits by division)": dict(MULSEARCH=1),
    "counts, MULSEARCH=2 (one division per weight: range / tot)": dict(MULSEARCH=2),
    "counts, MULSEARCH=3 (as 2, raw bits unrolled)": dict(MULSEARCH=3),
    "counts, MULSEARCH=1, DIVTOT=1 (range / tot by an unrolled 32/16 division)": dict(MULSEARCH=1, DIVTOT=1),
    "counts, MULSEARCH=3, DIVTOT=1": dict(MULSEARCH=3, DIVTOT=1),
    # the sign coded with tinycabac's 12 sign contexts (a different bitstream, amsx.h SIGN)
    "sign ctx, 2-entry counts (SIGN=1, SLIMIT=4096)": dict(SIGN=1, SLIMIT=4096),
    "sign ctx, 2-entry counts, MULSEARCH=1": dict(SIGN=1, SLIMIT=4096, MULSEARCH=1),
    "sign ctx, 2-entry counts, MULSEARCH=3, DIVTOT=1": dict(SIGN=1, SLIMIT=4096, MULSEARCH=3, DIVTOT=1),
    "sign ctx, 12-bit probability (SIGN=2, SRATE=7)": dict(SIGN=2, SRATE=7),
    "sign ctx, 12-bit probability, MULSEARCH=1": dict(SIGN=2, SRATE=7, MULSEARCH=1),
    "sign ctx, 12-bit probability, MULSEARCH=3, DIVTOT=1": dict(SIGN=2, SRATE=7, MULSEARCH=3, DIVTOT=1),
}
DECODER_ONLY = ("MULSEARCH", "DIVTOT")


def decode(lib, payload, n, a0):
    st = ctypes.create_string_buffer(1 << 16); out = np.zeros(n, np.int32); crc = ctypes.c_uint32()
    lib.amsx_init(st)
    rc = lib.amsx_decode(st, payload, ctypes.c_size_t(len(payload)), out.ctypes.data_as(ctypes.c_void_p),
                         ctypes.c_size_t(n), ctypes.c_uint(a0), ctypes.byref(crc))
    return rc, out, crc.value


def host_checks(ref, lib, tensors, trials=300, seed=1):
    """both decoders on the digits tensors, then on corrupted copies: same return code and outputs"""
    from tinycabac import native
    rng = np.random.default_rng(seed); ncmp = 0
    st = ctypes.create_string_buffer(1 << 16)
    for lev in tensors:
        v = np.ascontiguousarray(lev.ravel().astype(np.int32)); n = v.size
        a0 = native.initial_activity(v.astype(np.int64)); cap = 4 * n + 64; out = ctypes.create_string_buffer(cap)
        ref.amsx_init(st)
        nb = ref.amsx_encode(st, v.ctypes.data_as(ctypes.c_void_p), None, ctypes.c_size_t(n), a0, out, ctypes.c_size_t(cap))
        good = out.raw[:nb]
        rc, o, _ = decode(lib, good, n, a0)
        assert rc == 0 and np.array_equal(o, v), "clean decode differs"
        for t in range(trials):
            b = bytearray(good)
            kind = t % 3
            if kind == 0:
                for _ in range(1 + t % 4): b[rng.integers(len(b))] ^= 1 << int(rng.integers(8))
            elif kind == 1:
                b = b[:int(rng.integers(4, len(b) + 1))]
            else:
                b = bytearray(rng.integers(0, 256, len(b), dtype=np.uint8).tobytes())
            r1 = decode(ref, bytes(b), n, a0); r2 = decode(lib, bytes(b), n, a0)
            assert r1[0] == r2[0] and np.array_equal(r1[1], r2[1]) and r1[2] == r2[2], ("corrupt decode differs", t, r1[0], r2[0])
            ncmp += 1
    return ncmp


if __name__ == "__main__":
    sel = [int(a) for a in sys.argv[1:]] or range(len(VARIANTS))
    digits = digits_int8()
    from amsx_run import baseline_auto_bpw
    base_auto = baseline_auto_bpw(); rows = []
    for j, (label, d) in enumerate(VARIANTS.items()):
        if j not in sel: continue
        d = dict(BASE, **d)
        lib = amsx_run.build(f"libamsx_s5_{j}.so", **d)
        none, _, auto, nw = amsx_run.corpus_bits(lib)   # round trip, prediction none, whole corpus
        msg = (f"# {label}: corpus round trip ok, none {none.sum()/nw.sum():.4f}, auto {auto.sum()/nw.sum():.4f} bpw "
               f"({100*(auto.sum()/nw.sum()/base_auto-1):+.2f}% against tinycabac's auto)")
        if any(k in d for k in DECODER_ONLY):
            fmt = {k: v for k, v in d.items() if k not in DECODER_ONLY}
            ref = amsx_run.build("libamsx_s5_ref_" + "_".join(f"{k}{v}" for k, v in fmt.items()) + ".so", **fmt)
            msg += f"; {host_checks(ref, lib, digits)} corrupted payloads decoded as by the 3-division decoder"
        print(msg, flush=True)
        blob, n, bits = amsx_blob(lib, digits)
        for mcpu, core in CORES:
            for opt in ("-O2", "-Os"):
                elf = build_mcu(f"mcu_s5_{j}_{mcpu}{opt}.elf", mcpu, opt, "amsx", **d)
                ipw, cpw, byf = count(elf, blob, n, core)
                top = ", ".join(f"{k} {v/n:.1f}" for k, v in sorted(byf.items(), key=lambda kv: -kv[1])[:4])
                rows.append(f"| {label} | {bits/n:.3f} | {core} (-mcpu={mcpu}) | {opt} | {ipw:.1f} | {cpw:.1f} | {top} |")
                print(rows[-1], flush=True)
