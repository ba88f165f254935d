"""``bubblenet detect`` / ``python -m bubblenet.detect``: a bubble catalogue of a survey.

Pairs the 8 µm and 24 µm images by sky overlap, searches each 8 µm tile with
multi-scale sliding windows (`bubblenet.detection.windows`, `bubblenet.detection.inference`),
converts the detections to sky coordinates, merges them across scales and
overlapping tiles (`bubblenet.detection.merging`), and writes the catalogue
(`bubblenet.detection.results`) with a PNG preview per tile.

The search (`bubblenet.detection.search.SearchConfig`) defaults to the
detector's (``search`` in its ``model_info.json``: a `bubblenet fit` run
records there the search its threshold was chosen on; the shipped
detector's starts at 200″); ``--paper`` gives the reference method's survey
search (the original code's windows of 100, 150, 300, 600, 900, 1200, 1800,
2400 and 3000 px at GLIMPSE's 1.2″/px, stride 1/3, rows from a fifth of the
side, each window on its own; the detector's missing-data rule) and its catalogue's cut at
score 0.95 (unless ``--threshold`` is given), and the search flags replace
single values of either. ``--missing-data`` overrides the detector's rule. Tiles are read through memory-mapped caches, one tile at a time, so
memory stays bounded whatever the survey's size.
"""

from __future__ import annotations

import argparse
import logging
import shutil
from pathlib import Path

from bubblenet.cli import add_output_options, make_parser, progress_enabled, run_verb
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

def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    from bubblenet.detection.search import PRECISIONS, SEARCH_MODES
    from bubblenet.sky.tilecache import MISSING_RULES, ZERO_RULES
    from bubblenet.training_data.cutouts import BANDS

    parser = make_parser(prog, DESCRIPTION, section="detect")
    inputs = parser.add_argument_group("inputs")
    inputs.add_argument("--i8", type=Path, nargs="+", default=[], help="8 µm FITS images")
    inputs.add_argument("--m24", type=Path, nargs="+", default=[], help="24 µm FITS images")
    inputs.add_argument("--survey", type=Path, help="folder of GLM_*_mosaic_I4.fits and MG*_024.fits images")
    inputs.add_argument("--model", type=Path, help="detector: a fit run folder or .keras file (default: shipped)")
    inputs.add_argument("--l", type=float, nargs=2, metavar=("MIN", "MAX"), help="Galactic longitude range, deg")
    inputs.add_argument("--b", type=float, nargs=2, metavar=("MIN", "MAX"), help="Galactic latitude range, deg")
    search = parser.add_argument_group("search")
    search.add_argument("--threshold", type=float,
                        help="confidence threshold (default: the detector's; with --paper the paper's 0.95)")
    search.add_argument("--sizes", type=float, nargs=2, metavar=("MIN", "MAX"),
                        help="window sides on the sky, arcsec (default: the detector's search, in its "
                             "model_info.json)")
    search.add_argument("--stride", type=float, help="window stride over side (the paper: 1/3)")
    search.add_argument("--per-octave", type=int, help="window sizes per factor of two")
    search.add_argument("--bands", choices=BANDS,
                        help="24 + 8 µm bubbles, or shells seen at 8 µm alone: needs a detector trained with "
                             "'fit --bands 8' (default: what the detector was trained on)")
    search.add_argument("--mode", choices=SEARCH_MODES,
                        help="windows cut from an image pyramid (fast, the default), each processed on its own "
                             "(paper), or the backbone run once over each pyramid level and shared by the windows "
                             "(shared: experimental, finds fewer bubbles with detectors trained per window)")
    search.add_argument("--precision", choices=PRECISIONS,
                        help="what the network computes in: float32 (default) or bfloat16, faster on CPUs with "
                             "AVX512-BF16 or AMX (the same detections on the benchmark tile)")
    search.add_argument("--paper", action="store_true",
                        help="the reference method's survey search (its window list, 120\"-3600\", stride 1/3, "
                             "each window processed on its own) and catalogue cut (score >= 0.95)")
    search.add_argument("--missing-data", choices=MISSING_RULES,
                        help="NaN islands filled with the tile's maximum (fill-max) or small holes interpolated "
                             "(interpolate); default: the detector's rule")
    search.add_argument("--zeros", choices=ZERO_RULES,
                        help="zero pixels are data, or an external galaxy's coverage edge (edge: replaced by the "
                             "1st percentile, windows at least 70%% zero skipped); default: the detector's rule")
    cluster = parser.add_argument_group("survey runs (resumable: run the same command again after an interruption)")
    cluster.add_argument("--scheduler", metavar="ADDRESS",
                         help="run the tiles on this Dask cluster (e.g. tcp://host:8786), one task per tile")
    cluster.add_argument("--workers", type=int, metavar="N",
                         help="run the tiles on a local Dask cluster of N worker processes")
    parser.add_argument("--no-previews", action="store_true", help="skip the PNG previews")
    add_output_options(parser, Path("detections"),
                       overwrite="write into an output folder that holds other things (an earlier detect run's "
                                 "folder is reused without it: its catalogue is replaced, an interrupted run resumes)")
    return parser


