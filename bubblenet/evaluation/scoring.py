"""Scoring a detection catalogue against a reference catalogue, on the sky, inside the region searched.

`score_catalogue` keeps the reference bubbles and the detections inside the
region that was searched (inside an input 8 µm image, when those files are
still readable, and inside the Galactic ``l``/``b`` region), and scores the
detections on the sky (`bubblenet.evaluation.metrics.score_on_sky`) under
the paper's rule and the strict one. Each bubble counts once, however many
tiles it lies on.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
from astropy import units as u

from bubblenet.conventions import BOX_SCALE, inside_sky
from bubblenet.errors import InputError

__all__ = ["Evaluation", "read_detections", "searched", "score_catalogue", "reference_catalogue", "field_scores",
           "image_area_deg2"]

#: Columns a detection table must have.
DETECTION_COLUMNS = ("glon", "glat", "radius_arcmin", "score")


def read_detections(path: str | os.PathLike):
    """The detection table `bubblenet detect` wrote (ECSV, FITS or CSV), its columns checked.

    Raises
    ------
    InputError
        If the file is missing, unreadable or lacks a column, naming it.
    """
    from astropy.table import Table

    path = Path(path)
    if not path.exists():
        raise InputError("no such file", path)
    try:
        table = Table.read(path, format="ascii.ecsv" if path.suffix == ".ecsv" else None)
    except Exception as exc:  # astropy raises many kinds for unreadable tables
        raise InputError(f"cannot read the detections: {exc}", path) from None
    missing = [c for c in DETECTION_COLUMNS if c not in table.colnames]
    if missing:
        raise InputError(f"not a bubblenet detection table: missing column(s) {', '.join(missing)}", path)
    return table


def reference_catalogue(catalogue: str | os.PathLike):
    """A shipped catalogue by name (``mwp_dr2``, ...) or a catalogue file."""
    from bubblenet.catalogues.tables import CATALOGUES, packaged_catalogue, read_catalogue

    return packaged_catalogue(str(catalogue)) if str(catalogue) in CATALOGUES else read_catalogue(catalogue)


def searched(table, glon, glat, l_range=None, b_range=None) -> np.ndarray:
    """Which positions lie in the region a detection run searched.

    Inside an input 8 µm image named in the table's metadata (when those files
    are readable; `bubblenet.conventions.inside_sky`) and inside the ``l``/``b``
    region (the given ranges, else the run's).
    """
    from astropy.coordinates import SkyCoord

    from bubblenet.detection.results import in_region
    from bubblenet.sky.mosaics import open_image

    region = table.meta.get("region", {})
    keep = in_region(glon, glat, l_range or region.get("l"), b_range or region.get("b"))
    images = [Path(p) for p in table.meta.get("inputs8", [])]
    if images and all(p.exists() for p in images):
        coords = SkyCoord(glon, glat, unit="deg", frame="galactic")
        inside_any = np.zeros(len(keep), bool)
        for path in images:
            image = open_image(path, check_data=False)
            inside_any |= inside_sky(coords, image.wcs, image.shape)
        keep &= inside_any
    return keep


@dataclasses.dataclass
class Evaluation:
    """Detections scored against a reference catalogue inside the region searched.

    Attributes
    ----------
    detections : astropy.table.Table
        The detections inside the region (above the threshold, if one was given).
    reference : astropy.table.Table
        The reference bubbles inside the region.
    selected : numpy.ndarray
        ``(len(reference),)`` bool: the positives among them.
    scores : dict
        ``{"paper": {...}, "strict": {...}}`` with ``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``,
        ``f2`` (`bubblenet.evaluation.metrics.score_on_sky`).
    hits : numpy.ndarray
        ``(len(detections), len(reference))`` bool: which detection covers which bubble under the paper's rule.
    distance : numpy.ndarray
        ``(len(detections), len(reference))``: centre distances, arcsec; inf beyond √2 × (the largest
        detection half-size + the largest bubble half-size), where no boxes can touch
        (`bubblenet.evaluation.metrics.sky_geometry`).
    """

    detections: object
    reference: object
    selected: np.ndarray
    scores: dict
    hits: np.ndarray
    distance: np.ndarray

    def coords(self):
        """Sky positions of the detections."""
        from astropy.coordinates import SkyCoord

        return SkyCoord(np.asarray(self.detections["glon"], float), np.asarray(self.detections["glat"], float),
                        unit="deg", frame="galactic")


def score_catalogue(table, reference, selection, *, l_range=None, b_range=None,
                    threshold: float | None = None) -> Evaluation:
    """Score a detection table against `reference` inside the region searched.

    Parameters
    ----------
    table : astropy.table.Table
        Detections (`read_detections`).
    reference : astropy.table.Table
        Reference catalogue (`reference_catalogue`).
    selection : collection of str
        Names of the positives (`bubblenet.catalogues.tables.read_selection`).
    l_range, b_range : (float, float), optional
        Galactic region, degrees (default: the detection run's).
    threshold : float, optional
        Keep only detections scoring at least this.
    """
    from astropy.coordinates import SkyCoord

    from bubblenet.catalogues.tables import select
    from bubblenet.evaluation.metrics import COVERAGE, score_geometry, sky_geometry

    if threshold is not None:
        table = table[np.asarray(table["score"], float) >= threshold]
    selected = select(reference, selection)
    glon, glat = np.asarray(reference["glon"], float), np.asarray(reference["glat"], float)
    inside = searched(table, glon, glat, l_range, b_range)
    det_glon, det_glat = np.asarray(table["glon"], float), np.asarray(table["glat"], float)
    detections = table[searched(table, det_glon, det_glat, l_range, b_range)]
    coords = SkyCoord(np.asarray(detections["glon"], float), np.asarray(detections["glat"], float), unit="deg",
                      frame="galactic")
    det_half = u.Quantity(np.asarray(detections["radius_arcmin"], float) * BOX_SCALE, u.arcmin).to_value(u.arcsec)
    bubbles = SkyCoord(glon[inside], glat[inside], unit="deg", frame="galactic")
    bubble_half = u.Quantity(np.asarray(reference["maj_axis"], float)[inside] * BOX_SCALE,
                             u.arcmin).to_value(u.arcsec)
    cover, distance = sky_geometry(coords, det_half, bubbles, bubble_half)  # once: the scores and the montages
    scores = score_geometry(cover, distance, det_half, np.asarray(detections["score"], float), bubble_half,
                            selected[inside])
    return Evaluation(detections, reference[inside], selected[inside], scores, cover >= COVERAGE, distance)


def image_area_deg2(path: str | os.PathLike) -> float:
    """The sky area of an image's finite pixels, deg²."""
    from bubblenet.sky.mosaics import open_image

    image = open_image(path)
    return float(np.isfinite(image.read()).sum()) * image.pixel_scale.to_value(u.deg) ** 2


def field_scores(table, reference, clear, area_deg2: float) -> dict:
    """One field's detections scored one-to-one (the strict rule) against every catalogue bubble in it.

    The measure of how a detector does on one field, real or synthetic, used
    to compare the two (``benchmarks/bench_transfer.py``,
    ``experiments/ablation.py``): every catalogue bubble counts, not only the
    selected ones, since a real bubble that is not clear is still no false
    positive; the selected (clear) ones are counted apart.

    Parameters
    ----------
    table : astropy.table.Table
        The field's detections (`read_detections`' layout), searched on an
        8 µm image its metadata names (`searched`).
    reference : astropy.table.Table
        The catalogue (`reference_catalogue`).
    clear : collection of str
        Names of the selected bubbles.
    area_deg2 : float
        The area searched (`image_area_deg2`), for the unmatched detections per deg².

    Returns
    -------
    dict
        ``detections``; ``dr2`` (catalogue bubbles inside), ``dr2_found``, ``dr2_recall``; ``clear``,
        ``clear_found``, ``clear_recall``; ``unmatched`` (detections matching no catalogue bubble),
        ``area_deg2`` and ``unmatched_per_deg2``.
    """
    every = score_catalogue(table, reference, set(np.asarray(reference["name"]).astype(str)))
    selected = score_catalogue(table, reference, clear)
    strict, strict_clear = every.scores["strict"], selected.scores["strict"]
    return {"detections": len(every.detections), "dr2": int(every.selected.sum()), "dr2_found": strict["tp"],
            "dr2_recall": strict["recall"], "clear": int(selected.selected.sum()), "clear_found": strict_clear["tp"],
            "clear_recall": strict_clear["recall"], "unmatched": strict["fp"], "area_deg2": float(area_deg2),
            "unmatched_per_deg2": strict["fp"] / float(area_deg2)}
