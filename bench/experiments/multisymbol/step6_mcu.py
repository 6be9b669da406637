# Step 6: instructions per weight of the lean amsx decoder loop (m4x_harness.c, as step4_mcu.py / step5_mulsearch.py:
# the digits model's int8 weights, every tensor's CRC-32 checked) for the step 6 variants of step6_real.py.  The
# per-tensor increment / limit variants are built with INCVAR / LIMITVAR (the decoder reads them from variables) and
# the blob is encoded with their defaults (16, 32768).
#   python step6_mcu.py [name ...]
import json, sys
import amsx_run
from msym_env import WORK, build_mcu
from step4_mcu import amsx_blob, count, digits_int8
import step6_real as R

BUILDS = (("cortex-m4", "cortex-m4", "-O2"), ("cortex-m4", "cortex-m4", "-Os"), ("cortex-m0plus", "cortex-m0", "-O2"))
NAMES = ["base: M=1, 12 ctx (step 3)", "M=1, SIGN=2", "M=2, SIGN=2, init, 12 ctx, inc x limit/tensor",
         "M=2, SIGN=2, init, 16 ctx, inc x limit/tensor", "M=1, SIGN=2, init, 16 ctx, inc x limit/tensor"]
EXTRA = {"M=2, SIGN=2, init, 16 ctx, inc x limit/tensor, MULSEARCH=1": ("M=2, SIGN=2, init, 16 ctx, inc x limit/tensor",
                                                                     dict(MULSEARCH=1))}
# the fastest adaptation of the per-tensor choice (inc 128, limit 8192: a halving every ~64 symbols of a table),
# encoder and decoder alike
for _n in ("M=2 for bitlen 3-5, SIGN=2, init, 16 ctx table, inc x limit/tensor (IL3)",
           "M=2, SIGN=2, init, 16 ctx table, inc x limit/tensor (IL3)"):
    EXTRA[_n + ", coded with inc 128, limit 8192"] = (_n, dict(INC0=128, LIMIT0=8192))

if __name__ == "__main__":
    names = sys.argv[1:] or NAMES + list(EXTRA)
    digits = digits_int8()
    out_path = WORK / "step6_mcu.json"
    res = json.load(open(out_path)) if out_path.exists() else {}
    for name in names:
        base, extra = EXTRA.get(name, (name, {}))
        defs, tag = R.variant_defs(base)
        if "INC0" in extra:   # the encoder with the same start values
            defs = dict(defs, **extra); tag += "_" + "_".join(f"{k}{v}" for k, v in extra.items()); extra = {}
        lib = amsx_run.build(f"libstep6_{tag}.so", **defs)
        blob, n, bits = amsx_blob(lib, digits)
        defs = dict(defs, **extra)
        row = {"digits_bpw": bits / n}
        for mcpu, core, opt in BUILDS:
            elf = build_mcu(f"mcu_step6_{tag}{'_'.join(f'{k}{v}' for k, v in extra.items())}_{mcpu}{opt}.elf", mcpu, opt,
                            "amsx", **defs)
            ipw, cpw, byf = count(elf, blob, n, core)
            row[f"{core} {opt}"] = ipw
        res[name] = row
        json.dump(res, open(out_path, "w"), indent=1)
        print(f"{name}: " + ", ".join(f"{k} {v:.1f}" if k != "digits_bpw" else f"digits {v:.3f} bpw" for k, v in row.items()),
              flush=True)
