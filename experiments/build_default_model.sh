#!/usr/bin/env bash
# Rebuild the detector shipped in bubblenet/resources/models/lite_synthetic/:
# train the setting of experiments/default_model.yaml (about 8 minutes on a
# 2-core CPU), then copy the run's detector (model.keras + model_info.json,
# which records the options, seed, split, scores and package versions) into
# the package. Same seed, same recipe; multi-threaded CPU kernels do not
# promise bit-identical weights.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python}"
"$python" -m bubblenet.fit --config experiments/default_model.yaml
dest=bubblenet/resources/models/lite_synthetic
mkdir -p "$dest"
cp runs/default_model/model.keras runs/default_model/model_info.json "$dest"/
echo "shipped detector updated in $dest"
