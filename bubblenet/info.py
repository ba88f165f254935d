"""``bubblenet info`` / ``python -m bubblenet.info``: what is in a set of survey images.

Opens 8 µm and 24 µm FITS images through the same path every other verb uses
(lazy reads, celestial WCS checks) and prints, per image, its grid, frame,
pixel scale, unit and sky extent, then how the bands pair up by sky overlap.
Bad files give one clear error and exit status 2.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bubblenet.cli import make_parser, run_verb
from bubblenet.errors import InputError

DESCRIPTION = """\
Describe survey images and how the two bands pair up on the sky. Give --folder
(a survey folder with GLIMPSE-style GLM_*_I4.fits and MIPSGAL-style
MG*_024.fits names) or --i8/--m24 file lists.
"""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = make_parser(prog, DESCRIPTION, section="info")
    parser.add_argument("--folder", type=Path, help="survey folder")
    parser.add_argument("--i8", type=Path, nargs="+", default=[], help="8 µm FITS images")
    parser.add_argument("--m24", type=Path, nargs="+", default=[], help="24 µm FITS images")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def describe(image) -> dict:
    """A JSON-able summary of a `bubblenet.sky.mosaics.SkyImage`."""
    from astropy import units as u

    centre, radius = image.centre_and_radius()
    lon, lat = centre.spherical.lon.deg, centre.spherical.lat.deg
    return {"file": str(image.path), "shape_yx": list(image.shape), "frame": image.frame,
            "ctype": list(image.wcs.wcs.ctype),
            "pixscale_arcsec": round(float(image.pixel_scale.to_value(u.arcsec)), 4),
            "unit": image.unit, "centre_deg": [round(lon, 4), round(lat, 4)],
            "radius_deg": round(float(radius.deg), 4)}


def run(args: argparse.Namespace) -> int:
    from bubblenet.sky.mosaics import gather_survey_files, open_image, pair_bands

    files8, files24 = gather_survey_files(args.folder, args.i8, args.m24)
    if not files8 and not files24:
        raise InputError("give --folder or --i8/--m24 files")
    images8 = [open_image(f) for f in files8]
    images24 = [open_image(f) for f in files24]
    report = {"images_8um": [describe(i) for i in images8], "images_24um": [describe(i) for i in images24]}
    if images8 and images24:
        report["tiles"] = [{"tile": t.name, "shape_yx": list(t.shape), "images_24um": [i.name for i in t.images24]}
                           for t in pair_bands(images8, images24)]
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for band in ("images_8um", "images_24um"):
        for d in report[band]:
            print(f"{band[7:]:>5} {Path(d['file']).name}: {d['shape_yx'][1]} x {d['shape_yx'][0]} px, "
                  f"{d['pixscale_arcsec']}″/px, {d['frame']} {d['ctype'][0]}/{d['ctype'][1]}, unit {d['unit']}, "
                  f"centre ({d['centre_deg'][0]}, {d['centre_deg'][1]}), radius {d['radius_deg']}°")
    for t in report.get("tiles", []):
        print(f"tile {t['tile']}: 24 µm from {', '.join(t['images_24um'])}")
    return 0


def main(argv=None, prog=None) -> int:
    return run_verb(build_parser(prog), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
