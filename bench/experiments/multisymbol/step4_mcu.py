# Step 4: instructions per weight on Cortex-M4 and Cortex-M0 (ARMv6-M, built -mcpu=cortex-m0plus, libgcc division)
# of amsx variants, digits int8 weights, no prediction.
# Counted in unicorn by bench/firmware_report.py's ThumbMachine; the harness (m4x_harness.c) decodes
# every tensor of a blob and checks its CRC-32.  Blob: u32 T; per tensor u32 n, a0, H, nbytes, crc, payload (padded to 4).
import ctypes, zlib, struct
import numpy as np
from msym_env import build_mcu
import firmware_report as fr
from tinycabac import native
from tinycabac.models import default_model_path
from tinycabac.tflite_io import split_tflite
import amsx_run


def amsx_blob(lib, tensors):
    state = ctypes.create_string_buffer(1 << 16)
    parts = [struct.pack("<I", len(tensors))]; nbits = n_all = 0
    for lev in tensors:
        v = np.ascontiguousarray(lev.ravel().astype(np.int32)); n = v.size
        a0 = native.initial_activity(v.astype(np.int64))
        cap = 4 * n + 64; out = ctypes.create_string_buffer(cap)
        lib.amsx_init(state)
        nb = lib.amsx_encode(state, v.ctypes.data_as(ctypes.c_void_p), None, ctypes.c_size_t(n), a0, out, ctypes.c_size_t(cap))
        assert nb > 0
        parts.append(struct.pack("<5I", n, a0, 0, nb, zlib.crc32(v.astype(np.int8).tobytes())) + out.raw[:nb] + b"\0" * (-nb % 4))
        nbits += 8 * nb; n_all += n
    return b"".join(parts), n_all, nbits

def count(elf, blob, n, core):
    m = fr.ThumbMachine(elf, core, fr.SPEED_CPUS[core][1])
    addr = m.load_input(blob)
    OUT = 0x70000000; m.uc.mem_map(OUT, 8 << 20)
    rc = m.call("bench", addr, OUT)
    assert rc == 0, rc
    return m.instructions / n, m.cycles / n, m.instructions_by_function()

def digits_int8():
    """the digits model's int8 weight tensors (the blob every row here decodes)"""
    int8_weights, _, _ = split_tflite(default_model_path("int8").read_bytes())
    return [w for w in int8_weights.values() if w.dtype.name == "int8"]


VARIANTS = {
    "amsx M=1, 12 ctx, ESC=2, counts (POW2=0)": ("amsx", dict(MB=1, NCTX=12, ESC=2)),
    "amsx M=1, 12 ctx, ESC=2, POW2 R=2^4 SHMAX=5 (division for t and raw bits)": ("amsx", dict(MB=1, NCTX=12, ESC=2, POW2=1, LOG2R=4, SHMAX=5)),
    "amsx M=1, 12 ctx, ESC=2, POW2 R=2^4 SHMAX=5, DIVFREE": ("amsx", dict(MB=1, NCTX=12, ESC=2, POW2=1, DIVFREE=1, LOG2R=4, SHMAX=5)),
}
CORES = (("cortex-m4", "cortex-m4"), ("cortex-m0plus", "cortex-m0"))
if __name__ == "__main__":
    digits = digits_int8()
    print("| decoder | bits/weight (digits) | core | opt | instr/weight | est. cycles/weight | top functions (instr/weight) |")
    print("|---|---:|---|---|---:|---:|---|")
    for j, (label, (kind, d)) in enumerate(VARIANTS.items()):
        lib = amsx_run.build(f"libamsx_s4m_{j}.so", **d)
        blob, n, bits = amsx_blob(lib, digits)
        for mcpu, core in CORES:
            for opt in ("-O2", "-Os"):
                elf = build_mcu(f"mcu_{j}_{mcpu}{opt}.elf", mcpu, opt, kind, **d)
                ipw, cpw, byf = count(elf, blob, n, core)
                top = ", ".join(f"{k} {v/n:.1f}" for k, v in sorted(byf.items(), key=lambda kv: -kv[1])[:4])
                print(f"| {label} | {bits/n:.3f} | {core} (-mcpu={mcpu}) | {opt} | {ipw:.1f} | {cpw:.1f} | {top} |", flush=True)