def run(args: argparse.Namespace) -> int:
    from bubblenet.detection.detector import check_threshold, load_detector
    from bubblenet.detection.results import CATALOGUE_FILES, check_region, write_catalogue
    from bubblenet.detection.runs import peak_rss_mb
    from bubblenet.detection.search import resolve_search, resolve_threshold
    from bubblenet.detection.survey import CACHE_DIR, PARTIAL_DIR, check_tile_names, detect_survey, tiles_in_region
    from bubblenet.outputs import claim_output_dir, run_record, write_json
    from bubblenet.sky.mosaics import gather_survey_files, open_survey

    if args.scheduler and args.workers:
        raise ConfigError("give --scheduler ADDRESS (an existing Dask cluster) or --workers N (a local one), not both")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    check_threshold(args.threshold)
    check_region(args.l, args.b)
    files8, files24 = gather_survey_files(args.survey, args.i8, args.m24)
    if not files8 or not files24:
        raise InputError("give --survey DIR, or 8 µm (--i8) and 24 µm (--m24) images")
    both = sorted({Path(p).resolve() for p in files8} & {Path(p).resolve() for p in files24})
    if both:
        raise ConfigError("the same file is given as both bands (--i8 and --m24)", both[0])
    tiles = tiles_in_region(open_survey(files8, files24), args.l, args.b)
    if not tiles:
        raise ConfigError(f"no image overlaps the region l = {args.l}, b = {args.b}")
    detector = load_detector(args.model)
    if args.bands and args.bands != detector.bands:
        raise ConfigError(f"--bands {args.bands}: the detector {args.model or '(shipped)'} was trained on bands "
                          f"{detector.bands}; train one with 'bubblenet fit --bands {args.bands}' "
                          "(experiments/shells_8um.yaml for shells seen at 8 µm alone) and pass it with --model")
    threshold = resolve_threshold(detector.threshold, paper=args.paper, threshold=args.threshold)
    search = resolve_search(detector.search, paper=args.paper, sizes_arcsec=args.sizes, stride=args.stride,
                            per_octave=args.per_octave, mode=args.mode, missing=args.missing_data, zeros=args.zeros,
                            precision=args.precision)
    check_tile_names(tiles)
    out = claim_output_dir(args.out, "detect", overwrite=args.overwrite)
    record = run_record("detect", vars(args))
    found = detect_survey(tiles, detector, search=search, threshold=threshold, l_range=args.l, b_range=args.b,
                          work_dir=out, model_path=args.model, scheduler=args.scheduler, workers=args.workers,
                          progress=progress_enabled(args),
                          meta={"model": str(args.model or "shipped: lite_synthetic"),
                                "versions": record["versions"], "created_utc": record["created_utc"]})
    table, windows = found.table, found.windows
    written = write_catalogue(table, out)
    write_json(out / "detect_run.json", {**record, "threshold": threshold, "search": search.to_dict(),
                                         "detections": len(table), "windows": windows, **found.stats,
                                         "peak_rss_mb": round(peak_rss_mb())})
    if not args.no_previews:
        _previews(tiles, table, out / "previews", threshold)
    for work in (PARTIAL_DIR, CACHE_DIR):  # the catalogue is written: the resumable state is done with
        shutil.rmtree(out / work, ignore_errors=True)
    for name in (*CATALOGUE_FILES.values(), "detect_run.json"):  # temporaries of a run killed while writing
        for leftover in out.glob(f".{name}.*.part*"):
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
