"""The compression effect of amsx_decoder_small.patch's escape (amsx ESC=3:
the escape's bit-length table kept sorted like the 12 tables, its raw bits
in one run with the sign) against amsx_decoder.patch's (ESC=2): the wide
values of ../step2_escape.py and the int8 corpus (amsx_run.corpus_bits,
needs ../baseline.py and ../prep.py), each round trip checked by ../amsx_dec.c.
Usage: small_escape.py [--no-corpus]; outputs in $MULTISYMBOL_WORK."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # msym_env, amsx_run
from amsx_run import baseline_auto_bpw, build, code, corpus_bits, escapes  # noqa: E402  (msym_env: host/, bench/ on sys.path)
import numpy as np  # noqa: E402

import tinycabac  # noqa: E402
from tinycabac import native  # noqa: E402
from msym_env import wide_value_tests  # noqa: E402

ESCS = (2, 3)
libs = {e: build(f"libamsx_small_esc{e}.so", MB=1, NCTX=12, ESC=e) for e in ESCS}

if "--no-corpus" not in sys.argv:
    base = baseline_auto_bpw()
    print("## int8 corpus, real encoder, round trip checked (prediction none)")
    print("| variant | state bytes (sizeof) | none bpw | auto bpw | auto vs tinycabac | escapes coded |")
    print("|---|---:|---:|---:|---:|---:|")
    for e in ESCS:
        none, pred, auto, n = corpus_bits(libs[e])
        print(f"| M=1, 12 ctx, ESC={e} | {libs[e].amsx_state_size()} | {none.sum() / n.sum():.4f} | "
              f"{auto.sum() / n.sum():.4f} | {100 * (auto.sum() / n.sum() / base - 1):+.3f}% | {escapes(libs[e])} |", flush=True)

print("\n## wide values (M=1, 12 ctx, prediction none): round trip checked, payload bytes and bits/weight")
tests = wide_value_tests()
rng = np.random.default_rng(7)  # two of the "wide integers (escape)" tensors of streams.py (flattened)
tests["streams.py int16_laplace"] = np.clip(rng.laplace(0, 300, (64, 40)), -32768, 32767).astype(np.int16).ravel()
tests["int32, |v| = Laplace * 2^U(0..29) (streams.py int32_wide)"] = (
    rng.laplace(0, 1, 3000) * 2.0 ** rng.integers(0, 30, 3000)).clip(-2**30, 2**30).astype(np.int32)
print("| data | weights | share of abs(v) >= 256 | " + " | ".join(f"ESC={e} bytes | ESC={e} bpw" for e in ESCS)
      + " | change | tinycabac payload bpw |")
print("|---|---:|---:|" + "---:|---:|" * len(ESCS) + "---:|---:|")
total = {e: 0 for e in ESCS}
for name, v in tests.items():
    v64 = v.astype(np.int64)
    a0 = native.initial_activity(v64)
    nb = {e: code(libs[e], v64.astype(np.int32), a0, check=True) for e in ESCS}
    for e in ESCS:
        total[e] += nb[e]
    s = tinycabac.encode({"t": v}, prediction="none")
    assert np.array_equal(tinycabac.decode(s)["t"], v)
    tb = tinycabac.info(s)[0].payload_bytes
    cells = " | ".join(f"{nb[e]} | {8 * nb[e] / v.size:.4f}" for e in ESCS)
    print(f"| {name} | {v.size} | {np.mean(np.abs(v64) >= 256):.3f} | {cells} | "
          f"{100 * (nb[3] / nb[2] - 1):+.4f}% | {8 * tb / v.size:.3f} |", flush=True)
print(f"\nall wide tests: ESC=2 {total[2]} bytes, ESC=3 {total[3]} bytes ({100 * (total[3] / total[2] - 1):+.4f}%)")
