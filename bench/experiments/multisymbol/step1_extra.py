# Step 1, extra context caps (same method as step1_ram.py)
import numpy as np
from step1_ram import evaluate_tab, nsym, base_auto
a = np.arange(257)
for M, caps in ((1, (10, 12, 13)), (2, (9, 10))):
    S = nsym(M)
    for cap in caps:
        ctx = np.minimum(a >> 2, cap).astype(np.uint8); C = cap + 1
        n_, a_ = evaluate_tab(ctx, M, 0); _, as_ = evaluate_tab(ctx, M, 3)
        print(f"| {M} | min(a>>2, {cap}) | {C} | {S} | {C*(3*S+2)} | {C*(2*S+2)} | {n_:.4f} | {a_:.4f} | {100*(a_/base_auto-1):+.2f}% | {as_:.4f} | {100*(as_/base_auto-1):+.2f}% |", flush=True)
