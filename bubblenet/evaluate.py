"""``bubblenet evaluate`` / ``python -m bubblenet.evaluate``: score a detection catalogue and cross-match it.

Reads the catalogue `bubblenet detect` wrote and scores it inside the region
searched (`bubblenet.evaluation.scoring.score_catalogue`), then cross-matches
every detection with MWP DR2, MWP DR1, the Churchwell bubbles and the WISE
HII regions (`bubblenet.evaluation.crossmatch`); detections matching none are
*new*.

Writes ``evaluation.json`` (scores, counts, options), ``crossmatch.ecsv``
(the detections with one ``in_<catalogue>`` column per catalogue and ``new``)
and, when the input images are readable, ``montages/tp.png``, ``fp.png`` and
``fn.png``: cut-outs of true and false positives and missed bubbles (paper
rule), for a person to check.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bubblenet.cli import add_output_options, make_parser, run_verb
from bubblenet.errors import ConfigError

DESCRIPTION = """\
Score detections (bubbles.ecsv from `bubblenet detect`) against a reference
catalogue (default: MWP DR2, the clear bubbles as positives) inside the region
searched, under the paper's rule (a detection covers >= 1/3 of a bubble's box;
duplicates free) and a strict one (one-to-one by centre and size; duplicates
are false positives); cross-match them with MWP DR2, MWP DR1, Churchwell and
WISE HII and count the new ones.
"""

def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = make_parser(prog, DESCRIPTION, section="evaluate")
    parser.add_argument("--detections", type=Path, required=True, help="bubbles.ecsv (or .fits/.csv) from detect")
    parser.add_argument("--catalogue", default="mwp_dr2",
                        help="reference catalogue: a shipped name (mwp_dr2, mwp_dr1, ...) or a file")
    parser.add_argument("--select", default="clear",
                        help="positives: a shipped selection (clear, rank2or3, 8um) or a file of names")
    parser.add_argument("--l", type=float, nargs=2, metavar=("MIN", "MAX"), help="Galactic longitude range, deg")
    parser.add_argument("--b", type=float, nargs=2, metavar=("MIN", "MAX"), help="Galactic latitude range, deg")
    parser.add_argument("--threshold", type=float, help="score cut (default: keep all detections)")
    parser.add_argument("--montage-size", type=int, default=48, help="cut-outs per montage (0: no montages)")
    add_output_options(parser, None, help="folder for evaluation.json and crossmatch.ecsv (default: beside the "
                                          "detections)")
    return parser


def run(args: argparse.Namespace) -> int:
    from bubblenet.catalogues.tables import read_selection
    from bubblenet.detection.detector import check_threshold
    from bubblenet.detection.results import check_region
    from bubblenet.evaluation.crossmatch import CROSSMATCH, crossmatch_table
    from bubblenet.evaluation.montages import evaluation_montages
    from bubblenet.evaluation.scoring import read_detections, reference_catalogue, score_catalogue
    from bubblenet.outputs import atomic_path, claim_output_dir, run_record, write_json

    check_threshold(args.threshold)
    check_region(args.l, args.b)
    if args.montage_size < 0:
        raise ConfigError(f"--montage-size must be >= 0, got {args.montage_size}")
    table = read_detections(args.detections)
    evaluation = score_catalogue(table, reference_catalogue(args.catalogue), read_selection(args.select),
                                 l_range=args.l, b_range=args.b, threshold=args.threshold)
    detections = crossmatch_table(evaluation.detections, CROSSMATCH)
    out = claim_output_dir(args.out or args.detections.parent, "evaluate", overwrite=args.overwrite,
                           accept=("detect",))
    with atomic_path(out / "crossmatch.ecsv") as tmp:
        detections.write(tmp, format="ascii.ecsv", overwrite=True)
    scores = evaluation.scores
    result = {"detections": len(detections), "reference": args.catalogue, "selection": args.select,
              "bubbles_in_region": len(evaluation.reference), "selected_in_region": int(evaluation.selected.sum()),
              "paper_rule": scores["paper"], "strict_rule": scores["strict"],
              "crossmatch": {name: int(np.sum(detections[f"in_{name}"])) for name in CROSSMATCH},
              "new": int(np.sum(detections["new"])), "run": run_record("evaluate", vars(args))}
    if args.montage_size > 0:
        result["montages"] = [str(p) for p in evaluation_montages(evaluation, table, out / "montages",
                                                                 per_montage=args.montage_size)]
    write_json(out / "evaluation.json", result)
    paper, strict = scores["paper"], scores["strict"]
    print(f"{len(detections)} detections, {result['selected_in_region']} selected of {result['bubbles_in_region']} "
          f"{args.catalogue} bubbles in the region searched")
    print(f"paper rule: recall {paper['recall']:.3f}, precision {paper['precision']:.3f}, F1 {paper['f1']:.3f}, "
          f"F2 {paper['f2']:.3f}; strict: recall {strict['recall']:.3f}, precision {strict['precision']:.3f}, "
          f"F2 {strict['f2']:.3f}")
    print("matched: " + ", ".join(f"{k} {v}" for k, v in result["crossmatch"].items())
          + f"; new to all: {result['new']}")
    print(f"wrote {out / 'evaluation.json'} and {out / 'crossmatch.ecsv'}")
    return 0


def main(argv=None, prog=None) -> int:
    return run_verb(build_parser(prog), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
