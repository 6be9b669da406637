# Step 2: escape for values beyond int8. Alphabet = magnitude classes of |v| <= 255 plus ESC (initial count 1);
# after ESC: Exp-Golomb order 0 of |v| - 256 as raw bits, then the sign.
import numpy as np
from amsx_run import build, code, corpus_bits, escapes, baseline_auto_bpw
from msym_env import wide_value_tests
import tinycabac
from tinycabac import native
BASE_AUTO = baseline_auto_bpw()
print("## int8 corpus, real encoder, round trip checked (prediction none)")
print("| variant | state bytes (sizeof) | none bpw | auto bpw | auto vs tinycabac | escapes coded |")
print("|---|---:|---:|---:|---:|---:|")
for M, C in ((1, 12), (2, 11)):
    for esc in (0, 1, 2):
        lib = build(f"libamsx_s2_{M}_{C}_{esc}.so", MB=M, NCTX=C, ESC=esc)
        none, pred, auto, n = corpus_bits(lib)
        print(f"| M={M}, {C} ctx, ESC={esc} | {lib.amsx_state_size()} | {none.sum()/n.sum():.4f} | {auto.sum()/n.sum():.4f} | {100*(auto.sum()/n.sum()/BASE_AUTO-1):+.3f}% | {escapes(lib)} |", flush=True)

print("\n## wide values (M=1, 12 ctx): round trip checked, bits/weight vs tinycabac payload (prediction none)")
libs = {e: build(f"libamsx_s2w{e}.so", MB=1, NCTX=12, ESC=e) for e in (1, 2)}
tests = wide_value_tests()
print("| data | weights | share of abs(v) >= 256 | amsx ESC=1 (EG0) bpw | amsx ESC=2 (bitlen model) bpw | tinycabac payload bpw |")
print("|---|---:|---:|---:|---:|---:|")
for name, v in tests.items():
    v32 = v.astype(np.int64)
    a0 = native.initial_activity(v32)
    nb = [code(libs[e], v32.astype(np.int32), a0, check=True) for e in (1, 2)]
    s = tinycabac.encode({"t": v}, prediction="none")
    assert np.array_equal(tinycabac.decode(s)["t"], v)
    tb = tinycabac.info(s)[0].payload_bytes
    print(f"| {name} | {v.size} | {np.mean(np.abs(v32) >= 256):.3f} | {8*nb[0]/v.size:.3f} | {8*nb[1]/v.size:.3f} | {8*tb/v.size:.3f} |", flush=True)
