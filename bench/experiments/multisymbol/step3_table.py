# Step 3 table from $MULTISYMBOL_WORK/step3_results.json (step3_quantized.py).  NNCodec and "tinycabac (doc)" are the
# figures of bench/bench_quantized.py's table as quoted in the docs; the rerun columns are this run's.
import json
from msym_env import WORK
R = json.load(open(WORK / "step3_results.json"))
NNC = {2: 3.457, 3: 4.382, 4: 5.324}; DOC_TC = {2: 3.328, 3: 4.200, 4: 5.098}
N = sum(r["n"] for r in R)
V = ["M=1, 12 ctx, ESC=2", "M=2, 10 ctx, ESC=2"]
print(f"corpus: {len(R)} models, {N} weights\n")
print("| k | levels with abs >= 256 | max abs level | zero share | NNCodec CABAC (doc) | tinycabac (doc) | tinycabac float+step stream (rerun) | tinycabac int32 stream | tinycabac payload | " +
      " | ".join(f"amsx {v} payload | amsx {v} + container" for v in V) + " | tinycabac vs NNCodec | " + " | ".join(f"amsx {v} vs NNCodec" for v in V) + " |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|" + "---:|---:|" * len(V) + "---:|" + "---:|" * len(V))
for k in ("2", "3", "4"):
    s = lambda f: sum(f(r["k"][k]) for r in R)
    tcf = s(lambda x: x["tc_float_stream"]) / N; tcfp = s(lambda x: x["tc_float_payload"]) / N
    tci = s(lambda x: x["tc_int_stream"]) / N; tcp = s(lambda x: x["tc_int_payload"]) / N
    cont = tcf - tcfp
    row = [k, f"{s(lambda x: x['share_ge256']):.0f}", f"{max(r['k'][k]['max_abs'] for r in R)}", f"{s(lambda x: x['zeros'])/N:.3f}",
           f"{NNC[int(k)]:.3f}", f"{DOC_TC[int(k)]:.3f}", f"{tcf:.4f}", f"{tci:.4f} ({100*(tci/tcf-1):+.2f}%)", f"{tcp:.4f}"]
    am = []
    for v in V:
        a = s(lambda x: x[v]["auto"]) / N
        am.append(a + cont)
        row += [f"{a:.4f} ({100*(a/tcp-1):+.2f}% vs tinycabac payload)", f"{a+cont:.4f}"]
    row += [f"{100*(tcf/NNC[int(k)]-1):+.2f}%"] + [f"{100*(x/NNC[int(k)]-1):+.2f}%" for x in am]
    print("| " + " | ".join(row) + " |")
print("\nper model, k = 2 / 3 / 4: tinycabac payload vs amsx M=1 payload (bits/weight)")
print("| model | weights | " + " | ".join(f"k={k} tinycabac | k={k} amsx M=1 | k={k} diff" for k in (2, 3, 4)) + " |")
print("|---|---:|" + "---:|---:|---:|" * 3)
for r in R:
    row = [r["model"], str(r["n"])]
    for k in ("2", "3", "4"):
        t = r["k"][k]["tc_int_payload"] / r["n"]; a = r["k"][k][V[0]]["auto"] / r["n"]
        row += [f"{t:.3f}", f"{a:.3f}", f"{100*(a/t-1):+.1f}%"]
    print("| " + " | ".join(row) + " |")
