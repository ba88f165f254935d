"""Are clear bubbles still found when their 24 µm core is saturated? One JSON line per detector.

The twin of the real MWP field l = 41.3° (`bubblenet.synth.realism.mwp_field_twin`,
MJy/sr) is drawn twice per seed: as the standard sky, and with every clear
bubble given a saturated 24 µm core that the tile leaves NaN
(``Hardening(saturated_cores=1.0)``; all else equal, since each hardening
addition draws from its own random stream). Each detector searches both
with its own search and threshold; a clear bubble counts as found when one
detection matches it one-to-one under the strict rule. Prints, per detector,
how many clear bubbles it finds on the standard twins and how many of those
it still finds with their cores saturated:

    python experiments/saturated_cores.py shipped runs/demo runs/hard_s0 [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path


def clear_found(detector, i8: Path, m24: Path, catalogue: Path, names: list[str]) -> set[str]:
    """The clear bubbles (`names`) that `detector` finds one-to-one on the field."""
    import bubblenet
    import bubblenet.api  # the table behind find_bubbles' QTable, which score_catalogue takes
    from bubblenet.evaluation.scoring import reference_catalogue, score_catalogue

    found = bubblenet.api._detection_table(bubblenet.find_bubbles(i8, m24, detector=detector))
    reference = reference_catalogue(catalogue)
    return {name for name in names if score_catalogue(found, reference, {name}).scores["strict"]["tp"]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="detector folders, or 'shipped'")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="twin seeds")
    args = parser.parse_args(argv)

    from bubblenet.catalogues.tables import read_catalogue
    from bubblenet.detection.detector import load_detector
    from bubblenet.synth.hardening import Hardening
    from bubblenet.synth.realism import mwp_field_twin

    with tempfile.TemporaryDirectory() as tmp:
        fields = {}
        for seed in args.seeds:
            for kind, hardening in (("standard", None), ("cored", Hardening(saturated_cores=1.0))):
                i8, m24, catalogue = mwp_field_twin(Path(tmp) / f"{kind}_s{seed}", seed=seed, hardening=hardening)
                truth = read_catalogue(catalogue.parent / "bubbles_truth.csv")
                fields[kind, seed] = (i8, m24, catalogue, [str(n) for n in truth["name"][truth["clear"]]])
        for model in args.models:
            detector = load_detector(None if model == "shipped" else model)
            standard = cored = 0
            for seed in args.seeds:
                plain = clear_found(detector, *fields["standard", seed])
                standard += len(plain)
                cored += len(plain & clear_found(detector, *fields["cored", seed]))
            print(json.dumps({"experiment": "saturated_cores", "detector": model, "seeds": args.seeds,
                              "clear_found_standard": standard, "still_found_with_saturated_core": cored}),
                  flush=True)


if __name__ == "__main__":
    main()
