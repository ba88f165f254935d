"""``bubblenet detect`` / ``python -m bubblenet.detect``: a bubble catalogue of a survey.

Pairs the 8 µm and 24 µm images by sky overlap, searches each 8 µm tile with
multi-scale sliding windows (`bubblenet.detection.windows`, `bubblenet.detection.inference`),
converts the detections to sky coordinates, merges them across scales and
overlapping tiles (`bubblenet.detection.merging`), and writes the catalogue
(`bubblenet.detection.results`) with a PNG preview per tile.

The window sizes and stride default to the detector's survey search
(``search`` in its ``model_info.json``: a `bubblenet fit` run records its
validation search there; the shipped detector's starts at 200″), never
under `bubblenet.detection.windows.MIN_WINDOW_PX` native pixels, else the reference
method's survey search (100–3000 px at GLIMPSE's 1.2″/px, i.e. 120″–3600″,
stride 1/3). Tiles are read through memory-mapped caches, one tile at a time, so
memory stays bounded whatever the survey's size.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

import numpy as np

from bubblenet.cli import make_parser, progress_enabled, run_verb
from bubblenet.errors import ConfigError, InputError

log = logging.getLogger("bubblenet.detect")

DESCRIPTION = """\
Detect infrared bubbles in survey images: give 8 µm and 24 µm FITS images
(--i8/--m24, any celestial WCS, paired by sky overlap) or a survey folder
(--survey, GLIMPSE/MIPSGAL file names). Writes bubbles.ecsv, bubbles.fits,
bubbles.csv and a DS9 region file bubbles.reg to --out, with a PNG preview of
each tile (24 µm red, 8 µm green, detections circled and coloured by score).
Without --model, uses the detector shipped with bubblenet (trained on
synthetic sky only).
"""

#: The reference method's survey search: windows of 100-3000 px at 1.2"/px, stride 1/3.
PAPER_SEARCH = {"sizes_arcsec": [120.0, 3600.0], "stride": 1 / 3, "per_octave": 2, "mode": "paper",
                "min_window_px": 0}


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = make_parser(prog, DESCRIPTION, section="detect")
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument("--i8", type=Path, nargs="+", default=[], help="8 µm FITS images")
    inputs.add_argument("--m24", type=Path, nargs="+", default=[], help="24 µm FITS images")
    inputs.add_argument("--survey", type=Path, help="folder of GLM_*_mosaic_I4.fits and MG*_024.fits images")
    inputs.add_argument("--model", type=Path, help="detector: a fit run folder or .keras file (default: shipped)")
    inputs.add_argument("--l", type=float, nargs=2, metavar=("MIN", "MAX"), help="Galactic longitude range, deg")
    inputs.add_argument("--b", type=float, nargs=2, metavar=("MIN", "MAX"), help="Galactic latitude range, deg")
    search = parser.add_argument_group("search")
    search.add_argument("--threshold", type=float, help="confidence threshold (default: the detector's)")
    search.add_argument("--sizes", type=float, nargs=2, metavar=("MIN", "MAX"),
                        help="window sides on the sky, arcsec (default: the detector's search, in its "
                             "model_info.json)")
    search.add_argument("--stride", type=float, help="window stride over side (the paper: 1/3)")
    search.add_argument("--per-octave", type=int, help="window sizes per factor of two")
    search.add_argument("--bands", choices=("24+8", "8"),
                        help="24 + 8 µm bubbles, or shells seen at 8 µm alone: needs a detector trained with "
                             "'fit --bands 8' (default: what the detector was trained on)")
    search.add_argument("--mode", choices=("fast", "paper"),
                        help="windows cut from an image pyramid (fast, the default) or each processed on its own "
                             "(paper)")
    search.add_argument("--paper", action="store_true",
                        help="the reference method's search: 120\"-3600\" windows, stride 1/3, each window "
                             "processed on its own")
    cluster = parser.add_argument_group("survey runs (resumable: run the same command again after an interruption)")
    cluster.add_argument("--scheduler", metavar="ADDRESS",
                         help="run the tiles on this Dask cluster (e.g. tcp://host:8786), one task per tile")
    cluster.add_argument("--workers", type=int, metavar="N",
                         help="run the tiles on a local Dask cluster of N worker processes")
    parser.add_argument("--no-previews", action="store_true", help="skip the PNG previews")
    parser.add_argument("--out", type=Path, default=Path("detections"), help="output folder")
    return parser


def _search(args, detector) -> dict:
    """Window sizes, stride and sizes per octave: flags, else the detector's, else the paper's."""
    from bubblenet.detection.windows import MIN_WINDOW_PX

    # The paper's windows exactly; otherwise the detector's, none under MIN_WINDOW_PX native pixels.
    search = dict(PAPER_SEARCH if args.paper else {**PAPER_SEARCH, "mode": "fast", "min_window_px": MIN_WINDOW_PX,
                                                   **detector.info.get("search", {})})
    for key, value in (("sizes_arcsec", args.sizes), ("stride", args.stride), ("per_octave", args.per_octave),
                       ("mode", args.mode)):
        if value is not None:
            search[key] = list(value) if key == "sizes_arcsec" else value
    low, high = search["sizes_arcsec"]
    if not 0 < low <= high or not 0 < search["stride"] <= 1 or search["per_octave"] < 1:
        raise ConfigError(f"bad search: sizes {low}-{high} arcsec, stride {search['stride']}, "
                          f"{search['per_octave']} per octave")
    return search


def _check_cluster(args, tiles) -> None:
    """--scheduler and --workers are exclusive; tile names must be unique (they key the partial results)."""
    if args.scheduler and args.workers:
        raise ConfigError("give --scheduler ADDRESS (an existing Dask cluster) or --workers N (a local one), not both")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    seen = {}
    for tile in tiles:
        if tile.name in seen:
            raise InputError(f"two 8 µm images share the name {tile.name!r} ({seen[tile.name]}); rename one",
                             tile.image8.path)
        seen[tile.name] = tile.image8.path


def _tile_in_region(tile, l_range, b_range) -> bool:
    """Whether any of a grid of points over the tile falls in the region."""
    from bubblenet.detection.results import in_region

    if l_range is None and b_range is None:
        return True
    ny, nx = tile.shape
    yy, xx = np.meshgrid(np.linspace(0, ny - 1, 25), np.linspace(0, nx - 1, 25), indexing="ij")
    gal = tile.pixel_to_world(xx.ravel(), yy.ravel()).galactic
    return bool(in_region(gal.l.deg, gal.b.deg, l_range, b_range).any())


def run(args: argparse.Namespace) -> int:
    from astropy.coordinates import SkyCoord

    from bubblenet.detection.results import detections_table, in_region, write_catalogue
    from bubblenet.ssd.detector import load_detector
    from bubblenet.detection.merging import merge_sky
    from bubblenet.outputs import ensure_dir, run_record, write_json
    from bubblenet.sky.mosaics import gather_survey_files, open_survey
    from bubblenet.detection.runs import Manifest, peak_rss_mb, run_key, run_tiles

    files8, files24 = gather_survey_files(args.survey, args.i8, args.m24)
    if not files8 or not files24:
        raise InputError("give --survey DIR, or 8 µm (--i8) and 24 µm (--m24) images")
    tiles = open_survey(files8, files24)
    tiles = [t for t in tiles if _tile_in_region(t, args.l, args.b)]
    if not tiles:
        raise ConfigError(f"no image overlaps the region l = {args.l}, b = {args.b}")
    detector = load_detector(args.model)
    if args.bands and args.bands != detector.bands:
        raise ConfigError(f"--bands {args.bands}: the detector {args.model or '(shipped)'} was trained on bands "
                          f"{detector.bands}; train one with 'bubblenet fit --bands {args.bands}' "
                          "(experiments/shells_8um.yaml for 8 µm-only shells) and pass it with --model")
    threshold = detector.threshold if args.threshold is None else args.threshold
    search = _search(args, detector)
    _check_cluster(args, tiles)
    out = ensure_dir(args.out)
    record = run_record("detect", vars(args))
    cache = out / ".cache"
    show = progress_enabled(args)

    key = run_key(args.model, threshold, search, tiles)
    manifest = Manifest(out / ".partial", key)
    survey_stats = {}
    results = run_tiles(tiles, manifest, detector=detector,
                        model=None if args.model is None else str(Path(args.model).resolve()),
                        cache_dir=str(cache.resolve()), search=search, threshold=threshold,
                        scheduler=args.scheduler, workers=args.workers, progress=show, stats=survey_stats)
    windows = sum(r.windows for r in results)

    lonlat, half, scores, boxes = (np.concatenate([getattr(r, k) for r in results])
                                   for k in ("centres", "half", "scores", "boxes"))
    coords = SkyCoord(lonlat[:, 0], lonlat[:, 1], unit="deg", frame="galactic")
    names = np.concatenate([np.full(len(r.scores), r.tile) for r in results]).astype(str)
    keep = merge_sky(coords, half, scores) if len(scores) else np.zeros(0, int)
    keep = keep[in_region(lonlat[keep, 0], lonlat[keep, 1], args.l, args.b)] if len(keep) else keep
    meta = {"model": str(args.model or "shipped: lite_synthetic"), "preset": detector.preset,
            "trained_on": detector.info.get("trained_on", "unknown"), "bands": detector.bands, "threshold": threshold,
            "search": search,
            "region": {"l": args.l, "b": args.b}, "inputs8": [str(p) for p in files8],
            "inputs24": [str(p) for p in files24], "tiles": [t.name for t in tiles], "windows": windows,
            "versions": record["versions"], "created_utc": record["created_utc"]}
    frame = tiles[0].image8.frame
    table = detections_table(coords[keep], half[keep], scores[keep], boxes[keep], names[keep], frame=frame,
                             meta=meta)
    written = write_catalogue(table, out)
    write_json(out / "detect_run.json", {**record, "threshold": threshold, "search": search,
                                         "detections": len(table), "windows": windows, **survey_stats,
                                         "peak_rss_mb": round(peak_rss_mb())})
    if not args.no_previews:
        _previews(tiles, table, out / "previews", threshold)
    manifest.remove()
    shutil.rmtree(cache, ignore_errors=True)
    for leftover in out.glob(".*.part*"):  # temporary files of an earlier run that was killed while writing
        leftover.unlink(missing_ok=True)
    print(f"{len(table)} bubbles in {len(tiles)} tile(s) ({windows} windows, threshold {threshold:.2f}): "
          + ", ".join(str(p) for p in written.values()))
    if not args.no_previews:
        print(f"previews in {out / 'previews'}/")
    return 0


def _previews(tiles, table, folder, threshold) -> None:
    from bubblenet.plotting import preview_detections

    for tile in tiles:
        mine = table[table["tile"] == tile.name] if len(table) else table
        preview_detections(tile, mine, folder / f"{tile.name}.png", threshold=threshold)


def main(argv=None, prog=None) -> int:
    return run_verb(build_parser(prog), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
