# Data preparation, part 2 (after baseline.py): per tensor, the coded values and column activities tinycabac
# uses, for prediction "none" and for the prediction (kind, H) tinycabac's "auto" chose.
# Writes $MULTISYMBOL_WORK/coded.npz and $MULTISYMBOL_WORK/meta.json.
import json
from collections import Counter
import numpy as np
from msym_env import WORK
from tinycabac import native
from tinycabac.predict import residuals

base = json.load(open(WORK / "baseline.json"))
lv = np.load(WORK / "levels.npz")
keys = sorted(lv.files)
out = {}
meta = []
for model, res in base.items():
    mk = [k for k in keys if k.startswith(model + "/")]
    assert len(mk) == len(res["auto_per_tensor"])
    for k, (name, n, pbytes, pred, hist, off), nonet in zip(mk, res["auto_per_tensor"], res["none_per_tensor"]):
        lev = lv[k].astype(np.int64) - int(off)
        assert nonet[5] == off
        a0 = native.initial_activity(lev)
        out[k + "/none"] = lev.astype(np.int32)
        cols = None
        if pred == "difference":
            coded = residuals(lev, hist)
        else:
            coded = lev
        a1 = native.initial_activity(coded)
        if pred == "scale":
            cols = native.column_activities(coded, hist, a1)
        out[k + "/pred"] = coded.astype(np.int32)
        if cols is not None:
            out[k + "/cols"] = cols
        meta.append(dict(key=k, model=model, n=n, auto_bytes=pbytes, none_bytes=nonet[2], pred=pred, hist=hist,
                         a_none=a0, a_pred=a1))
np.savez(WORK / "coded.npz", **out)
json.dump(meta, open(WORK / "meta.json", "w"))
tot = sum(m["n"] for m in meta)
print("tensors", len(meta), "weights", tot,
      "auto", 8*sum(m["auto_bytes"] for m in meta)/tot, "none", 8*sum(m["none_bytes"] for m in meta)/tot)
print(Counter(m["pred"] for m in meta))
