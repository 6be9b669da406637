# Step 6: instructions per weight of the lean decoder (as step6_mcu.py) on quantized levels instead of the digits
# int8 weights: one corpus model's levels (prediction none) at k = 2 and 4 (step6_qprep.py).  The harness stores
# int8: levels beyond int8 wrap alike in the blob's CRC and in the harness, and |level| >= 256 goes through the escape.
#   python step6_mcu_q.py [model]    default face_detection_short_range
import json, sys
import numpy as np
import amsx_run
from msym_env import WORK, build_mcu
from step4_mcu import amsx_blob, count
import step6_real as R
from step6_mcu import NAMES

model = sys.argv[1] if len(sys.argv) > 1 else "face_detection_short_range"
names = [NAMES[0], "M=1, SIGN=2, init, 16 ctx table, inc x limit/tensor",
         "M=2 for bitlen 3-5, SIGN=2, init, 16 ctx table, inc x limit/tensor",
         "M=2, SIGN=2, init, 16 ctx table, inc x limit/tensor"]
res = {}
for k in (2, 3, 4):
    meta = json.load(open(WORK / f"q{k}_meta.json")); z = np.load(WORK / f"q{k}_coded.npz")
    tens = [z[m["key"] + "/none"] for m in meta if m["model"] == model]
    mx = max(int(np.abs(t).max()) for t in tens)
    for name in names:
        defs, tag = R.variant_defs(name)
        lib = amsx_run.build(f"libstep6_{tag}.so", **defs)
        blob, n, bits = amsx_blob(lib, tens)
        elf = build_mcu(f"mcu_step6_{tag}_cortex-m4-O2.elf", "cortex-m4", "-O2", "amsx", **defs)
        ipw, _, _ = count(elf, blob, n, "cortex-m4")
        res[f"k={k} {name}"] = dict(bpw=bits / n, m4_o2=ipw, max_abs=mx)
        print(f"{model} k={k} (max |level| {mx}): {name}: {bits/n:.3f} bpw (inc 16, no prediction), M4 -O2 {ipw:.1f}",
              flush=True)
json.dump(res, open(WORK / f"step6_mcu_q_{model}.json", "w"), indent=1)
