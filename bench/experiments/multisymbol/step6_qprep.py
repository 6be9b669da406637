# Step 6 data preparation for the quantized levels (as step3_quantized.py: nearest, step std * 2^-k, k = 2, 3, 4):
# per tensor the coded values for prediction "none" and for tinycabac's auto choice, column activities, initial
# activities and tinycabac's payload bytes; plus per k the container bits (float+step stream minus payload) that
# step3_table.py adds to amsx's payload for the comparison with NNCodec.
# Writes $MULTISYMBOL_WORK/q{k}_coded.npz and q{k}_meta.json (same layout as prep.py's coded.npz / meta.json).
import json, time
import numpy as np
from multiprocessing import Pool
from msym_env import WORK
import bench_quantized as bq, corpus, tinycabac
from tinycabac import native
from tinycabac.predict import residuals
from step3_quantized import file_levels


def job(i):
    model = corpus.load_model(corpus.MODEL_SOURCES[i])
    res = {}
    for k in bq.TABLE_K:
        levs, steps = {}, {}
        for t in model.tensors:
            levs[t.name], steps[t.name] = file_levels(t, k)
        s_float = tinycabac.encode({t.name: t.weights for t in model.tensors}, step=steps, quantizer="nearest")
        cont = 8 * len(s_float) - 8 * sum(x.payload_bytes for x in tinycabac.info(s_float))
        s = tinycabac.encode(levs)
        info = tinycabac.info(s)
        arrays, meta = {}, []
        for j, x in enumerate(info):
            key = f"{model.name}/{j:03d}"
            lev = levs[x.name].ravel().astype(np.int64) - int(x.offset)
            arrays[key + "/none"] = lev.astype(np.int32)
            a0 = native.initial_activity(lev)
            coded, cols, a1 = lev, None, a0
            if x.prediction != "none":
                coded = residuals(lev, x.history) if x.prediction == "difference" else lev
                a1 = native.initial_activity(coded)
                if x.prediction == "scale":
                    cols = native.column_activities(coded, x.history, a1)
            arrays[key + "/pred"] = np.asarray(coded).astype(np.int32)
            if cols is not None:
                arrays[key + "/cols"] = cols
            meta.append(dict(key=key, model=model.name, n=int(x.elements), auto_bytes=x.payload_bytes,
                             none_bytes=x.payload_bytes, pred=x.prediction, hist=x.history, a_none=a0, a_pred=a1))
        res[k] = (arrays, meta, cont, model.num_weights)
        print(model.name, k, flush=True)
    return res


if __name__ == "__main__":
    t0 = time.time()
    with Pool(2) as p:
        out = p.map(job, range(len(corpus.MODEL_SOURCES)))
    for k in bq.TABLE_K:
        arrays, meta, cont = {}, [], 0
        for r in out:
            a, m, c, n = r[k]; arrays.update(a); meta += m; cont += c
        np.savez(WORK / f"q{k}_coded.npz", **arrays)
        json.dump(meta, open(WORK / f"q{k}_meta.json", "w"))
        json.dump(dict(container_bits=cont, n=sum(r[k][3] for r in out)), open(WORK / f"q{k}_extra.json", "w"))
    print(f"done {time.time()-t0:.0f}s")
