# Step 6: driver of the step 6 simulator (step6_sim.c) over the int8 corpus (prep.py) and the quantized levels
# (step6_qprep.py, k = 2, 3, 4).  Ideal code length + 32 bits of flush per tensor, "auto" as amsx_run.py: the smaller
# of none and tinycabac's chosen prediction where tinycabac chose one.
import ctypes, json, subprocess
import numpy as np
from msym_env import WORK, HERE, pack_coded

_so = WORK / "libstep6sim.so"
subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-std=c99", "-Wall", "-o", str(_so), str(HERE / "step6_sim.c"), "-lm"],
               check=True)
lib = ctypes.CDLL(str(_so))


class SP(ctypes.Structure):
    _fields_ = [("sym_tab", (ctypes.c_uint8 * 256) * 32), ("nraw_tab", (ctypes.c_uint8 * 256) * 32), ("ctx_tab", ctypes.c_uint8 * 257),
                ("grp_tab", ctypes.c_uint8 * 33), ("nsym8", ctypes.c_int), ("nctx", ctypes.c_int),
                ("ngroup", ctypes.c_int), ("inc", ctypes.c_int), ("limit", ctypes.c_int), ("inc_first", ctypes.c_int),
                ("sign", ctypes.c_int), ("srate", ctypes.c_int), ("esc_c0", ctypes.c_int)]


NNC = {2: 3.457, 3: 4.382, 4: 5.324}   # NNCodec CABAC bits/weight (bench_quantized.py, as quoted in the docs)
FLUSH_BITS = 32


class Data:
    def __init__(self, name):
        self.name = name
        if name == "int8":
            meta = json.load(open(WORK / "meta.json")); z = np.load(WORK / "coded.npz")
            self.cont = 0
            self.base = np.array([8 * m["auto_bytes"] for m in meta], float)
        else:
            k = int(name[1:])
            meta = json.load(open(WORK / f"q{k}_meta.json")); z = np.load(WORK / f"q{k}_coded.npz")
            self.cont = json.load(open(WORK / f"q{k}_extra.json"))["container_bits"]
            self.base = np.array([8 * m["auto_bytes"] for m in meta], float)
        self.meta = meta; self.T = len(meta)
        self.N = np.array([m["n"] for m in meta]); self.Ntot = self.N.sum()
        self.model = np.array([m["model"] for m in meta])
        self.PRED = np.array([m["pred"] != "none" for m in meta])
        self.pk = {kind: pack_coded(self.meta, z, kind) for kind in ("none", "pred")}

    def run(self, P, init, kind, hist=None):
        v, cols, off, coff, a0 = self.pk[kind]
        out = np.zeros(self.T); parts = np.zeros(3)
        p = lambda a: a.ctypes.data_as(ctypes.c_void_p)
        lib.s6_all(p(v), p(cols), p(off), p(coff), p(a0), self.T, ctypes.byref(P), p(init), p(out), p(parts),
                   None if hist is None else p(hist))
        return out + FLUSH_BITS

    def per_tensor(self, P, init):
        none = self.run(P, init, "none")
        pred = np.where(self.PRED, self.run(P, init, "pred"), np.inf)
        return np.minimum(none, pred)

    def summary(self, bits):
        """int8: bits/weight; quantized: % vs NNCodec (payload + tinycabac's container, as step3_table.py)"""
        bpw = bits.sum() / self.Ntot
        if self.name == "int8":
            return bpw
        return 100 * ((bits.sum() + self.cont) / self.Ntot / NNC[int(self.name[1:])] - 1)

    def tc_summary(self):
        return self.summary(self.base)

    def model_bpw(self, bits, model):
        s = self.model == model
        return bits[s].sum() / self.N[s].sum()


