"""Write the corpus's int8 levels for cm.c: one file per model in $CM_WORK (default /tmp/cm_bound).

Per tensor: int32 header [n, O, sO, I, sI, Y, sY, X, sX, kind] then n int8 levels in file (= tinycabac's
coding) order. O/I/Y/X are the sizes of the output-channel, input-channel, kernel-row and kernel-column
axes, sO.. their strides in that order (size 1, stride 0 when the tensor has no such axis).
kind: 0 TFLite conv [O,Y,X,I], 1 TFLite depthwise [1,Y,X,O], 2 fully connected [O,I],
3 ONNX conv [O,I,Y,X] / [O,I,K]."""
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import corpus  # noqa: E402

WORK = Path(os.environ.get("CM_WORK", "/tmp/cm_bound"))


def geometry(t, onnx: bool):
    s = t.weights.shape
    st = [int(np.prod(s[i + 1:])) for i in range(len(s))]
    axis = t.channel_axis % len(s)
    none = (1, 0)
    if len(s) == 2 and axis == 0:
        return (s[0], st[0]), (s[1], st[1]), none, none, 2
    if onnx and len(s) == 4 and axis == 0:
        return (s[0], st[0]), (s[1], st[1]), (s[2], st[2]), (s[3], st[3]), 3
    if onnx and len(s) == 3 and axis == 0:
        return (s[0], st[0]), (s[1], st[1]), none, (s[2], st[2]), 3
    if len(s) == 4 and axis == 0:
        return (s[0], st[0]), (s[3], st[3]), (s[1], st[1]), (s[2], st[2]), 0
    if len(s) == 4 and axis == 3 and s[0] == 1:
        return (s[3], st[3]), none, (s[1], st[1]), (s[2], st[2]), 1
    raise ValueError(f"unhandled layout {s} axis {axis}")


def main():
    WORK.mkdir(parents=True, exist_ok=True)
    names = []
    for model in corpus.load_corpus():
        onnx = model.source.endswith(".onnx")
        with open(WORK / f"{model.name}.lev", "wb") as f:
            for t in model.tensors:
                lev = np.ascontiguousarray(t.int8_levels()).ravel()
                o, i, y, x, kind = geometry(t, onnx)
                assert o[0] * i[0] * y[0] * x[0] == lev.size
                f.write(np.array([lev.size, *o, *i, *y, *x, kind], dtype=np.int32).tobytes())
                f.write(lev.astype(np.int8).tobytes())
        names.append(model.name)
    (WORK / "models.txt").write_text("\n".join(names) + "\n")
    print(f"wrote {len(names)} models to {WORK}")


if __name__ == "__main__":
    main()
