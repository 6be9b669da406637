# Step 6 table from $MULTISYMBOL_WORK/step6_real.json (step6_real.py) and step6_mcu.json (step6_mcu.py):
# real encoder sizes (int8 corpus auto bits/weight, quantized k = 2/3/4 against NNCodec as step3_table.py), decoder
# state bytes, instructions per weight of the lean decoder on the digits int8 weights, and the two small models.
import json
from msym_env import WORK
import step6_sim as S

R = json.load(open(WORK / "step6_real.json"))
M = json.load(open(WORK / "step6_mcu.json")) if (WORK / "step6_mcu.json").exists() else {}
SMALL = ("selfie_segmentation", "face_detection_short_range")
tc = {s: S.data(s) for s in S.SETS}
print("| variant | state B | int8 auto bpw | q k=2 vs NNCodec | k=3 | k=4 | M4 -O2 | M4 -Os | M0 -O2 | "
      + " | ".join(f"{m} int8 / q2 / q3 / q4 bpw" for m in SMALL) + " |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|" + "---|" * len(SMALL))
row = ["tinycabac (format 11)", "860", f"{tc['int8'].tc_summary():.4f}"] + [f"{tc[s].tc_summary():.2f}%" for s in S.SETS[1:]]
row += ["245.9", "357.2", "370.3"] + [" / ".join(f"{tc[s].model_bpw(tc[s].base, m):.3f}" for s in S.SETS) for m in SMALL]
print("| " + " | ".join(row) + " |")
for name, r in R.items():
    mc = M.get(name, {})
    row = [name, str(r["state_bytes"]), f"{r['int8']['summary']:.4f}"] + [f"{r[s]['summary']:.2f}%" for s in S.SETS[1:]]
    row += [f"{mc[k]:.1f}" if k in mc else "" for k in ("cortex-m4 -O2", "cortex-m4 -Os", "cortex-m0 -O2")]
    row += [" / ".join(f"{r[s]['per_model'][m]:.3f}" for s in S.SETS) for m in SMALL]
    print("| " + " | ".join(row) + " |")
extra = [k for k in M if k not in R]
if extra:
    print("\ndecoder-only rows (instructions per weight):\n")
    for k in extra:
        print(f"- {k}: " + ", ".join(f"{a} {b:.1f}" for a, b in M[k].items() if a != "digits_bpw"))
