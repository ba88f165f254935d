"""``bubblenet register`` / ``python -m bubblenet.register``: check and fix an image's WCS.

Measures where compact catalogued sources (WISE HII regions by default) lie
in the images against where their WCS puts them, and writes copies whose WCS
is shifted by the offset found (`bubblenet.sky.astrometry`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bubblenet.cli import add_output_options, make_parser, run_verb
from bubblenet.errors import InputError
from bubblenet.sky.astrometry import COMPACT_RADIUS_ARCMIN, MIN_SOURCES, register_images

DESCRIPTION = """\
Measure an image's WCS offset on compact catalogued sources (WISE HII regions
of radius up to --max-radius arcmin, centroided in every band given) and write
copies whose WCS is shifted by it. Give the bands of one grid together (e.g.
the 8 and 24 µm planes of a Milky Way Project composite): the offset is
measured on both. The inputs are never changed; the copies, astrometry.json,
the per-source table and a picture of every source (astrometry.png) go to
--out.
"""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = make_parser(prog, DESCRIPTION, section="register")
    parser.add_argument("--i8", type=Path, help="8 µm FITS image")
    parser.add_argument("--m24", type=Path,
                        help="24 µm FITS image on the same pixel grid")
    parser.add_argument("--catalogue", default="wise_hii",
                        help="sources with known positions: a shipped catalogue (wise_hii) or a file with name, "
                             "position and radius columns")
    parser.add_argument("--max-radius", type=float, default=COMPACT_RADIUS_ARCMIN, metavar="ARCMIN",
                        help="largest source radius used, arcmin")
    parser.add_argument("--min-sources", type=int, default=MIN_SOURCES,
                        help="fewest sources that make a measurement (at least 2)")
    parser.add_argument("--measure-only", action="store_true", help="measure and record the offset; no copies")
    add_output_options(parser, None, help="output folder for the registered copies and the record")
    return parser


def run(args: argparse.Namespace) -> int:
    bands = [(p, label) for p, label in ((args.i8, "8 µm"), (args.m24, "24 µm")) if p is not None]
    paths = [p for p, _ in bands]
    if not paths:
        raise InputError("give --i8 and/or --m24")
    if args.out is None:
        raise InputError("give --out, the folder for the registered copies")
    if not args.max_radius > 0:
        raise InputError(f"--max-radius must be positive, got {args.max_radius}")
    if args.min_sources < 2:
        raise InputError(f"--min-sources must be at least 2 (one source gives no uncertainty), got "
                         f"{args.min_sources}")
    offset, written = register_images(paths, args.out, catalogue=args.catalogue, max_radius_arcmin=args.max_radius,
                                      min_sources=args.min_sources, write_copies=not args.measure_only,
                                      overwrite=args.overwrite, labels=[label for _, label in bands],
                                      options=vars(args))
    print(f"WCS offset (dx, dy) = ({offset.dx:+.2f} ± {offset.dx_err:.2f}, {offset.dy:+.2f} ± {offset.dy_err:.2f}) "
          f"px = {offset.offset_arcsec:.1f}″ ({offset.significance:.1f} σ) over {offset.n_sources} sources")
    for path in written:
        print(f"wrote {path}")
    return 0


def main(argv=None, prog=None) -> int:
    return run_verb(build_parser(prog), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
