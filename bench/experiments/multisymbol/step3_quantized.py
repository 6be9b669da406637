# Step 3: quantized levels (bench_quantized.py's "same levels": nearest rounding, half away from zero, of w / step
# in float64, step = representable_step(std * 2^-k) per tensor, on the 12-model corpus), coded by tinycabac and amsx.
import json, time
import numpy as np
from msym_env import WORK
from multiprocessing import Pool
import bench_quantized as bq, corpus, tinycabac
from tinycabac import native
from tinycabac.predict import residuals
import amsx_run
VARIANTS = {"M=1, 12 ctx, ESC=2": dict(MB=1, NCTX=12, ESC=2), "M=2, 10 ctx, ESC=2": dict(MB=2, NCTX=10, ESC=2)}

def file_levels(t, k):
    step = bq.tensor_step(t, k)
    lev_rows = bq.exact_nearest_levels(t.channel_rows(), step)
    rows_shape = np.moveaxis(t.weights, t.channel_axis, 0).shape
    return np.ascontiguousarray(np.moveaxis(lev_rows.reshape(rows_shape), 0, t.channel_axis), np.int32), step

def job(i):
    libs = {name: amsx_run.load(f"libamsx_s3_{j}.so") for j, name in enumerate(VARIANTS)}
    model = corpus.load_model(corpus.MODEL_SOURCES[i])
    res = {"model": model.name, "n": model.num_weights, "k": {}}
    for k in bq.TABLE_K:
        levs, steps = {}, {}
        for t in model.tensors:
            levs[t.name], steps[t.name] = file_levels(t, k)
        r = {}
        # (a) the bench's own method: float tensors + steps, nearest quantizer, whole stream
        s_float = tinycabac.encode({t.name: t.weights for t in model.tensors}, step=steps, quantizer="nearest")
        r["tc_float_stream"] = 8 * len(s_float)
        r["tc_float_payload"] = 8 * sum(x.payload_bytes for x in tinycabac.info(s_float))
        # (b) the same levels as int32 arrays (lossless), prediction auto
        s = tinycabac.encode(levs)
        info = tinycabac.info(s)
        r["tc_int_stream"] = 8 * len(s); r["tc_int_payload"] = 8 * sum(x.payload_bytes for x in info)
        r["max_abs"] = int(max(np.abs(v).max() for v in levs.values()))
        r["share_ge256"] = float(sum((np.abs(v) >= 256).sum() for v in levs.values()))
        r["zeros"] = float(sum((v == 0).sum() for v in levs.values()))
        for name, lib in libs.items():
            none_b = pred_b = 0; e0 = amsx_run.escapes(lib)
            for x in info:
                lev = levs[x.name].ravel().astype(np.int64) - int(x.offset)
                a0 = native.initial_activity(lev)
                nb = 8 * amsx_run.code(lib, lev.astype(np.int32), a0, check=True)
                none_b += nb
                if x.prediction != "none":
                    cols = None
                    coded = residuals(lev, x.history) if x.prediction == "difference" else lev
                    a1 = native.initial_activity(coded)
                    if x.prediction == "scale":
                        cols = native.column_activities(coded, x.history, a1)
                    nb = min(nb, 8 * amsx_run.code(lib, np.asarray(coded).astype(np.int32), a1, cols, check=cols is None))
                pred_b += nb
            r[name] = dict(none=none_b, auto=pred_b, escapes=amsx_run.escapes(lib) - e0)
        res["k"][k] = r
        print(model.name, k, json.dumps(r), flush=True)
    return res

if __name__ == "__main__":
    t0 = time.time()
    for j, d in enumerate(VARIANTS.values()): amsx_run.build(f"libamsx_s3_{j}.so", **d)
    with Pool(2) as p:
        out = p.map(job, range(len(corpus.MODEL_SOURCES)))
    json.dump(out, open(WORK / "step3_results.json", "w"), indent=1)
    print(f"done {time.time()-t0:.0f}s")
