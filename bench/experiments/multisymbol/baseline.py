# Data preparation, part 1 (about 10 s): tinycabac payload bits per corpus model, prediction auto (default) and
# none; dumps the int8 levels (after the lossless median offset) per tensor.  Writes $MULTISYMBOL_WORK/baseline.json
# and $MULTISYMBOL_WORK/levels.npz.
import json, time
import numpy as np
from msym_env import WORK
import corpus, tinycabac

models = corpus.load_corpus()
out = {}; arrays = {}
for m in models:
    t0 = time.time()
    tens = {t.name: t.int8_levels() for t in m.tensors}
    res = {"n": m.num_weights, "tensors": []}
    for pred in ("auto", "none"):
        s = tinycabac.encode(tens, prediction=pred)
        assert all(np.array_equal(v, tens[k]) for k, v in tinycabac.decode(s).items())
        info = tinycabac.info(s)
        res[pred] = 8 * sum(t.payload_bytes for t in info)
        res[pred + "_stream"] = 8 * len(s)
        res[pred + "_per_tensor"] = [(t.name, t.elements, t.payload_bytes, t.prediction, t.history, t.offset) for t in info]
    for i, (k, v) in enumerate(tens.items()):
        arrays[f"{m.name}/{i:03d}"] = v.ravel()
    out[m.name] = res
    print(m.name, m.num_weights, res["auto"] / m.num_weights, res["none"] / m.num_weights, f"{time.time()-t0:.1f}s", flush=True)
json.dump(out, open(WORK / "baseline.json", "w"), indent=1)
np.savez(WORK / "levels.npz", **arrays)
