#!/usr/bin/env bash
# Train the detector of experiments/hardened_model.yaml: draw the two hardened strips (about 4 minutes),
# join them, train (about 25 minutes on a 2-core CPU) and run it through benchmarks/bench_transfer.py
# (the real MWP field at l = 41.3 beside its twins). Everything lands under runs/; nothing in the
# package is replaced. SEED=1 bash experiments/build_hardened_model.sh trains another seed.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python}"
seed="${SEED:-0}"
sky=runs/hardened_sky
[ -e "$sky/west/synth_run.json" ] || "$python" -m bubblenet.synth --hard --l 10.6 37.4 --b -1 1 --pixscale 2.4 --seed 0 --out "$sky/west" -q
[ -e "$sky/east/synth_run.json" ] || "$python" -m bubblenet.synth --hard --l 43.6 64.4 --b -1 1 --pixscale 2.4 --seed 1 --out "$sky/east" -q
[ -e "$sky/joined/merged.json" ] || "$python" experiments/merge_skies.py "$sky/west" "$sky/east" --out "$sky/joined"
out="runs/hardened_model_s$seed"
"$python" -m bubblenet.fit --config experiments/hardened_model.yaml --seed "$seed" --out "$out"
"$python" benchmarks/bench_transfer.py --model "$out" | tee "$out/bench_transfer.json"
