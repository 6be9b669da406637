# Step 6 screening with the simulator (step6_sim.py): the candidates of README "Step 6", each with trained initial
# counts chosen leave-one-model-out (every model coded with counts trained on the other 11 models' int8 and quantized
# levels), and optionally a per-tensor (increment, limit) choice paid with ceil(log2(#choices)) bits.
# Prints int8 corpus bits/weight (auto) and quantized k = 2/3/4 % against NNCodec; per model for the two small models.
#   python step6_screen.py [group ...]   groups: alphabet, context, adapt, sign (default all)
import sys
import numpy as np
import step6_sim as S

A = np.arange(257)
B16 = np.minimum(np.where(A < 16, A >> 1, 4 + (A >> 2)), 15)
IL = [(i, l) for i in (8, 16, 24, 32) for l in (16384, 32768, 65000)]
SMALL = ("selfie_segmentation", "face_detection_short_range")


def run(kw, init=(512, 2), choices=None):
    """kw: make() arguments; init: (total, floor) of the LOMO-trained counts or None (flat 8); choices: list of dicts
    merged into kw, chosen per tensor"""
    choices = choices or [{}]
    res = []
    for ch in choices:
        P = S.make(**dict(kw, **ch))
        res.append(S.evaluate_lomo(P, *init) if init else S.evaluate(P))
    side = int(np.ceil(np.log2(len(choices))))
    return {s: np.min([r[s] for r in res], axis=0) + side for s in S.SETS}


def line(name, r):
    small = "  ".join(f"{m[:6]} " + "/".join(f"{S.data(s).model_bpw(r[s], m):.3f}" for s in S.SETS) for m in SMALL)
    print(f"| {name} | " + " | ".join(f"{S.data(s).summary(r[s]):.4f}" + ("" if s == "int8" else "%") for s in S.SETS)
          + f" | {small} |", flush=True)


ILC = [dict(inc=i, limit=l) for i, l in IL]
GROUPS = {
    "reference": [
        ("step 3 counts: M=1, 12 ctx, flat init, raw sign", dict(alpha=(4, 1)), None, None),
        ("M=1, SIGN=2 (12-bit sign contexts)", dict(alpha=(4, 1), sign=2), None, None),
    ],
    "alphabet": [(f"{n}, SIGN=2, init, 16 ctx, inc x limit", dict(sign=2, ctx=B16, **kw), (512, 2), ILC) for n, kw in [
        ("M=1", dict(alpha=(4, 1))), ("M=2", dict(alpha=(4, 2))),
        ("M=2 for bitlen 3-4, else M=1 (20 sym)", dict(alpha=(4, 1), mbs={3: 2, 4: 2})),
        ("M=2 for bitlen 3-5, else M=1 (22 sym)", dict(alpha=(4, 1), mbs={3: 2, 4: 2, 5: 2})),
        ("exact below 16, then M=1 (24 sym)", dict(alpha=(16, 1))),
        ("M=2 for bitlen 3-6, else M=1 (24 sym)", dict(alpha=(4, 1), mbs={3: 2, 4: 2, 5: 2, 6: 2})),
        ("M=2 for bitlen 4-5, else M=1 (20 sym)", dict(alpha=(4, 1), mbs={4: 2, 5: 2})),
    ]],
    "alphabet2": [],   # filled below: the last two alphabet rows only
    "context": [(f"M=2, SIGN=2, init, {n}", dict(alpha=(4, 2), sign=2, ctx=c), (512, 2), None) for n, c in [
        ("12 ctx a>>2", np.minimum(A >> 2, 11)), ("16 ctx a>>2", np.minimum(A >> 2, 15)),
        ("14 ctx: a>>1 below 8, then 2+(a>>2)", np.where(A < 8, A >> 1, 2 + np.minimum(A >> 2, 11))),
        ("16 ctx: a>>1 below 16, then 4+(a>>2) (CTXMAP=1)", B16), ("24 ctx a>>1", np.minimum(A >> 1, 23)),
    ]] + [("M=2, SIGN=2, init, 16 ctx, previous value nonzero as a 2nd context bit (32 tables)",
           dict(alpha=(4, 2), sign=2, ctx=B16, grp=(np.arange(33) > 0).astype(int)), (512, 2), None)],
    "adapt": [(f"M=2, SIGN=2, 16 ctx, {n}", dict(alpha=(4, 2), sign=2, ctx=B16, **kw), init, ch) for n, kw, init, ch in [
        ("flat init 8", {}, None, None), ("init total 256", {}, (256, 1), None), ("init total 512", {}, (512, 2), None),
        ("init total 1024", {}, (1024, 4), None), ("init 512, inc 32", dict(inc=32), (512, 2), None),
        ("init 512, fast start (inc 32 until the first halving)", dict(inc_first=32), (512, 2), None),
        ("init 512, inc/tensor 8/16/24/32", {}, (512, 2), [dict(inc=i) for i in (8, 16, 24, 32)]),
        ("init 512, inc x limit/tensor (12 pairs)", {}, (512, 2), ILC),
        ("flat init, inc x limit/tensor", {}, None, ILC),
    ]],
    "sign": [(f"M=2, init, 16 ctx, inc x limit, {n}", dict(alpha=(4, 2), ctx=B16, **kw), (512, 2), ILC) for n, kw in [
        ("raw sign", dict(sign=0)), ("SIGN=2 SRATE=7", dict(sign=2, srate=7)), ("SIGN=2 SRATE=6", dict(sign=2, srate=6)),
        ("sign two-speed (tinycabac's)", dict(sign=1)),
    ]],
}

GROUPS["alphabet2"] = GROUPS["alphabet"][-2:]

if __name__ == "__main__":
    groups = sys.argv[1:] or list(GROUPS)
    for s in S.SETS:
        S.data(s)
    line("tinycabac", {s: S.data(s).base for s in S.SETS})
    for g in groups:
        print(f"\n### {g}\n\n| variant | int8 bpw | q2 vs NNCodec | q3 | q4 | small models int8/q2/q3/q4 bpw |\n|---|---:|---:|---:|---:|---|")
        for name, kw, init, ch in GROUPS[g]:
            line(name, run(kw, init, ch))
