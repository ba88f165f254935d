"""``bubblenet evaluate`` / ``python -m bubblenet.evaluate``: score a detection catalogue and cross-match it.

Reads the catalogue `bubblenet detect` wrote, keeps the reference bubbles
inside the region that was searched (inside an input 8 µm image, when those
files are still readable, and inside the ``--l``/``--b`` region), and scores
the detections on the sky (`bubblenet.evaluation.metrics.score_on_sky`) under the
paper's rule and the strict one. Then cross-matches every detection with MWP
DR2, MWP DR1, the Churchwell bubbles and the WISE HII regions: a detection
matches an object when either centre lies inside the other's radius.
Detections matching none are *new*.

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

from bubblenet.cli import make_parser, run_verb
from bubblenet.errors import InputError

DESCRIPTION = """\
Score detections (bubbles.ecsv from `bubblenet detect`) against a reference
catalogue (default: MWP DR2, the clear bubbles as positives) inside the region
searched, under the paper's rule (a detection covers >= 1/3 of a bubble's box;
duplicates free) and a strict one (one-to-one by centre and size; duplicates
are false positives); cross-match them with MWP DR2, MWP DR1, Churchwell and
WISE HII and count the new ones.
"""

#: Catalogues cross-matched, by column suffix.
CROSSMATCH = ("mwp_dr2", "mwp_dr1", "churchwell_dr2", "wise_hii")


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
    parser.add_argument("--out", type=Path, help="folder for evaluation.json and crossmatch.ecsv "
                                                   "(default: beside the detections)")
    return parser


def read_detections(path: Path):
    """The detection table, with its columns checked."""
    from astropy.table import Table

    if not path.exists():
        raise InputError("no such file", path)
    try:
        table = Table.read(path, format="ascii.ecsv" if path.suffix == ".ecsv" else None)
    except Exception as exc:  # astropy raises many kinds for unreadable tables
        raise InputError(f"cannot read the detections: {exc}", path) from None
    missing = [c for c in ("glon", "glat", "radius_arcmin", "score") if c not in table.colnames]
    if missing:
        raise InputError(f"not a bubblenet detection table: missing column(s) {', '.join(missing)}", path)
    return table


def searched(table, glon, glat, l_range, b_range) -> np.ndarray:
    """Which positions lie in the searched region: inside an input image (when readable) and the l/b region."""
    from astropy.coordinates import SkyCoord

    from bubblenet.detection.results import in_region
    from bubblenet.sky.mosaics import open_image

    keep = in_region(glon, glat, l_range or table.meta.get("region", {}).get("l"),
                   b_range or table.meta.get("region", {}).get("b"))
    images = [Path(p) for p in table.meta.get("inputs8", [])]
    if images and all(p.exists() for p in images):
        coords = SkyCoord(glon, glat, unit="deg", frame="galactic")
        inside_any = np.zeros(len(keep), bool)
        for path in images:
            image = open_image(path, check_data=False)
            x, y = image.wcs.world_to_pixel(coords)
            ny, nx = image.shape
            inside_any |= (x >= 0) & (x <= nx - 1) & (y >= 0) & (y <= ny - 1)
        keep &= inside_any
    return keep


def crossmatch(coords, radius_arcmin, name: str) -> np.ndarray:
    """Whether each detection matches an object of a shipped catalogue (either centre inside the other's radius)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    from bubblenet.catalogues.tables import packaged_catalogue

    table = packaged_catalogue(name)
    radius = np.nan_to_num(np.asarray(table["maj_axis"], float), nan=0.0)
    objects = SkyCoord(np.asarray(table["glon"], float), np.asarray(table["glat"], float), unit="deg",
                       frame="galactic")
    found = np.zeros(len(coords), bool)
    if len(coords) == 0 or len(objects) == 0:
        return found
    reach = (np.max(radius_arcmin) + radius.max()) * u.arcmin
    i_obj, i_det, sep, _ = coords.search_around_sky(objects, reach)
    close = sep.to_value(u.arcmin) <= np.maximum(np.asarray(radius_arcmin)[i_det], radius[i_obj])
    found[i_det[close]] = True
    return found


def write_montages(table, tp, fp, fn, folder: Path, *, per_montage: int = 48) -> list[Path]:
    """Cut-outs (2.5 radii a side, 24 µm red, 8 µm green) of true positives, false positives and misses.

    `tp`, `fp`: ``(glon, glat, radius_arcmin, caption)`` rows of detections;
    `fn`: the same for missed bubbles. Uses the input images named in the
    detection table's metadata; returns the PNGs written (none when the
    images are gone).
    """
    from astropy.coordinates import SkyCoord

    from bubblenet.training_data.cutouts import process
    from bubblenet.outputs import atomic_path, ensure_dir
    from bubblenet.plotting import montage
    from bubblenet.sky.mosaics import Window, open_survey

    files8, files24 = table.meta.get("inputs8", []), table.meta.get("inputs24", [])
    if not files8 or not all(Path(p).exists() for p in [*files8, *files24]):
        return []
    tiles = open_survey(files8, files24)
    written = []
    for name, rows in (("tp", tp), ("fp", fp), ("fn", fn)):
        images, captions = [], []
        for glon, glat, radius, caption in rows[:per_montage]:
            centre = SkyCoord(glon, glat, unit="deg", frame="galactic")
            for tile in tiles:
                x, y = (float(v) for v in tile.world_to_pixel(centre))
                if not np.isfinite([x, y]).all():
                    continue
                half = int(np.ceil(2.5 * radius * 60 / float(tile.pixel_scale.value)))
                window = Window.centred(x, y, half)
                ny, nx = tile.shape
                if window.x0 < 0 or window.y0 < 0 or window.x0 + window.nx > nx or window.y0 + window.ny > ny:
                    continue
                data = tile.read(window)
                if np.isfinite(data).all():
                    images.append(process(data, 96, pixscale_arcsec=float(tile.pixel_scale.value)))
                    captions.append(caption)
                    break
        if images:
            path = ensure_dir(folder) / f"{name}.png"
            with atomic_path(path) as tmp:
                montage(np.stack(images), captions=captions).save(tmp, format="PNG")
            written.append(path)
    return written


def run(args: argparse.Namespace) -> int:
    from astropy.coordinates import SkyCoord

    from bubblenet.catalogues.tables import BOX_SCALE, CATALOGUES, packaged_catalogue, read_catalogue, read_selection, select
    from bubblenet.evaluation.metrics import COVERAGE, score_on_sky, sky_geometry
    from bubblenet.outputs import atomic_path, ensure_dir, run_record, write_json

    table = read_detections(args.detections)
    if args.threshold is not None:
        table = table[np.asarray(table["score"], float) >= args.threshold]
    reference = packaged_catalogue(args.catalogue) if args.catalogue in CATALOGUES else read_catalogue(args.catalogue)
    selected = select(reference, read_selection(args.select))
    glon, glat = np.asarray(reference["glon"], float), np.asarray(reference["glat"], float)
    inside = searched(table, glon, glat, args.l, args.b)
    det_glon, det_glat = np.asarray(table["glon"], float), np.asarray(table["glat"], float)
    det_inside = searched(table, det_glon, det_glat, args.l, args.b)
    detections = table[det_inside]
    coords = SkyCoord(det_glon[det_inside], det_glat[det_inside], unit="deg", frame="galactic")
    radius = np.asarray(detections["radius_arcmin"], float)
    bubbles = SkyCoord(glon[inside], glat[inside], unit="deg", frame="galactic")
    bubble_half = np.asarray(reference["maj_axis"], float)[inside] * BOX_SCALE * 60
    scores = score_on_sky(coords, radius * BOX_SCALE * 60, np.asarray(detections["score"], float), bubbles,
                          bubble_half, selected[inside])

    for name in CROSSMATCH:
        detections[f"in_{name}"] = crossmatch(coords, radius, name)
    detections["new"] = ~np.any([detections[f"in_{name}"] for name in CROSSMATCH], axis=0)
    out = ensure_dir(args.out or args.detections.parent)
    with atomic_path(out / "crossmatch.ecsv") as tmp:
        detections.write(tmp, format="ascii.ecsv", overwrite=True)
    result = {"detections": len(detections), "reference": args.catalogue, "selection": args.select,
              "bubbles_in_region": int(inside.sum()), "selected_in_region": int(selected[inside].sum()),
              "paper_rule": scores["paper"], "strict_rule": scores["strict"],
              "crossmatch": {name: int(np.sum(detections[f"in_{name}"])) for name in CROSSMATCH},
              "new": int(np.sum(detections["new"])), "run": run_record("evaluate", vars(args))}
    if args.montage_size > 0:
        hits = sky_geometry(coords, radius * BOX_SCALE * 60, bubbles, bubble_half)[0] >= COVERAGE
        hits = hits[:, selected[inside]]
        rows = [(float(d["glon"]), float(d["glat"]), float(d["radius_arcmin"]), f"{d['score']:.2f}")
                for d in detections]
        missed = reference[inside][selected[inside]][~hits.any(axis=0)]
        found = hits.any(axis=1)
        result["montages"] = [str(p) for p in write_montages(
            table, [r for r, f in zip(rows, found) if f], [r for r, f in zip(rows, found) if not f],
            [(float(b["glon"]), float(b["glat"]), float(b["maj_axis"]), str(b["name"])) for b in missed],
            out / "montages", per_montage=args.montage_size)]
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
