# Step 6: two trained initial-count tables (one from the int8 corpus, one from the quantized levels; each
# leave-one-model-out) chosen per tensor by the encoder (1 bit), on top of the per-tensor (increment, limit) choice.
# Simulator; the histograms are taken once with increment 16 / limit 32768.
#   python step6_twoinit.py [mbs]   mbs: "3-5" (M=2 for bit lengths 3-5, else M=1; default) or "m2" (M=2)
import sys
import numpy as np
import step6_sim as S
from step6_screen import B16, IL, line

kw = dict(sign=2, ctx=B16, alpha=(4, 2)) if sys.argv[1:] == ["m2"] else dict(sign=2, ctx=B16, alpha=(4, 1), mbs={3: 2, 4: 2, 5: 2})
P0 = S.make(**kw)
mh = {"all": S.model_histograms(P0, S.SETS), "int8": S.model_histograms(P0, ("int8",)),
      "q": S.model_histograms(P0, ("q2", "q3", "q4"))}
R = {}
for inc, lim in IL:
    P = S.make(**dict(kw, inc=inc, limit=lim))
    for t in mh:
        R[inc, lim, t] = S.evaluate_lomo(P, 512, 2, mh=mh[t])
pick = lambda keys, side: {s: np.min([R[k][s] for k in keys], axis=0) + side for s in S.SETS}
print(f"| variant ({kw.get('mbs') or 'M=2'}) | int8 | q2 | q3 | q4 | small models |\n|---|---:|---:|---:|---:|---|")
line("one table (all data), inc x limit", pick([k for k in R if k[2] == "all"], 4))
line("one table (int8 only), inc x limit", pick([k for k in R if k[2] == "int8"], 4))
line("one table (quantized only), inc x limit", pick([k for k in R if k[2] == "q"], 4))
line("int8 or quantized table per tensor, inc x limit", pick([k for k in R if k[2] != "all"], 5))
