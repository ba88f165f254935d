"""``bubblenet data`` / ``python -m bubblenet.data``: see what the detector is fed.

``preview`` writes a montage of one training batch with its label boxes, the
split, and (with ``--clusters``) the negative cluster montages; ``clusters``
writes only the cluster montages and their sizes, so a person can pick which
clusters look like bubbles and drop them (``--drop-clusters``).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from bubblenet.cli import make_parser, run_verb
from bubblenet.errors import ConfigError

DESCRIPTION = """\
Build the training data of a survey and show it. 'preview' writes
batch_montage.png (one batch: positives with their label boxes, then
negatives), split.json and, with --clusters K, the negative cluster montages;
'clusters' writes the cluster montages and negatives_clusters.json only.
"""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = make_parser(prog, DESCRIPTION, section="data")
    parser.add_argument("action", choices=("preview", "clusters"), help="what to write")
    inputs = parser.add_argument_group("survey")
    inputs.add_argument("--survey", type=Path, help="survey folder (GLM_*_I4.fits, MG*_024.fits)")
    inputs.add_argument("--i8", type=Path, nargs="+", default=[], help="8 µm FITS files")
    inputs.add_argument("--m24", type=Path, nargs="+", default=[], help="24 µm FITS files")
    inputs.add_argument("--catalogue", help="catalogue file or shipped name (default: the survey's or mwp_dr2)")
    inputs.add_argument("--select", help="positives: shipped selection or file of names (default: the survey's "
                                         "clear_bubbles.txt or 'clear')")
    split = parser.add_argument_group("split")
    split.add_argument("--test-l", type=float, nargs="*", default=[12.0, 15.0, 18.0, 21.0],
                       help="centre longitudes of the test tiles")
    split.add_argument("--val", type=float, nargs="*", default=None,
                       help="centre longitudes of the validation tiles (default: 4 drawn by --split-seed)")
    split.add_argument("--n-val", type=int, default=4, help="validation tiles drawn when --val is not given")
    split.add_argument("--split-seed", type=int, default=0, help="seed of the tile shuffle")
    samples = parser.add_argument_group("samples")
    samples.add_argument("--size", type=int, default=128, help="network input side, px (paper: 300)")
    samples.add_argument("--positives", type=int, default=8, help="positives per step")
    samples.add_argument("--negatives", type=int, default=8, help="negatives per step")
    samples.add_argument("--negatives-per-tile", type=int, default=300, help="negative pool per tile (paper: 3000)")
    samples.add_argument("--mask", choices=("core", "box"), default="core",
                         help="what of each catalogue bubble is kept out of negatives")
    samples.add_argument("--mask-selected-only", action="store_true",
                         help="mask only the selected bubbles in negatives (the paper), not every catalogue bubble")
    samples.add_argument("--paper-exact", action="store_true", help="quantise inputs to 8 bits like the paper's PNGs")
    samples.add_argument("--clusters", type=int, default=0, help="cluster the negatives into K groups (paper: 10)")
    samples.add_argument("--drop-clusters", type=int, nargs="*", default=[], help="clusters never sampled")
    samples.add_argument("--cluster-weights", type=float, nargs="*", default=None, help="weight per cluster")
    samples.add_argument("--max-crop-scale", type=float, default=5.88,
                         help="augmentation: largest translated crop half-side over the bubble's MajAxis (paper: 5.88)")
    samples.add_argument("--clip-sigma", type=float, default=3.0,
                         help="normalisation: each band saturates at mean + this many sigma (paper: 3)")
    samples.add_argument("--bands", choices=("24+8", "8"), default="24+8",
                         help="what the detector sees: 24 + 8 µm, or 8 µm alone (its 24 µm input kept at zero)")
    samples.add_argument("--seed", type=int, default=0, help="seed of every sample")
    parser.add_argument("--cache", type=Path, default=None, help="tile cache folder (default: OUT/cache)")
    parser.add_argument("--out", type=Path, default=Path("data_preview"), help="output folder")
    return parser


@dataclasses.dataclass
class Survey:
    """A survey read for training: its tiles, catalogue, positives and split."""

    tiles: list
    catalogue: object
    selection: object
    split: object

    @property
    def by_name(self) -> dict:
        return {t.name: t for t in self.tiles}


def load_survey(args: argparse.Namespace, out: Path) -> Survey:
    """Read the survey and catalogue the options name, split the tiles, write ``split.json`` in `out`."""
    from bubblenet.training_data.samples import survey_inputs
    from bubblenet.outputs import ensure_dir
    from bubblenet.training_data.splits import split_tiles

    tiles, catalogue, selection = survey_inputs(folder=args.survey, files8=args.i8, files24=args.m24,
                                                catalogue=args.catalogue, selection=args.select)
    split = split_tiles(tiles, test_longitudes=args.test_l, val=args.val if args.val else args.n_val,
                        seed=args.split_seed)
    split.to_json(ensure_dir(out) / "split.json")
    return Survey(tiles, catalogue, selection, split)


def data_config(args: argparse.Namespace, size: int):
    """The `DataConfig` the sample options describe, for a network input of `size` px."""
    from bubblenet.training_data.samples import DataConfig

    return DataConfig(size=size, mask=args.mask, mask_all_bubbles=not args.mask_selected_only,
                      negatives_per_tile=args.negatives_per_tile, quantize=args.paper_exact,
                      crop_scales=(DataConfig.crop_scales[0], args.max_crop_scale), clip_sigma=args.clip_sigma,
                      bands=args.bands, seed=args.seed)


def training_data(args: argparse.Namespace, survey: Survey, size: int, cache: Path, out: Path):
    """The training split's `TrainingData` and, with ``--clusters``, its negative clusters (montages in `out`)."""
    from bubblenet.training_data.samples import TrainingData
    from bubblenet.training_data.negatives import cluster_negatives

    data = TrainingData(survey.tiles, survey.catalogue, survey.selection, survey.split, "train",
                        data_config(args, size), cache)
    clusters = None
    if args.clusters:
        pool = np.stack([data.negative(i).image for i in range(len(data.negatives))])
        try:
            clusters = cluster_negatives(pool, k=args.clusters, seed=args.seed, drop=args.drop_clusters,
                                         weights=args.cluster_weights, out_dir=out)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    return data, clusters


def prepare(args: argparse.Namespace):
    """Tiles, split, `TrainingData` and clusters from parsed options."""
    survey = load_survey(args, args.out)
    data, clusters = training_data(args, survey, args.size, args.cache or args.out / "cache", args.out)
    return survey.split, data, clusters


def run(args: argparse.Namespace) -> int:
    from bubblenet.plotting import montage
    from bubblenet.outputs import atomic_path

    if args.action == "clusters" and not args.clusters:
        args.clusters = 10
    split, data, clusters = prepare(args)
    if args.action == "clusters":
        print(f"wrote {len(clusters.montages)} cluster montages to {args.out}/ "
              f"(sizes {clusters.counts}); drop bubble-like ones with --drop-clusters")
        return 0
    from bubblenet.training_data.stream import training_stream

    images, boxes, classes = next(iter(training_stream(data, clusters, positives=args.positives,
                                                       negatives=args.negatives)))
    images, boxes, classes = images.numpy(), boxes.numpy(), classes.numpy()
    shown = [b[c > 0] for b, c in zip(boxes, classes)]
    captions = ["bubble" if i < args.positives else "negative" for i in range(len(images))]
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
