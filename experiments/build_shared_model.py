"""Distil a detector's network for the shared search mode and write the detector with it.

    python experiments/build_shared_model.py --out runs/shipped_shared [--model DIR] [--seed 0]
    cp runs/shipped_shared/shared_model.keras runs/shipped_shared/model_info.json \\
       bubblenet/resources/models/lite_synthetic/

Draws a fresh synthetic twin of two of the detector's training longitudes
(l = 22.56°–28.44°, tiles l = 24° and 27°, at the detector's 2.4″/px, sky
seed 21: a sky none of the tests or benchmarks use), takes 4500 windows of
the detector's own search from each tile, and fine-tunes a copy of the
network on them (`bubblenet.training.distillation.distil_shared`; about 20
minutes on 2 CPU cores). The output folder gets the detector's own
``model.keras`` (copied byte for byte), ``shared_model.keras`` and a
``model_info.json`` that records the distillation (options, sky, windows,
held-out agreement before and after, seed, package versions) under
``"shared_model"``. Nothing outside `--out` is written; an existing
``--out`` is refused.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="new detector folder")
    parser.add_argument("--model", type=Path, help="detector to distil (default: the shipped one)")
    parser.add_argument("--seed", type=int, default=0, help="draws the windows and the batches")
    parser.add_argument("--sky-seed", type=int, default=21)
    parser.add_argument("--windows-per-tile", type=int, default=4500)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if args.out.exists():
        print(f"build_shared_model: {args.out} exists; give a new folder", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from bubblenet.detection.detector import (INFO_FILE, MODEL_FILE, SHARED_MODEL_FILE, file_sha256, load_detector,
                                              resolve_detector_files)
    from bubblenet.outputs import atomic_path, package_versions, write_json
    from bubblenet.sky.tilecache import TileCache
    from bubblenet.synth import Region, SynthConfig, make_survey
    from bubblenet.training.distillation import DistilConfig, distil_shared
    from bubblenet.training_data.samples import survey_inputs

    detector = load_detector(args.model)
    model_file, info_file = resolve_detector_files(args.model)
    pixscale = 2.4
    region = Region(22.56, 28.44, -1.0, 1.0)
    config = DistilConfig(windows_per_tile=args.windows_per_tile, epochs=args.epochs, seed=args.seed)
    test_tiles = set(detector.info.get("split", {}).get("test", []))
    with tempfile.TemporaryDirectory() as tmp:
        sky = Path(tmp) / "sky"
        make_survey(sky, SynthConfig(region, pixscale, seed=args.sky_seed))
        tiles, _, _ = survey_inputs(folder=sky)
        caches = [TileCache(t, Path(tmp) / "cache", missing=detector.search.missing, zeros=detector.search.zeros)
                  for t in tiles if t.name not in test_tiles and t.name[4:9] in ("02400", "02700")]
        student, record = distil_shared(detector, caches, pixscale, config)
        names = [c.tile.name for c in caches]
    out = args.out
    out.mkdir(parents=True)
    shutil.copyfile(model_file, out / MODEL_FILE)
    with atomic_path(out / SHARED_MODEL_FILE) as path:
        student.save(path)
    info = json.loads(info_file.read_text())
    info["shared_model"] = {
        "file": SHARED_MODEL_FILE, "sha256": file_sha256(out / SHARED_MODEL_FILE),
        "teacher_sha256": file_sha256(out / MODEL_FILE),
        "made_by": "experiments/build_shared_model.py (bubblenet.training.distillation.distil_shared)",
        "sky": {"region": [region.l_min, region.l_max, region.b_min, region.b_max], "pixscale_arcsec": pixscale,
                "seed": args.sky_seed, "tiles": names},
        **record, "versions": package_versions()}
    write_json(out / INFO_FILE, info)
    print(json.dumps({"out": str(out), "windows": record["windows"], "before": record["before"],
                      "after": record["after"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