# ---- alphabets -------------------------------------------------------------------------------------------------
def alphabet(E=4, MB=1, mbs=None):
    """m < E exact; above, (bitlen b, mbs[b] bits below the MSB) classes, default MB for every b; returns
    sym_tab, nraw_tab, nsym8"""
    e = E.bit_length() - 1
    assert 1 << e == E
    sym = np.zeros(256, int); nraw = np.zeros(256, int); nxt = E
    for m in range(E):
        sym[m] = m
    for b in range(e + 1, 9):
        mb = MB if mbs is None else mbs.get(b, MB)
        mb = min(mb, b - 1)
        for m in range(1 << (b - 1), 1 << b):
            sym[m] = nxt + ((m >> (b - 1 - mb)) & ((1 << mb) - 1)); nraw[m] = b - 1 - mb
        nxt += 1 << mb
    return sym, nraw, nxt


def ctx_shift(shift=2, nctx=12, lo=None):
    a = np.arange(257)
    return np.minimum(a >> shift, nctx - 1)


def make(alpha=(4, 1), ctx=None, grp=None, inc=16, limit=32768, inc_first=0, sign=0, srate=7, esc_c0=8, mbs=None,
         alphas=None):
    """alphas: optional function ctx -> (sym_tab, nraw_tab, nsym8), one alphabet per activity context (same nsym8)"""
    P = SP()
    c = ctx_shift() if ctx is None else np.asarray(ctx)
    P.ctx_tab[:] = c.tolist(); P.nctx = int(c.max()) + 1
    n8s = set()
    for ci in range(P.nctx):
        s, r, n8 = alphas(ci) if alphas else alphabet(*alpha, mbs=mbs)
        P.sym_tab[ci][:] = [int(x) for x in s]; P.nraw_tab[ci][:] = [int(x) for x in r]; n8s.add(n8)
    assert len(n8s) == 1, n8s
    P.nsym8 = n8s.pop()
    g = np.zeros(33, int) if grp is None else np.asarray(grp)
    P.grp_tab[:] = g.tolist(); P.ngroup = int(g.max()) + 1
    for f, v in dict(inc=inc, limit=limit, inc_first=inc_first, sign=sign, srate=srate, esc_c0=esc_c0).items():
        setattr(P, f, v)
    return P


def flat_init(P, c0=8):
    return np.full(P.nctx * P.ngroup * P.nsym8, c0, np.uint16)


_DATA = {}


def data(name):
    if name not in _DATA:
        _DATA[name] = Data(name)
    return _DATA[name]


SETS = ("int8", "q2", "q3", "q4")


def evaluate(P, init=None, sets=SETS):
    if init is None:
        init = flat_init(P)
    init = np.ascontiguousarray(init, np.uint16)
    return {s: data(s).per_tensor(P, init) for s in sets}


def fmt(res):
    out = []
    for s, bits in res.items():
        d = data(s)
        out.append(f"{s} {d.summary(bits):.4f}" + ("" if s == "int8" else "%"))
    return "  ".join(out)


if __name__ == "__main__":
    for s in SETS:
        print(s, "tinycabac", data(s).tc_summary())
    print("amsx M=1 12 ctx", fmt(evaluate(make())))


def histogram(P, sets, init=None, kinds=("none", "pred")):
    """symbol counts per context (nctx * ngroup, nsym8 + 1) over the given data sets"""
    if init is None:
        init = flat_init(P)
    init = np.ascontiguousarray(init, np.uint16)
    nc = P.nctx * P.ngroup
    h = np.zeros(nc * (P.nsym8 + 1), np.uint32)
    for s in sets:
        for kind in kinds:
            data(s).run(P, init, kind, h)
    return h.reshape(nc, P.nsym8 + 1)[:, :P.nsym8].astype(float)


def trained_init(hist, total=128, floor=1, weights=None):
    """initial counts per context: the histogram scaled to about `total`, at least `floor`; contexts without data
    get a flat table"""
    h = hist.copy()
    out = np.zeros(h.shape, np.uint16)
    for c in range(h.shape[0]):
        s = h[c].sum()
        p = h[c] / s if s > 0 else np.full(h.shape[1], 1.0 / h.shape[1])
        out[c] = np.maximum(floor, np.round(total * p))
    return out.ravel()


