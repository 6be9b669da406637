# Step 6: the real amsx encoder (round trip checked for prediction "none") on the int8 corpus and the quantized
# levels (step6_qprep.py), for the step 6 variants: MB, NCTX, SIGN, CTXMAP, trained initial counts (INITTAB, table
# from step6_sim.py's histograms over all four data sets) and a per-tensor increment and halving limit (INCVAR,
# LIMITVAR; the encoder tries each pair and pays ceil(log2(number of pairs)) bits per tensor).  Prints the same figures as step6_screen.py's simulator table.
#   python step6_real.py [name ...]     (names of VARIANTS; default all)
import ctypes, json, sys, time
import numpy as np
from msym_env import WORK
import amsx_run
import step6_sim as S

A = np.arange(257)
B16 = np.minimum(np.where(A < 16, A >> 1, 4 + (A >> 2)), 15)
# name: (amsx -D macros, simulator make() arguments, trained init (total, floor) or None, increments per tensor
#        or (increment, limit) pairs)
IL = tuple((i, l) for i in (8, 16, 24, 32) for l in (16384, 32768, 65000))
IL2 = tuple((i, l) for i in (8, 16, 32, 64) for l in (8192, 16384, 32768, 65000))   # 16 pairs, 4 bits
IL3 = tuple((i, l) for i in (16, 32, 64, 128) for l in (8192, 16384, 32768, 65000))   # 16 pairs, 4 bits
VARIANTS = {
    "base: M=1, 12 ctx (step 3)": (dict(MB=1, NCTX=12, ESC=2), dict(alpha=(4, 1)), None, (16,)),
    "M=1, SIGN=2": (dict(MB=1, NCTX=12, ESC=2, SIGN=2, SRATE=7), dict(alpha=(4, 1), sign=2), None, (16,)),
    "M=2, SIGN=2, init": (dict(MB=2, NCTX=12, ESC=2, SIGN=2, SRATE=7), dict(alpha=(4, 2), sign=2), (512, 2), (16,)),
    "M=2, SIGN=2, init, 16 ctx": (dict(MB=2, NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=1), dict(alpha=(4, 2), sign=2, ctx=B16),
                                  (512, 2), (16,)),
    "M=2, SIGN=2, init, 16 ctx, inc/tensor": (dict(MB=2, NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=1),
                                              dict(alpha=(4, 2), sign=2, ctx=B16), (512, 2), (8, 16, 24, 32)),
    "M=1, SIGN=2, init, 16 ctx, inc/tensor": (dict(MB=1, NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=1),
                                              dict(alpha=(4, 1), sign=2, ctx=B16), (512, 2), (8, 16, 24, 32)),
    "M=2, raw sign, init, 16 ctx, inc/tensor": (dict(MB=2, NCTX=16, ESC=2, CTXMAP=1),
                                                dict(alpha=(4, 2), ctx=B16), (512, 2), (8, 16, 24, 32)),
    "M=2, SIGN=2, init, 16 ctx, inc x limit/tensor": (dict(MB=2, NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=1),
                                                      dict(alpha=(4, 2), sign=2, ctx=B16), (512, 2), IL),
    "M=2, SIGN=2, init, 12 ctx, inc x limit/tensor": (dict(MB=2, NCTX=12, ESC=2, SIGN=2, SRATE=7),
                                                      dict(alpha=(4, 2), sign=2), (512, 2), IL),
    "M=1, SIGN=2, init, 16 ctx, inc x limit/tensor": (dict(MB=1, NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=1),
                                                      dict(alpha=(4, 1), sign=2, ctx=B16), (512, 2), IL),
    # the finalists with the context map as a table (CTXMAP=2: the same bitstream as CTXMAP=1, cheaper to decode)
    "M=1, SIGN=2, init, 16 ctx table, inc x limit/tensor": (dict(MB=1, NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=2),
                                                            dict(alpha=(4, 1), sign=2, ctx=B16), (512, 2), IL),
    "M=2, SIGN=2, init, 16 ctx table, inc x limit/tensor": (dict(MB=2, NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=2),
                                                            dict(alpha=(4, 2), sign=2, ctx=B16), (512, 2), IL),
    "M=1, SIGN=2, init, 16 ctx table": (dict(MB=1, NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=2),
                                        dict(alpha=(4, 1), sign=2, ctx=B16), (512, 2), (16,)),
    # two mantissa bits for bit lengths 3-4 (3-5), one above (ALPHA)
    "M=2 for bitlen 3-4, SIGN=2, init, 16 ctx table, inc x limit/tensor": (
        dict(NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=2), dict(alpha=(4, 1), mbs={3: 2, 4: 2}, sign=2, ctx=B16), (512, 2), IL),
    "M=2 for bitlen 3-5, SIGN=2, init, 16 ctx table, inc x limit/tensor": (
        dict(NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=2), dict(alpha=(4, 1), mbs={3: 2, 4: 2, 5: 2}, sign=2, ctx=B16), (512, 2), IL),
    "M=2 for bitlen 3-6, SIGN=2, init, 16 ctx table, inc x limit/tensor": (
        dict(NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=2), dict(alpha=(4, 1), mbs={3: 2, 4: 2, 5: 2, 6: 2}, sign=2, ctx=B16),
        (512, 2), IL),
    # wider per-tensor adaptation choice: inc 8/16/32/64 x limit 8192/16384/32768/65000
    "M=2 for bitlen 3-5, SIGN=2, init, 16 ctx table, inc x limit/tensor (IL2)": (
        dict(NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=2), dict(alpha=(4, 1), mbs={3: 2, 4: 2, 5: 2}, sign=2, ctx=B16), (512, 2), IL2),
    "M=2, SIGN=2, init, 16 ctx table, inc x limit/tensor (IL2)": (dict(MB=2, NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=2),
                                                                  dict(alpha=(4, 2), sign=2, ctx=B16), (512, 2), IL2),
    "M=1, SIGN=2, init, 16 ctx table, inc x limit/tensor (IL2)": (dict(MB=1, NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=2),
                                                                  dict(alpha=(4, 1), sign=2, ctx=B16), (512, 2), IL2),
    "M=2 for bitlen 3-5, SIGN=2, init, 16 ctx table, inc x limit/tensor (IL3)": (
        dict(NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=2), dict(alpha=(4, 1), mbs={3: 2, 4: 2, 5: 2}, sign=2, ctx=B16), (512, 2), IL3),
    "M=2, SIGN=2, init, 16 ctx table, inc x limit/tensor (IL3)": (dict(MB=2, NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=2),
                                                                  dict(alpha=(4, 2), sign=2, ctx=B16), (512, 2), IL3),
    # decode-cost attribution (step6_mcu.py)
    "M=1, SIGN=2, 16 ctx (CTXMAP=2, table)": (dict(MB=1, NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=2),
                                              dict(alpha=(4, 1), sign=2, ctx=B16), None, (16,)),
    "M=1, SIGN=2, 16 ctx (CTXMAP)": (dict(MB=1, NCTX=16, ESC=2, SIGN=2, SRATE=7, CTXMAP=1),
                                     dict(alpha=(4, 1), sign=2, ctx=B16), None, (16,)),
    "M=1, SIGN=2, init": (dict(MB=1, NCTX=12, ESC=2, SIGN=2, SRATE=7), dict(alpha=(4, 1), sign=2), (512, 2), (16,)),
    "M=1, SIGN=2, inc x limit/tensor": (dict(MB=1, NCTX=12, ESC=2, SIGN=2, SRATE=7), dict(alpha=(4, 1), sign=2), None, IL),
    "M=2, SIGN=2": (dict(MB=2, NCTX=12, ESC=2, SIGN=2, SRATE=7), dict(alpha=(4, 2), sign=2), None, (16,)),
}


