"""``bubblenet data`` / ``python -m bubblenet.data``: see what the detector is fed.

``preview`` writes a montage of one training batch with its label boxes, the
split, and (with ``--clusters``) the negative cluster montages; ``clusters``
writes only the cluster montages and their sizes, so a person can pick which
clusters look like bubbles and drop them (``--drop-clusters``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bubblenet.cli import add_output_options, make_parser, run_verb

DESCRIPTION = """\
Build the training data of a survey and show it. 'preview' writes
batch_montage.png (one batch: positives with their label boxes, then
negatives), split.json and, with --clusters K, the negative cluster montages;
'clusters' writes the cluster montages and negatives_clusters.json only.
"""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = make_parser(prog, DESCRIPTION, section="data")
    parser.add_argument("action", choices=("preview", "clusters"), help="what to write")
    add_survey_options(parser)
    add_sample_options(parser)
    parser.add_argument("--size", type=int, default=128, help="network input side, px (lite: 128, paper: 300)")
    parser.add_argument("--cache", type=Path, default=None, help="tile cache folder (default: OUT/cache)")
    add_output_options(parser, Path("data_preview"))
    return parser


def add_survey_options(parser: argparse.ArgumentParser) -> None:
    """The survey and split options of `bubblenet.training.config.FitConfig` (`data`, `fit` and `tune` share them)."""
    from bubblenet.training.config import FitConfig

    d = FitConfig()
    inputs = parser.add_argument_group("survey")
    inputs.add_argument("--survey", type=Path, help="survey folder (GLM_*_I4.fits, MG*_024.fits)")
    inputs.add_argument("--i8", type=Path, nargs="+", default=list(d.i8), help="8 µm FITS files")
    inputs.add_argument("--m24", type=Path, nargs="+", default=list(d.m24), help="24 µm FITS files")
    inputs.add_argument("--catalogue", help="catalogue file or shipped name (default: the survey's or mwp_dr2)")
    inputs.add_argument("--select", help="positives: shipped selection or file of names (default: the survey's "
                                         "clear_bubbles.txt or 'clear')")
    split = parser.add_argument_group("split")
    split.add_argument("--test-l", type=float, nargs="*", default=list(d.test_l),
                       help="centre longitudes of the test tiles")
    split.add_argument("--val", type=float, nargs="*", default=d.val,
                       help="centre longitudes of the validation tiles (default: --n-val drawn by --split-seed)")
    split.add_argument("--n-val", type=int, default=d.n_val, help="validation tiles drawn when --val is not given")
    split.add_argument("--split-seed", type=int, default=d.split_seed, help="seed of the tile shuffle")


def add_sample_options(parser: argparse.ArgumentParser) -> None:
    """The sample options of `bubblenet.training.config.FitConfig`."""
    from bubblenet.sky.tilecache import MISSING_RULES, ZERO_RULES
    from bubblenet.training.config import MASKS, FitConfig
    from bubblenet.training_data.cutouts import BANDS, NORM_LEVELS, STAR_RULES
    from bubblenet.training_data.samples import CROP_RULES
    from bubblenet.training_data.sensors import RANDOMISATIONS

    d = FitConfig()
    samples = parser.add_argument_group("samples")
    samples.add_argument("--positives", type=int, default=d.positives, help="positives per step")
    samples.add_argument("--negatives", type=int, default=d.negatives, help="negatives per step")
    samples.add_argument("--negatives-per-tile", type=int, default=d.negatives_per_tile,
                         help="negative pool per tile (paper: 3000)")
    samples.add_argument("--mask", choices=MASKS, default=d.mask,
                         help="what of each catalogue bubble is kept out of negatives")
    samples.add_argument("--mask-selected-only", action="store_true", default=d.mask_selected_only,
                         help="mask only the selected bubbles in negatives (the paper), not every catalogue bubble")
    samples.add_argument("--paper-exact", action="store_true", default=d.paper_exact,
                         help="quantise inputs to 8 bits like the paper's PNGs")
    samples.add_argument("--clusters", type=int, default=d.clusters,
                         help="cluster the negatives into K groups (paper: 10)")
    samples.add_argument("--drop-clusters", type=int, nargs="*", default=list(d.drop_clusters),
                         help="clusters never sampled")
    samples.add_argument("--cluster-weights", type=float, nargs="*", default=d.cluster_weights,
                         help="weight per cluster")
    samples.add_argument("--max-crop-scale", type=float, default=d.max_crop_scale,
                         help="augmentation: largest translated crop half-side over the bubble's MajAxis (paper: 5.88)")
    samples.add_argument("--crop-rule", choices=CROP_RULES, default=d.crop_rule,
                         help="augmentation: translated crops' half-side over MajAxis uniform in [1.72, MAX], or "
                              "1 / U(0.17, 0.58) (paper)")
    samples.add_argument("--samples-per-bubble", type=int, choices=(1, 7), default=d.samples_per_bubble,
                         help="positives per bubble per epoch: 1, or the paper's 7 (centred, translated, "
                              "3 rotations, 2 flips)")
    labels = samples.add_mutually_exclusive_group()
    labels.add_argument("--label-selected-only", dest="label_selected_only", action="store_true",
                        default=d.label_selected_only,
                        help="label only the selected bubbles in a crop, the others being background (the paper)")
    # SUPPRESS: the option's default is the flag above's; help would print it as this flag's too.
    labels.add_argument("--label-all-bubbles", dest="label_selected_only", action="store_false",
                        default=argparse.SUPPRESS,
                        help="label every catalogue bubble in a crop (bubblenet's default before the ablation of "
                             "docs/ablation.md, which measures both)")
    samples.add_argument("--clip-sigma", type=float, default=d.clip_sigma,
                         help="normalisation: each band saturates at mean + this many sigma (paper: 3)")
    samples.add_argument("--norm-level", choices=NORM_LEVELS, default=d.norm_level,
                         help="normalisation level mean(x - min) + k sigma (shifted), or mean(x) + k sigma (paper)")
    samples.add_argument("--star-mask", choices=STAR_RULES, default=d.star_mask,
                         help="8 µm point sources leave the statistics by weight (the share of each pixel that is "
                              "not a source), or by a threshold dropped when under 10%% of a window is clear "
                              "(the rule before 2026-12)")
    samples.add_argument("--missing-data", choices=MISSING_RULES, default=d.missing_data,
                         help="NaN islands under 70,000 px at 1.2\"/px filled with the tile's maximum (fill-max, the "
                              "paper), or small holes interpolated and windows touching NaN rejected")
    samples.add_argument("--zeros", choices=ZERO_RULES, default=d.zeros,
                         help="zero pixels are data, or an external galaxy's coverage edge: replaced by the 1st "
                              "percentile, windows at least 70%% zero not used (edge, the original's rule)")
    samples.add_argument("--display-stretch", type=float, default=d.display_stretch, metavar="SHARE",
                         help="domain randomisation: this share of the training samples is seen through a random "
                              "8-bit display stretch (linear, power, asinh or log between random percentiles), "
                              "as display images such as the Milky Way Project's are made")
    samples.add_argument("--randomise", nargs="*", choices=RANDOMISATIONS, default=list(d.randomise),
                         metavar="TRANSFORM",
                         help="domain randomisation of the instrument: samples are seen through these transforms, "
                              f"each with probability --randomise-share ({', '.join(RANDOMISATIONS)}: extra PSF "
                              "blur, white noise, a background gradient, JPEG compression of a 24 + 8 µm "
                              "composite; docs/measurements.md measures each; given with none, none)")
    samples.add_argument("--randomise-share", type=float, default=d.randomise_share, metavar="SHARE",
                         help="probability of each --randomise transform per sample")
    samples.add_argument("--hard-negatives", type=float, default=d.hard_negatives, metavar="SHARE",
                         help="this share of each tile's negative pool is centred on compact sources bright at "
                              "both bands (YSO- and compact-HII-like look-alikes) instead of placed at random")
    samples.add_argument("--bands", choices=BANDS, default=d.bands,
                         help="what the detector sees: 24 + 8 µm, or 8 µm alone (its 24 µm input kept at zero)")
    samples.add_argument("--seed", type=int, default=d.seed, help="seed of every sample")


def fit_config(args: argparse.Namespace):
    """The `bubblenet.training.config.FitConfig` of the parsed options (those it has)."""
    import dataclasses

    from bubblenet.training.config import FitConfig

    names = {f.name for f in dataclasses.fields(FitConfig)}
    return FitConfig.from_options({k: v for k, v in vars(args).items() if k in names})


def run(args: argparse.Namespace) -> int:
    from bubblenet.outputs import atomic_path
    from bubblenet.plotting import montage
    from bubblenet.training.run import open_training_survey
    from bubblenet.training_data.inputs import training_data
    from bubblenet.training_data.stream import training_stream

    from bubblenet.outputs import claim_output_dir

    if args.action == "clusters" and not args.clusters:
        args.clusters = 10  # the paper's k: 'clusters' is for picking clusters to drop
    config = fit_config(args)
    claim_output_dir(args.out, "data", overwrite=args.overwrite)
    survey = open_training_survey(config, args.out)
    data, clusters = training_data(survey, config.data_config(args.size), args.cache or args.out / "cache",
                                   clusters=config.clusters, drop_clusters=config.drop_clusters,
                                   cluster_weights=config.cluster_weights, montages=args.out)
    split = survey.split
    if args.action == "clusters":
        print(f"wrote {len(clusters.montages)} cluster montages to {args.out}/ "
              f"(sizes {clusters.counts}); drop bubble-like ones with --drop-clusters")
        return 0
    images, boxes, classes = next(iter(training_stream(data, clusters, positives=config.positives,
                                                       negatives=config.negatives)))
    images, boxes, classes = images.numpy(), boxes.numpy(), classes.numpy()
    shown = [b[c > 0] for b, c in zip(boxes, classes)]
    captions = ["bubble" if i < config.positives else "negative" for i in range(len(images))]
    sheet = montage(images, boxes=shown, columns=8, captions=captions, scale=max(1, 256 // args.size))
    path = args.out / "batch_montage.png"
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    print(f"split: train {list(split.train)}, val {list(split.val)}, test {list(split.test)}")
    print(f"{len(data.positives)} positives, {len(data.negatives)} negatives in the pool; wrote {path}")
    return 0


def main(argv=None, prog=None) -> int:
    return run_verb(build_parser(prog), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
