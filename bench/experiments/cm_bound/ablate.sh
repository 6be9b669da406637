#!/bin/sh
# Ablation of cm.c's input groups, carried-state variant, on a subset of the corpus (or the files given).
# usage: ablate.sh CM_BINARY [FILE.lev...]   (run from the directory holding the .lev files)
CM=$1; shift
FILES=${*:-"iris_landmark.lev face_landmark.lev silero_vad_16k.lev selfie_segmentation.lev face_detection_short_range.lev palm_detection_lite.lev"}
run() { printf '%-44s %s\n' "$1" "$($CM -c -x $2 $FILES | tail -1)"; }
run "all" 0
i=0
for g in order0+kind running-activity previous-levels row-back slice-scale column-factor in/pos-factors \
         column-ewma kernel-neighbours row-max row-back-2-3 hash apm parametric centred mixers-2-3 low-rank; do
    run "without $g" $((1 << i)); i=$((i + 1))
done
run "without all scale structure (4,5,6,7)" $(( (1<<4)|(1<<5)|(1<<6)|(1<<7) ))
run "without all neighbours (2,3,8,10,14,16)" $(( (1<<2)|(1<<3)|(1<<8)|(1<<10)|(1<<14)|(1<<16) ))
run "only order0 + running activity counters" $(( 0x1FFFF & ~3 ))
