# Ideal code length simulator (sim.c) over the int8 corpus: loads coded.npz / meta.json from prep.py at import,
# builds $MULTISYMBOL_WORK/libsim.so.  evaluate(**params) -> per tensor bits (none, auto), + 32 bits flush per tensor.
import ctypes, json
import numpy as np
from msym_env import WORK, build_host, pack_coded
lib = ctypes.CDLL(str(build_host("libsim.so", "sim")))
class Params(ctypes.Structure):
    _fields_ = [("ctx_tab", ctypes.c_uint8 * 257), ("k_tab", ctypes.c_uint8 * 257), ("nctx", ctypes.c_int),
                ("shift_d", ctypes.c_int), ("classmode", ctypes.c_int), ("Q", ctypes.c_int), ("M", ctypes.c_int),
                ("signmode", ctypes.c_int), ("adapt", ctypes.c_int), ("c0", ctypes.c_int), ("inc", ctypes.c_int),
                ("limit", ctypes.c_int), ("inc2", ctypes.c_int), ("limit2", ctypes.c_int), ("r1", ctypes.c_int),
                ("r2", ctypes.c_int), ("ctx_bits", ctypes.c_int)]
meta = json.load(open(WORK / "meta.json"))
z = np.load(WORK / "coded.npz")
T = len(meta)
models = list(dict.fromkeys(m["model"] for m in meta))
N = np.array([m["n"] for m in meta])
DATA = {k: pack_coded(meta, z, k) for k in ("none", "pred")}
PRED = np.array([m["pred"] != "none" for m in meta])
BASE_AUTO = np.array([8 * m["auto_bytes"] for m in meta], float)
BASE_NONE = np.array([8 * m["none_bytes"] for m in meta], float)

def ctx_table(name):
    a = np.arange(257)
    k = np.minimum(a >> 3, 31)
    if name == "k":        c = np.minimum(k, 15)
    elif name == "prefix": c = np.where(k == 0, a >> 1, 3 + np.minimum(k, 12))
    elif name == "a2":     c = np.minimum(a >> 2, 31)
    elif name == "a1":     c = np.minimum(a >> 1, 63)
    elif name == "one":    c = np.zeros(257, int)
    else: raise ValueError(name)
    return c.astype(np.uint8), k.astype(np.uint8)

def make(ctx="prefix", shift_d=-1, classmode=1, Q=15, M=1, signmode=0, adapt=0, c0=1, inc=32, limit=1 << 16,
         inc2=0, limit2=0, r1=5, r2=0):
    P = Params()
    c, k = ctx_table(ctx)
    P.ctx_tab[:] = c.tolist(); P.k_tab[:] = k.tolist(); P.nctx = int(c.max()) + 1
    for f, v in dict(shift_d=shift_d, classmode=classmode, Q=Q, M=M, signmode=signmode, adapt=adapt, c0=c0, inc=inc,
                     limit=limit, inc2=inc2, limit2=limit2, r1=r1, r2=r2).items():
        setattr(P, f, v)
    return P

def run(P, kind):
    v, cols, off, coff, a0 = DATA[kind]
    out = np.zeros(T); sb = ctypes.c_double(0); rb = ctypes.c_double(0)
    p = lambda a: a.ctypes.data_as(ctypes.c_void_p)
    lib.sim_all(p(v), p(cols), p(off), p(coff), p(a0), T, ctypes.byref(P), p(out), ctypes.byref(sb), ctypes.byref(rb))
    return out, sb.value, rb.value

FLUSH_BITS = 32  # per tensor, a range coder's flush (tinycabac's payload includes its own)
def evaluate(**kw):
    P = make(**kw)
    none, sbn, rbn = run(P, "none")
    pred, _, _ = run(P, "pred")
    none = none + FLUSH_BITS; pred = pred + FLUSH_BITS
    auto = np.where(PRED, np.minimum(none, pred), none)
    return dict(none=none, auto=auto, sign_none=sbn, raw_none=rbn)

def per_model(bits):
    res = {}
    for mname in models:
        sel = np.array([m["model"] == mname for m in meta])
        res[mname] = bits[sel].sum() / N[sel].sum()
    res["corpus"] = bits.sum() / N.sum()
    return res
