# Real amsx encoder over the int8 corpus (coded.npz / meta.json from prep.py): bytes per tensor, none and pred.
import ctypes, json
import numpy as np
from msym_env import WORK, build_host


def build(name, **defs):
    """Build $MULTISYMBOL_WORK/name with the -D defs (MB, NCTX, ESC, POW2, DIVFREE, LOG2R, SH0, SHMAX, ...) and load it."""
    build_host(name, "amsx", **defs)
    return load(name)


def load(name):
    lib = ctypes.CDLL(str(WORK / name))
    lib.amsx_roundtrip.restype = ctypes.c_long
    lib.amsx_encode.restype = ctypes.c_long
    lib.amsx_state_size.restype = ctypes.c_size_t
    return lib


def code(lib, v, a0, cols=None, check=True):
    """Bytes of one tensor (encoder state reset); check: decode again and compare (only without cols)."""
    v = np.ascontiguousarray(v, np.int32); n = v.size; cap = 8 * n + 256
    out = ctypes.create_string_buffer(cap)
    c = None if cols is None else np.ascontiguousarray(cols, np.uint8)
    nb = lib.amsx_roundtrip(v.ctypes.data_as(ctypes.c_void_p), None if c is None else c.ctypes.data_as(ctypes.c_void_p),
                            ctypes.c_size_t(n), ctypes.c_uint(a0), out, ctypes.c_size_t(cap), int(check))
    assert nb > 0, nb
    return nb


def escapes(lib):
    return ctypes.c_uint64.in_dll(lib, "amsx_escapes").value


def baseline_auto_bpw():
    """tinycabac's payload bits/weight over the int8 corpus, prediction auto (baseline.json)."""
    base = json.load(open(WORK / "baseline.json"))
    return sum(v["auto"] for v in base.values()) / sum(v["n"] for v in base.values())


_meta = _z = None


def corpus_bits(lib, check=True):
    """per tensor bits (none, pred, auto) over the int8 corpus; auto = min(none, pred) where tinycabac chose a prediction"""
    global _meta, _z
    if _meta is None:
        _meta = json.load(open(WORK / "meta.json")); z = np.load(WORK / "coded.npz"); _z = {k: z[k] for k in z.files}
    none, pred = [], []
    for m in _meta:
        k = m["key"]
        none.append(8 * code(lib, _z[k + "/none"], m["a_none"], check=check))
        if m["pred"] != "none":
            pred.append(8 * code(lib, _z[k + "/pred"], m["a_pred"], _z.get(k + "/cols"), check=check))
        else:
            pred.append(none[-1])
    none = np.array(none, float); pred = np.array(pred, float)
    n = np.array([m["n"] for m in _meta])
    return none, pred, np.minimum(none, pred), n


if __name__ == "__main__":
    # smoke run: one variant, e.g. python amsx_run.py MB=1 NCTX=12 ESC=2
    import sys, time
    defs = dict(MB=1, NCTX=12, ESC=2)
    defs.update(a.split("=", 1) for a in sys.argv[1:])
    t0 = time.time()
    lib = build("libamsx_cli_" + "_".join(f"{k}{v}" for k, v in defs.items()) + ".so", **defs)
    none, pred, auto, n = corpus_bits(lib)
    print(f"amsx {defs}: state {lib.amsx_state_size()} bytes, none {none.sum()/n.sum():.4f} bpw, auto {auto.sum()/n.sum():.4f} bpw "
          f"(tinycabac auto {baseline_auto_bpw():.4f}), escapes {escapes(lib)}, {time.time()-t0:.0f}s")
