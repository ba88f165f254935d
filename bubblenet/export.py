"""``bubblenet export`` / ``python -m bubblenet.export``: a trained detector as a TF SavedModel.

See `bubblenet.detection.savedmodel` for the SavedModel's signature.
"""

from __future__ import annotations

from pathlib import Path

from bubblenet.cli import add_output_options, make_parser, run_verb
from bubblenet.errors import ConfigError

DESCRIPTION = """\
Export a trained detector (a `bubblenet fit` run folder, a .keras file beside
its model_info.json, or, by default, the model shipped with bubblenet) as a
TensorFlow SavedModel. Its 'serve' signature takes normalised 2-band images
(B, H, W, 2) of any size and returns boxes, scores and counts after NMS at the
detector's threshold; it loads with plain tf.saved_model.load.
"""


def build_parser(prog: str | None = None):
    parser = make_parser(prog, DESCRIPTION, section="export")
    parser.add_argument("--model", type=Path, default=None,
                        help="run folder or .keras file (default: the shipped model)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="confidence threshold (default: the one chosen on validation)")
    parser.add_argument("--max-detections", type=int, default=100, help="detections kept per image")
    add_output_options(parser, Path("savedmodel"), help="SavedModel folder to write",
                       overwrite="replace an --out folder that is not an earlier export, and everything in it")
    return parser


def run(args) -> int:
    from bubblenet.detection.detector import check_threshold, load_detector
    from bubblenet.detection.savedmodel import export_savedmodel

    from bubblenet.outputs import claim_output_dir

    detector = load_detector(args.model)
    check_threshold(args.threshold)
    if args.max_detections < 1:
        raise ConfigError(f"--max-detections must be at least 1, got {args.max_detections}")
    claim_output_dir(args.out, "export", overwrite=args.overwrite)  # export_savedmodel replaces the folder
    threshold = detector.threshold if args.threshold is None else args.threshold
    path = export_savedmodel(detector.model, detector.spec, args.out, threshold=threshold, preset=detector.preset,
                             max_detections=args.max_detections, info=detector.info)
    print(f"SavedModel written to {path}/ (threshold {threshold:.2f}); "
          f"load it with tf.saved_model.load('{path}').serve(images)")
    return 0


def main(argv=None, prog=None) -> int:
    return run_verb(build_parser(prog), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
