"""``bubblenet synth`` / ``python -m bubblenet.synth``: write a synthetic survey."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm import tqdm

from bubblenet.cli import add_output_options, make_parser, progress_enabled, run_verb
from bubblenet.errors import ConfigError
from bubblenet.synth.hardening import HARD, Hardening
from bubblenet.synth.layout import Region
from bubblenet.synth.survey import SynthConfig, make_survey

log = logging.getLogger("bubblenet.synth")

DESCRIPTION = """\
Write a synthetic Spitzer survey: GLIMPSE-like 8 µm tiles (GLM_*_mosaic_I4.fits)
and MIPSGAL-like 24 µm tiles (MG*_024.fits) on different grids, in MJy/sr, with
diffuse emission, filaments, dark clouds, stars, noise, missing data, bubbles
and bubble look-alikes; plus the catalogue of the bubbles drawn, in MWP DR2
format with a 'clear' column (bubbles_mwp_dr2.csv), the clear names
(clear_bubbles.txt), the look-alikes (confusers.ecsv), every shell drawn where it
was drawn (bubbles_truth.csv, with a 'catalogued' column), on a hardened sky
the HII regions drawn (hii_regions.ecsv), and a run record (synth_run.json).
In 'twin' mode the bubbles are the real MWP DR2 bubbles of the
region; in 'random' mode they are drawn at random.
"""


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = make_parser(prog, DESCRIPTION, section="synth")
    add_output_options(parser, Path("demo_sky"))
    parser.add_argument("--l", dest="l_range", nargs=2, type=float, metavar=("LMIN", "LMAX"), default=[10.0, 16.0],
                        help="Galactic longitude range, deg (may cross 0: -2 2)")
    parser.add_argument("--b", dest="b_range", nargs=2, type=float, metavar=("BMIN", "BMAX"), default=[-1.0, 1.0],
                        help="Galactic latitude range of the survey coverage, deg")
    parser.add_argument("--pixscale", type=float, default=2.4,
                        help="8 µm pixel side, arcsec (GLIMPSE 1.2); 24 µm pixels are 1.25/1.2 times larger")
    parser.add_argument("--mode", choices=("twin", "random"), default="twin",
                        help="twin: real MWP DR2 bubbles of the region; random: random bubbles")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--hard", action="store_true",
                        help="a sky as hard as the real one (bubblenet.synth.hardening.HARD): red compact sources at "
                             "the real field's density, the WISE catalogue's HII regions at their sizes and fluxes "
                             "(hii_regions.ecsv), saturated 24 µm cores in clear bubbles, uncatalogued bubbles "
                             "(listed only in bubbles_truth.csv) and a catalogue off the shells by DR2's own errors")
    parser.add_argument("--preview", action="store_true", help="also write a PNG preview of every 8 µm tile")
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        region = Region(args.l_range[0], args.l_range[1], args.b_range[0], args.b_range[1])
        config = SynthConfig(region, pixscale=args.pixscale, seed=args.seed, mode=args.mode,
                             hardening=HARD if args.hard else Hardening())
    except ValueError as err:
        raise ConfigError(str(err)) from None
    from bubblenet.outputs import claim_output_dir

    claim_output_dir(args.out, "synth", overwrite=args.overwrite)
    try:
        files = make_survey(args.out, config, progress=tqdm if progress_enabled(args) else None)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    log.info("wrote %d 8 µm and %d 24 µm tiles with %d bubbles (%d clear) in %.1f s",
             len(files.tiles8), len(files.tiles24), files.n_bubbles, files.n_clear, files.seconds)
    if args.preview:
        from bubblenet.plotting import preview_survey

        for png in preview_survey(files.folder, catalogue=files.catalogue, selection=files.selection,
                                  progress=tqdm if progress_enabled(args) else None):
            log.info("preview: %s", png)
    print(f"synthetic survey in {files.folder}/: {len(files.tiles8)} + {len(files.tiles24)} tiles, "
          f"catalogue {files.catalogue.name} ({files.n_bubbles} bubbles, {files.n_clear} clear)")
    return 0


def main(argv=None, prog=None) -> int:
    return run_verb(build_parser(prog), run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
