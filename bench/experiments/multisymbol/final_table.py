# Table of the four basic variants (ideal code length, sim.c): counts, context min(a >> 2, 31) (map "a2"; 17
# contexts occur, a <= 64 for int8 levels), M = 1 or 2 mantissa bits, sign raw or with tinycabac's 12 sign contexts;
# per model and corpus, bits/weight (ideal code length + 32 bits flush per tensor).
from run import evaluate, per_model, models, meta, N, BASE_NONE, BASE_AUTO
V = {
 "A: M=1, sign raw": dict(ctx="a2", classmode=1, M=1, signmode=0, inc=16, limit=32768, c0=8),
 "B: M=2, sign raw": dict(ctx="a2", classmode=1, M=2, signmode=0, inc=16, limit=32768, c0=8),
 "C: M=1, sign ctx": dict(ctx="a2", classmode=1, M=1, signmode=3, inc=16, limit=32768, c0=8),
 "D: M=2, sign ctx": dict(ctx="a2", classmode=1, M=2, signmode=3, inc=16, limit=32768, c0=8),
}
R = {k: evaluate(**v) for k, v in V.items()}
bn, ba = per_model(BASE_NONE), per_model(BASE_AUTO)
print("| model | M weights | tinycabac none | tinycabac auto | " + " | ".join(f"{k} none | {k} auto" for k in V) + " |")
print("|---|---:|---:|---:|" + "---:|---:|" * len(V))
pm = {k: (per_model(r["none"]), per_model(r["auto"])) for k, r in R.items()}
for mname in models + ["corpus"]:
    n = N.sum() if mname == "corpus" else sum(m["n"] for m in meta if m["model"] == mname)
    row = [mname, f"{n/1e6:.2f}", f"{bn[mname]:.3f}", f"{ba[mname]:.3f}"]
    for k in V: row += [f"{pm[k][0][mname]:.3f}", f"{pm[k][1][mname]:.3f}"]
    print("| " + " | ".join(row) + " |")
for k in V:
    print(k, "corpus none %+.2f%% auto %+.2f%%" % (100*(pm[k][0]['corpus']/bn['corpus']-1), 100*(pm[k][1]['corpus']/ba['corpus']-1)))