# ---- leave-one-model-out trained initial counts -------------------------------------------------------------------
MODELS = None


def _models():
    global MODELS
    if MODELS is None:
        MODELS = list(dict.fromkeys(data("int8").model))
    return MODELS


def _grp(d):
    ms = _models()
    return np.array([ms.index(m) for m in d.model], np.int32)


def _run_grouped(d, P, init, kind, ig, isz, hist=None, hsz=0):
    v, cols, off, coff, a0 = d.pk[kind]
    out = np.zeros(d.T); parts = np.zeros(3)
    p = lambda a: a.ctypes.data_as(ctypes.c_void_p)
    g = _grp(d)
    igv = np.ascontiguousarray(g if ig else np.zeros(d.T, np.int32))
    lib.s6_all_grouped(p(v), p(cols), p(off), p(coff), p(a0), d.T, ctypes.byref(P), p(init), p(igv), ctypes.c_long(isz),
                       p(out), p(parts), None if hist is None else p(hist), p(g), ctypes.c_long(hsz))
    return out + FLUSH_BITS


def model_histograms(P, sets, kinds=("none", "pred")):
    """[model][ctx][sym] symbol counts, coded with flat initial counts"""
    nc = P.nctx * P.ngroup; ns = P.nsym8 + 1; nm = len(_models())
    h = np.zeros(nm * nc * ns, np.uint32)
    init = flat_init(P)
    for s in sets:
        for kind in kinds:
            _run_grouped(data(s), P, init, kind, False, 0, h, nc * ns)
    return h.reshape(nm, nc, ns)[:, :, :P.nsym8].astype(float)


def evaluate_lomo(P, total, floor, train=SETS, sets=SETS, mh=None):
    """each model coded with initial counts trained on the other models (data sets `train`)"""
    if mh is None:
        mh = model_histograms(P, train)
    allh = mh.sum(0)
    inits = np.stack([trained_init(allh - mh[i], total, floor) for i in range(mh.shape[0])]).astype(np.uint16)
    inits = np.ascontiguousarray(inits.ravel())
    isz = P.nctx * P.ngroup * P.nsym8
    res = {}
    for s in sets:
        d = data(s)
        none = _run_grouped(d, P, inits, "none", True, isz)
        pred = np.where(d.PRED, _run_grouped(d, P, inits, "pred", True, isz), np.inf)
        res[s] = np.minimum(none, pred)
    return res


def write_init_header(P, init, path, note=""):
    """C header for amsx_model.c (INITTAB=1): per context the initial counts sorted by count (descending) and their
    symbol numbers"""
    nc = P.nctx * P.ngroup; n8 = P.nsym8
    init = np.asarray(init).reshape(nc, n8)
    cnt, sym = [], []
    for c in range(nc):
        order = sorted(range(n8), key=lambda i: (-int(init[c, i]), i))
        cnt.append([int(init[c, i]) for i in order]); sym.append(order)
    with open(path, "w") as f:
        f.write(f"/* generated by step6_sim.py (write_init_header){': ' + note if note else ''} */\n")
        f.write(f"#if NCTX != {nc} || NSYM8 != {n8}\n#error \"{path}: built for NCTX {nc}, NSYM8 {n8}\"\n#endif\n")
        f.write("static const uint16_t amsx_init_cnt[NCTX][NSYM8] = {\n" +
                ",\n".join("{" + ", ".join(map(str, r)) + "}" for r in cnt) + "};\n")
        f.write("static const uint8_t amsx_init_sym[NCTX][NSYM8] = {\n" +
                ",\n".join("{" + ", ".join(map(str, r)) + "}" for r in sym) + "};\n")
