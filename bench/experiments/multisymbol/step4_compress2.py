# Step 4 (compression part, continued): faster forgetting for the power-of-two totals (rows continue step4_compress.py's table)
from amsx_run import build, corpus_bits, baseline_auto_bpw
BASE_AUTO = baseline_auto_bpw()
cfgs = []
for l2r in (2, 3, 4):
    for shmax in (4, 5):
        cfgs.append((f"POW2, R=2^{l2r}, SH0=1, SHMAX={shmax}", dict(POW2=1, LOG2R=l2r, SHMAX=shmax)))
for i, (name, d) in enumerate(cfgs):
    lib = build(f"libamsx_s4b_{i}.so", MB=1, NCTX=12, ESC=2, **d)
    none, pred, auto, n = corpus_bits(lib)
    print(f"| {name} | {lib.amsx_state_size()} | {none.sum()/n.sum():.4f} | {auto.sum()/n.sum():.4f} | {100*(auto.sum()/n.sum()/BASE_AUTO-1):+.2f}% |", flush=True)
