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
# The shared-search network distilled from the previous model belongs to it, not to this one.
rm -f "$dest/shared_model.keras"
# Its survey search (what `detect` uses by default) starts at 200" windows, not at the
# 420" of its validation: the smallest bubbles (boxes under 60") need them. Measured:
# recall 0.988 against 0.917 on the demo's test tiles, precision 0.155 against 0.490;
# the paper mode's recall at 1/6.7 of its time (benchmarks/bench_search.py). See README.
"$python" - "$dest/model_info.json" <<'EOF'
import json
import sys

path = sys.argv[1]
with open(path) as stream:
    info = json.load(stream)
info["validation_search"] = info.get("validation_search", info["search"])
info["search"] = {**info["validation_search"], "sizes_arcsec": [200.0, 3600.0]}
info["search_note"] = ("survey search set after training: windows from 200 arcsec reach the bubbles under "
                       "60 arcsec that the 420 arcsec validation windows miss; the threshold is the one "
                       "chosen on validation (420-3600 arcsec windows)")
with open(path, "w") as stream:
    json.dump(info, stream, indent=2, sort_keys=True)
    stream.write("\n")
EOF
echo "shipped detector updated in $dest"
echo "distil its shared-search network (about 20 minutes), then copy it in:"
echo "  $python experiments/build_shared_model.py --out runs/shipped_shared"
echo "  cp runs/shipped_shared/shared_model.keras runs/shipped_shared/model_info.json $dest/"
