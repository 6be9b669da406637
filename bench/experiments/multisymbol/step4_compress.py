# Step 4 (compression part): power-of-two totals (reservoir added to the first entry) vs counts, real encoder,
# int8 corpus, M=1, 12 contexts, ESC=2; round trip checked for prediction none.
from amsx_run import build, corpus_bits, baseline_auto_bpw
BASE_AUTO = baseline_auto_bpw()
cfgs = [("counts (POW2=0): c0=8, +16, halve > 32768", dict())]
for l2r in (3, 4, 5):
    for shmax in (6, 7, 8):
        cfgs.append((f"POW2, R=2^{l2r}, SH0=1, SHMAX={shmax}", dict(POW2=1, LOG2R=l2r, SHMAX=shmax)))
cfgs.append(("POW2 + DIVFREE, R=2^4, SH0=1, SHMAX=7", dict(POW2=1, DIVFREE=1, LOG2R=4, SHMAX=7)))
cfgs.append(("POW2, R=2^4, SH0=3, SHMAX=7", dict(POW2=1, LOG2R=4, SH0=3, SHMAX=7)))
print("| variant | state bytes | none bpw | auto bpw | auto vs tinycabac |")
print("|---|---:|---:|---:|---:|")
for i, (name, d) in enumerate(cfgs):
    lib = build(f"libamsx_s4_{i}.so", MB=1, NCTX=12, ESC=2, **d)
    none, pred, auto, n = corpus_bits(lib)
    print(f"| {name} | {lib.amsx_state_size()} | {none.sum()/n.sum():.4f} | {auto.sum()/n.sum():.4f} | {100*(auto.sum()/n.sum()/BASE_AUTO-1):+.2f}% |", flush=True)