def load_set(name):
    if name == "int8":
        meta = json.load(open(WORK / "meta.json")); z = np.load(WORK / "coded.npz")
    else:
        meta = json.load(open(WORK / f"{name}_meta.json")); z = np.load(WORK / f"{name}_coded.npz")
    return meta, {k: z[k] for k in z.files}


def set_bits(lib, meta, z, incs):
    """per tensor bits: min over increments (+ side bits) of min(none, pred where tinycabac predicted)"""
    side = int(np.ceil(np.log2(len(incs))))
    best = np.full(len(meta), np.inf)
    pairs = [x if isinstance(x, tuple) else (x, 32768) for x in incs]
    inc_var = ctypes.c_uint16.in_dll(lib, "amsx_inc") if len(set(p[0] for p in pairs)) > 1 else None
    lim_var = ctypes.c_uint16.in_dll(lib, "amsx_limit") if len(set(p[1] for p in pairs)) > 1 else None
    for inc, limit in pairs:
        if inc_var is not None:
            inc_var.value = inc
        if lim_var is not None:
            lim_var.value = limit
        for t, m in enumerate(meta):
            k = m["key"]
            nb = 8 * amsx_run.code(lib, z[k + "/none"], m["a_none"], check=True)
            if m["pred"] != "none":
                cols = z.get(k + "/cols")
                nb = min(nb, 8 * amsx_run.code(lib, z[k + "/pred"], m["a_pred"], cols, check=cols is None))
            best[t] = min(best[t], nb + side)
    return best


