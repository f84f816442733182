#!/bin/bash
# lead (stop 21): main f878ecc, main + the same-bytes cuts (evid-cuts), and evid-threads (helper process),
# each on a fresh copy of snap20k, nothing deleted before a run, sync + 35 s between runs, idle machine
cd /work/scratch/perf/s21-evid
for r in 1 2; do
  for c in main:/work/main cuts:/work/wt-cuts threads:/work/wt-s21-evid; do
    tag=${c%%:*}; root=${c#*:}
    sync; sleep 35
    echo "$tag-$r load $(cut -d' ' -f1-3 /proc/loadavg)" >> lead-rounds.load
    PYTHONPATH=$root/include:$root/plugins /work/main/.venv/bin/python step21.py $root/include snap20k work/lead-$tag-$r > lead-$tag-$r.json 2> lead-$tag-$r.err
  done
done
echo done >> lead-rounds.load
