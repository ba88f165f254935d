"""The sky catalogue of detected bubbles: an astropy Table and the files astronomers use.

One row per bubble: ``name`` (``BN G012.345+00.123`` for Galactic surveys,
``BN J012345.67+123456.7`` for equatorial ones, after the frame of the
images), ``glon``, ``glat``, ``ra``, ``dec`` (deg, ICRS), ``radius_arcmin``
(the bubble's outer radius, in the sense of MWP's MajAxis: the box half-size
over the label scale the model was trained with, `bubblenet.conventions.BOX_SCALE`), ``score``, the
pixel box in its tile (``x_min`` ... ``y_max``) and the ``tile``. The
table's ``meta`` records the model, threshold, search, inputs and versions.

`write_catalogue` writes it as ECSV, FITS and CSV, and as a DS9 region file
(through the `regions` package), each atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table

from bubblenet.conventions import BOX_SCALE
from bubblenet.outputs import atomic_path

__all__ = ["detections_table", "bubble_names", "write_catalogue", "in_region", "CATALOGUE_FILES"]

#: What `write_catalogue` writes, by format.
CATALOGUE_FILES = {"ecsv": "bubbles.ecsv", "fits": "bubbles.fits", "csv": "bubbles.csv", "ds9": "bubbles.reg"}


def in_region(glon, glat, l_range=None, b_range=None) -> np.ndarray:
    """Which positions fall in a Galactic region; longitudes compare modulo 360, so ``(350, 370)`` works.

    Parameters
    ----------
    glon, glat : array_like
        Degrees.
    l_range, b_range : pair of float, optional
        ``(min, max)``, degrees; None for no limit.
    """
    glon, glat = np.atleast_1d(np.asarray(glon, float)), np.atleast_1d(np.asarray(glat, float))
    keep = np.ones(glon.shape, bool)
    if l_range is not None and l_range[1] - l_range[0] < 360:
        keep &= (glon - l_range[0]) % 360 <= (l_range[1] - l_range[0]) % 360
    if b_range is not None:
        keep &= (glat >= b_range[0]) & (glat <= b_range[1])
    return keep


def check_region(l_range=None, b_range=None, *, options: tuple[str, str] = ("--l", "--b")) -> None:
    """Refuse a Galactic region that cannot be meant: reversed, wider than 360°, or off the sphere.

    A longitude range crossing l = 0 is given as ``(350, 370)`` or ``(-10, 10)``.

    Raises
    ------
    ConfigError
        Naming the option (`options`: the longitude's and the latitude's).
    """
    from bubblenet.errors import ConfigError

    if l_range is not None:
        low, high = (float(v) for v in l_range)
        if not np.isfinite([low, high]).all() or high < low:
            raise ConfigError(f"{options[0]} {low:g} {high:g}: give MIN MAX with MIN <= MAX "
                              "(a range across l = 0 is -10 10 or 350 370)")
        if high - low > 360:
            raise ConfigError(f"{options[0]} {low:g} {high:g}: wider than 360 degrees")
    if b_range is not None:
        low, high = (float(v) for v in b_range)
        if not np.isfinite([low, high]).all() or high < low or low < -90 or high > 90:
            raise ConfigError(f"{options[1]} {low:g} {high:g}: give MIN MAX with -90 <= MIN <= MAX <= 90")


def bubble_names(coords: SkyCoord, frame: str = "galactic") -> np.ndarray:
    """IAU-style names from positions: ``BN Glll.lll+bb.bbb`` or ``BN Jhhmmss.ss+ddmmss.s``."""
    if frame == "galactic":
        gal = coords.galactic
        return np.array([f"BN G{lon:07.3f}{lat:+07.3f}" for lon, lat in zip(gal.l.deg, gal.b.deg)], dtype=str)
    icrs = coords.icrs
    ra = icrs.ra.to_string(unit=u.hourangle, sep="", precision=2, pad=True)
    dec = icrs.dec.to_string(sep="", precision=1, alwayssign=True, pad=True)
    return np.array([f"BN J{r}{d}" for r, d in zip(np.atleast_1d(ra), np.atleast_1d(dec))], dtype=str)


def detections_table(coords: SkyCoord, half_arcsec, scores, boxes_px, tiles, *, box_scale: float = BOX_SCALE,
                     frame: str = "galactic", meta: dict | None = None) -> Table:
    """The catalogue table of detections, brightest score first.

    Parameters
    ----------
    coords : astropy.coordinates.SkyCoord
        ``(N,)`` centres.
    half_arcsec : array_like
        ``(N,)`` box half-sizes on the sky, arcsec.
    scores : array_like
        ``(N,)`` confidences.
    boxes_px : array_like
        ``(N, 4)`` ``xyxy`` boxes in the pixels of their tile.
    tiles : sequence of str
        ``(N,)`` tile names.
    box_scale : float
        Label box half-size over bubble radius the model was trained with.
    frame : {"galactic", "icrs", ...}
        Frame of the input images: chooses the naming scheme.
    meta : dict, optional
        Stored as the table's metadata.
    """
    scores = np.asarray(scores, float).ravel()
    order = np.argsort(-scores, kind="stable")
    coords = coords[order] if len(order) else coords
    boxes = np.asarray(boxes_px, float).reshape(-1, 4)[order]
    gal, icrs = coords.galactic, coords.icrs
    table = Table(meta=dict(meta or {}))
    table["name"] = bubble_names(coords, frame) if len(order) else np.zeros(0, dtype="U24")
    table["glon"] = gal.l.deg * u.deg
    table["glat"] = gal.b.deg * u.deg
    table["ra"] = icrs.ra.deg * u.deg
    table["dec"] = icrs.dec.deg * u.deg
    # "/ 60" on purpose: astropy's arcsec -> arcmin multiplies by 1/60, which differs in the last bit.
    table["radius_arcmin"] = np.asarray(half_arcsec, float).ravel()[order] / box_scale / 60 * u.arcmin
    table["score"] = scores[order]
    for k, column in enumerate(("x_min", "y_min", "x_max", "y_max")):
        table[column] = boxes[:, k] * u.pix
    table["tile"] = np.asarray(tiles, dtype=str)[order] if len(order) else np.zeros(0, dtype="U32")
    for column, text in (("glon", "Galactic longitude"), ("glat", "Galactic latitude"), ("ra", "ICRS right ascension"),
                         ("dec", "ICRS declination"), ("radius_arcmin", "bubble outer radius (MWP MajAxis sense)"),
                         ("score", "detector confidence"), ("tile", "8 um image the detection was made in")):
        table[column].description = text
    return table


def _regions(table: Table):
    from regions import CircleSkyRegion, Regions

    shapes = []
    for row in table:
        centre = SkyCoord(row["glon"] * u.deg, row["glat"] * u.deg, frame="galactic")
        region = CircleSkyRegion(centre, row["radius_arcmin"] * u.arcmin)
        region.meta["text"] = f"{row['name']} {row['score']:.2f}"
        shapes.append(region)
    return Regions(shapes)


def write_catalogue(table: Table, folder: str | os.PathLike) -> dict[str, Path]:
    """Write `table` as ``bubbles.ecsv``, ``bubbles.fits``, ``bubbles.csv`` and ``bubbles.reg`` (DS9).

    Returns
    -------
    dict
        Format -> path written.
    """
    folder = Path(folder)
    written = {}
    for fmt, name in CATALOGUE_FILES.items():
        path = folder / name
        with atomic_path(path) as tmp:
            if fmt == "ds9":
                _regions(table).write(str(tmp), format="ds9", overwrite=True)
            elif fmt == "fits":
                fits_table = table.copy(copy_data=False)
                # FITS headers hold flat keywords only: the nested metadata goes into a JSON string.
                fits_table.meta = {"BNMETA": json.dumps(table.meta, default=str)} if table.meta else {}
                fits_table.write(tmp, format="fits", overwrite=True)
            else:
                table.write(tmp, format="ascii.ecsv" if fmt == "ecsv" else "ascii.csv", overwrite=True)
        written[fmt] = path
    return written
