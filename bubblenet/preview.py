"""``bubblenet preview`` / ``python -m bubblenet.preview``: a PNG of a sky tile.

24 µm in red, 8 µm in green, WCS axes, and catalogue bubbles as ellipses
(selected ones highlighted). Works on synthetic and real images alike; with
one band only, that band is drawn alone.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from bubblenet.cli import make_parser, run_verb
from bubblenet.errors import InputError

DESCRIPTION = """\
Draw a PNG of a sky tile: 24 µm in red, 8 µm in green, Galactic or equatorial
axes from the WCS, and catalogue bubbles as ellipses. Give --i8 and/or --m24
(FITS files with a celestial WCS); with both, the 24 µm data are resampled
onto the 8 µm grid. Large tiles are block-averaged to --max-pixels a side.
"""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = make_parser(prog, DESCRIPTION, section="preview")
    parser.add_argument("--i8", type=Path, help="8 µm FITS image (defines the grid)")
    parser.add_argument("--m24", type=Path, nargs="+", help="24 µm FITS image(s)")
    parser.add_argument("--catalogue", default="mwp_dr2",
                        help="bubble catalogue: a file (CSV/TSV/ECSV/FITS/VOTable) or a shipped one "
                             "(mwp_dr2, mwp_dr1, churchwell_dr2, wise_hii); 'none' for no ellipses")
    parser.add_argument("--select", default="clear",
                        help="bubbles to highlight: a shipped selection (clear, rank2or3, 8um) or a file of names; "
                             "'none' for no highlight")
    parser.add_argument("--max-pixels", type=int, default=1600, help="longest side of the picture, image pixels")
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    return parser


def _single_band(path: Path, channel: int, max_pixels: int):
    """A one-band image binned for display, as a two-band array with the other band NaN."""
    from bubblenet.sky.mosaics import open_image

    image = open_image(path)
    binned, wcs = image.read_binned(max(1, math.ceil(max(image.shape) / max_pixels)))
    data = np.full(binned.shape + (2,), np.nan, dtype=np.float32)
    data[..., channel] = binned
    return data, wcs, image.name


def run(args: argparse.Namespace) -> int:
    from bubblenet.catalogues.tables import CATALOGUES, packaged_catalogue, read_catalogue, read_selection, select
    from bubblenet.plotting import plot_sky, preview_tile, save_figure
    from bubblenet.sky.mosaics import open_survey

    if args.i8 is None and not args.m24:
        raise InputError("give --i8 and/or --m24")
    if args.out.suffix.lower() != ".png":
        raise InputError("--out must name a .png file", args.out)
    if args.out.exists() and not args.overwrite:
        raise InputError("the file exists; give another --out, or --overwrite to replace it", args.out)
    catalogue = None
    if args.catalogue.lower() != "none":
        catalogue = packaged_catalogue(args.catalogue) if args.catalogue in CATALOGUES else read_catalogue(args.catalogue)
    selection = None if args.select.lower() == "none" else read_selection(args.select)
    if args.i8 is not None and args.m24:
        (tile,) = open_survey([args.i8], args.m24)
        path = preview_tile(tile, args.out, catalogue=catalogue, selection=selection, max_pixels=args.max_pixels)
    else:
        channel = 1 if args.i8 is not None else 0
        data, wcs, name = _single_band(args.i8 or args.m24[0], channel, args.max_pixels)
        selected = select(catalogue, selection) if catalogue is not None and selection is not None else None
        path = save_figure(plot_sky(data, wcs, catalogue=catalogue, selected=selected, title=name), args.out)
    print(f"wrote {path}")
    return 0


def main(argv=None, prog=None) -> int:
    return run_verb(build_parser(prog), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