def write_alpha_header(simkw, path):
    """amsx_info[] (bitlen << 12 | nraw incl. the sign << 8 | base, escape 0xF000) and amsx_symtab[256] of the
    simulator's alphabet (amsx.h ALPHA)"""
    sym, nraw, n8 = S.alphabet(*simkw.get("alpha", (4, 1)), mbs=simkw.get("mbs"))
    info = []
    for c in range(n8):
        base = int(np.flatnonzero(sym == c)[0])
        info.append(base.bit_length() << 12 | (int(nraw[base]) + (c != 0)) << 8 | base)
    with open(path, "w") as f:
        f.write(f"/* generated by step6_real.py: alphabet {simkw.get('alpha')} mbs {simkw.get('mbs')} */\n")
        f.write(f"#if NSYM8 != {n8}\n#error \"ALPHA must be {n8}\"\n#endif\n")
        f.write("const uint16_t amsx_info[NSYM] = {" + ", ".join(hex(x) for x in info) + "\n#if ESC\n, 0xF000\n#endif\n};\n")
        f.write("const uint8_t amsx_symtab[256] = {" + ", ".join(str(int(x)) for x in sym) + "};\n")
    return n8


def variant_defs(name):
    """the -D macros of a variant (INITTAB_H generated into $MULTISYMBOL_WORK) and a file-name tag"""
    defs, simkw, init, incs = VARIANTS[name]
    defs = dict(defs)
    if len(set(x[0] if isinstance(x, tuple) else x for x in incs)) > 1:
        defs["INCVAR"] = 1
    if any(isinstance(x, tuple) and x[1] != 32768 for x in incs):
        defs["LIMITVAR"] = 1
    tag = "".join(c if c.isalnum() else "_" for c in name)
    if simkw.get("mbs"):
        ah = WORK / f"step6_alpha_{tag}.h"
        defs["MB"] = 0; defs["ALPHA"] = write_alpha_header(simkw, ah); defs["ALPHA_H"] = f'"{ah}"'
    if init is not None:
        P = S.make(**simkw)
        h = S.histogram(P, S.SETS)
        hdr = WORK / f"step6_init_{tag}.h"
        S.write_init_header(P, S.trained_init(h, *init), hdr, f"{name}: total {init[0]}, floor {init[1]}")
        defs["INITTAB"] = 1; defs["INITTAB_H"] = f'"{hdr}"'
    return defs, tag


def run_variant(name, sets=S.SETS):
    incs = VARIANTS[name][3]
    defs, tag = variant_defs(name)
    lib = amsx_run.build(f"libstep6_{tag}.so", **defs)
    res = {"state_bytes": int(lib.amsx_state_size())}
    for s in sets:
        meta, z = load_set(s)
        bits = set_bits(lib, meta, z, incs)
        d = S.data(s)
        res[s] = dict(summary=float(d.summary(bits)), bpw=float(bits.sum() / d.Ntot),
                      per_model={mo: float(d.model_bpw(bits, mo)) for mo in S._models()})
    return res


if __name__ == "__main__":
    names = sys.argv[1:] or list(VARIANTS)
    out_path = WORK / "step6_real.json"
    allres = json.load(open(out_path)) if out_path.exists() else {}
    for name in names:
        t0 = time.time()
        r = run_variant(name)
        allres[name] = r
        json.dump(allres, open(out_path, "w"), indent=1)
        print(f"{name:45s} state {r['state_bytes']} B  " + "  ".join(
            f"{s} {r[s]['summary']:.4f}{'' if s == 'int8' else '%'}" for s in S.SETS) + f"  ({time.time()-t0:.0f}s)",
            flush=True)
