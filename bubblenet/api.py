"""The Python interface, for notebooks and scripts: the verbs' work as functions.

`find_bubbles` searches 8 + 24 µm images (files, HDUs or arrays with a WCS)
and returns an astropy `~astropy.table.QTable` with a `~astropy.coordinates.SkyCoord`
column and sizes as Quantities; `load_detector` loads a trained detector
(the shipped one by default); `score` scores a detection table against a
catalogue, `crossmatch` marks which detections are known; `train` trains a
detector from a `FitConfig`. The command-line verbs call the same library
functions.

Examples
--------
A synthetic pair held in memory: a ring of 8 µm emission (radius 25 px)
around 24 µm emission, 1° x 1° at 6"/px, searched with the shipped detector
and its search (about ten seconds on two cores):

>>> import numpy as np
>>> from astropy.wcs import WCS
>>> import bubblenet
>>> wcs = WCS(naxis=2)
>>> wcs.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
>>> wcs.wcs.crval, wcs.wcs.crpix, wcs.wcs.cdelt = [30.0, 0.0], [300.5, 300.5], [-6 / 3600, 6 / 3600]
>>> y, x = np.mgrid[:600, :600]
>>> r = np.hypot(x - 299.5, y - 299.5)  # pixels from the image centre, l = 30°, b = 0°
>>> rng = np.random.default_rng(0)
>>> i8 = 20 + 60 * np.exp(-0.5 * ((r - 25) / 4) ** 2) + rng.normal(0, 1, r.shape)
>>> m24 = 10 + 80 * np.exp(-0.5 * (r / 10) ** 2) + rng.normal(0, 1, r.shape)
>>> bubbles = bubblenet.find_bubbles((i8, wcs), (m24, wcs))
>>> len(bubbles)
1
>>> from astropy import units as u
>>> from astropy.coordinates import SkyCoord
>>> bool(bubbles["coord"][0].separation(SkyCoord(30, 0, unit="deg", frame="galactic")) < 30 * u.arcsec)
True
>>> bool(2 * u.arcmin < bubbles["radius"][0] < 3.5 * u.arcmin)  # the ring's 25 px at 6"/px: 2.5'
True
>>> bool(bubbles["score"][0] >= bubbles.meta["threshold"])
True
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from bubblenet.errors import ConfigError, InputError

__all__ = ["find_bubbles", "load_detector", "score", "score_field", "crossmatch", "train"]


def load_detector(path: str | os.PathLike | None = None):
    """A trained detector: a `bubblenet fit` run folder, a ``.keras`` file beside its
    ``model_info.json``, or (None) the one shipped with bubblenet.

    Returns
    -------
    bubblenet.detection.detector.Detector
        With ``model``, ``spec``, ``threshold``, ``search`` and ``info``.
    """
    from bubblenet.detection.detector import load_detector as _load

    return _load(path)


def _images(value, band: str, counter: Iterator[int] | None = None) -> list:
    """`bubblenet.sky.mosaics.SkyImage` objects from paths, HDUs, HDU lists or ``(array, WCS)`` pairs, or lists.

    Images held in memory are named ``memory_<band>_<n>`` (n counts them), so several make distinct tiles.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    from bubblenet.sky.mosaics import SkyImage, open_image

    counter = itertools.count(1) if counter is None else counter

    def in_memory(data, wcs):
        return [SkyImage.from_array(np.asarray(data), wcs, name=f"memory_{band}_{next(counter)}")]

    if isinstance(value, (str, os.PathLike)):
        return [open_image(value)]
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], (WCS, fits.Header)):
        return in_memory(*value)
    if isinstance(value, fits.HDUList):
        hdu = next((h for h in value if h.is_image and h.data is not None and h.data.ndim >= 2), None)
        if hdu is None:
            raise InputError("the HDU list holds no image", f"{band} input")
        value = hdu
    if isinstance(value, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
        return in_memory(value.data, value.header)
    if isinstance(value, (list, tuple)):
        return [image for item in value for image in _images(item, band, counter)]
    raise InputError(f"expected a FITS path, an HDU or an (array, WCS) pair, got {type(value).__name__}",
                     f"{band} input")


def find_bubbles(image8, image24, *, detector=None, search=None, threshold: float | None = None,
                 region: dict | None = None, progress: bool = False, work_dir: str | os.PathLike | None = None):
    """Find bubbles in 8 + 24 µm images.

    Parameters
    ----------
    image8, image24 : path, HDU, HDUList, ``(array, WCS)`` or a list of these
        The 8 µm and 24 µm images, any celestial WCS, paired by sky overlap;
        a list searches several tiles and merges their detections.
    detector : Detector or path-like, optional
        A loaded detector (`load_detector`) or where to load one; the shipped
        detector by default.
    search : bubblenet.detection.search.SearchConfig, optional
        The window search; the detector's by default.
    threshold : float, optional
        Confidence threshold in [0, 1]; the detector's by default.
    region : dict, optional
        ``{"l": (min, max), "b": (min, max)}``, Galactic degrees: only tiles
        and detections there.
    progress : bool
        Progress bars.
    work_dir : path-like, optional
        Keep tile caches and per-tile results there (a rerun resumes); by
        default everything stays in memory.

    Returns
    -------
    astropy.table.QTable
        One row per bubble, best score first: ``name``, ``coord``
        (`~astropy.coordinates.SkyCoord`, Galactic), ``radius`` (arcmin), ``score``,
        the box in the pixels of its ``tile``, and the ``glon``/``glat``/``ra``/``dec``
        columns of the catalogue files ``bubblenet detect`` writes; ``meta``
        records the detector, search and threshold.
    """
    from astropy.coordinates import SkyCoord
    from astropy.table import QTable

    from bubblenet.detection.detector import Detector
    from bubblenet.detection.search import SearchConfig
    from bubblenet.detection.results import check_region
    from bubblenet.detection.survey import check_tile_names, detect_survey, tiles_in_region
    from bubblenet.outputs import claim_output_dir
    from bubblenet.sky.mosaics import pair_bands

    if not isinstance(detector, Detector):
        detector = load_detector(detector)
    model_path = detector.source
    if search is None:
        search = detector.search
    elif not isinstance(search, SearchConfig):
        raise ConfigError(f"search must be a SearchConfig, got {type(search).__name__}")
    threshold = detector.threshold if threshold is None else float(threshold)
    region = dict(region or {})
    unknown = set(region) - {"l", "b"}
    if unknown:
        raise ConfigError(f"region takes 'l' and 'b' ranges, not {', '.join(sorted(unknown))}")
    l_range, b_range = region.get("l"), region.get("b")
    check_region(l_range, b_range, options=("region['l']", "region['b']"))
    tiles = tiles_in_region(pair_bands(_images(image8, "8um"), _images(image24, "24um")), l_range, b_range)
    if not tiles:
        raise ConfigError(f"no 8 µm image overlaps the region {region}")
    check_tile_names(tiles)
    if work_dir is not None:
        claim_output_dir(work_dir, "detect")
    found = detect_survey(tiles, detector, search=search, threshold=threshold, l_range=l_range, b_range=b_range,
                          work_dir=work_dir, model_path=model_path, progress=progress,
                          meta={"model": str(model_path or "shipped: lite_synthetic")})
    table = QTable(found.table, meta=found.table.meta)
    table.add_column(SkyCoord(table["glon"], table["glat"], frame="galactic"), name="coord", index=1)
    table.rename_column("radius_arcmin", "radius")
    return table


def score(detections, catalogue: str | os.PathLike = "mwp_dr2", select: str | os.PathLike = "clear", *,
          region: dict | None = None, threshold: float | None = None) -> dict:
    """Score detections against a catalogue inside the region searched (paper rule and strict rule).

    Parameters
    ----------
    detections : astropy.table.Table or path-like
        `find_bubbles`' table or a catalogue file ``bubblenet detect`` wrote.
    catalogue : str or path-like
        A shipped catalogue (``mwp_dr2``, ``mwp_dr1``, ...) or a file.
    select : str or path-like
        The positives: a shipped selection (``clear``, ``rank2or3``, ``8um``) or a file of names.
    region : dict, optional
        ``{"l": (min, max), "b": (min, max)}``; by default the detection run's.
    threshold : float, optional
        Keep only detections scoring at least this.

    Returns
    -------
    dict
        ``paper`` and ``strict`` scores (``tp``, ``fp``, ``fn``, ``precision``, ``recall``, ``f1``, ``f2``),
        ``bubbles`` (reference bubbles in the region) and ``selected`` (positives among them).
    """
    from bubblenet.catalogues.tables import read_selection
    from bubblenet.evaluation.scoring import reference_catalogue, score_catalogue

    table = _detection_table(detections)
    region = dict(region or {})
    evaluation = score_catalogue(table, reference_catalogue(catalogue), read_selection(select), l_range=region.get("l"),
                                 b_range=region.get("b"), threshold=threshold)
    return {**evaluation.scores, "bubbles": len(evaluation.reference), "selected": int(evaluation.selected.sum())}


def score_field(detections, image8: str | os.PathLike, catalogue: str | os.PathLike = "mwp_dr2",
                select: str | os.PathLike = "clear") -> dict:
    """Score one field's detections one-to-one against every catalogue bubble in it (real or synthetic field).

    Every catalogue bubble counts, not only the selected ones, and the detections matching none are counted
    per deg² of the image (`bubblenet.evaluation.scoring.field_scores`): the measure that compares a
    detector on a real field and on its synthetic twin (``benchmarks/bench_transfer.py``).

    Parameters
    ----------
    detections : astropy.table.Table or path-like
        `find_bubbles`' table of the field, or a catalogue file ``bubblenet detect`` wrote.
    image8 : path-like
        The field's 8 µm image: its finite pixels are the area searched.
    catalogue : str or path-like
        A shipped catalogue (``mwp_dr2``, ...) or a file.
    select : str or path-like
        The selected (clear) bubbles: a shipped selection or a file of names.

    Returns
    -------
    dict
        `bubblenet.evaluation.scoring.field_scores`' counts, recalls and unmatched detections per deg².
    """
    from bubblenet.catalogues.tables import read_selection
    from bubblenet.evaluation.scoring import field_scores, image_area_deg2, reference_catalogue

    return field_scores(_detection_table(detections), reference_catalogue(catalogue), read_selection(select),
                        image_area_deg2(image8))


def crossmatch(detections, catalogues: Sequence[str] | None = None):
    """Detections with an ``in_<catalogue>`` column per shipped catalogue and ``new`` (in none of them).

    Parameters
    ----------
    detections : astropy.table.Table or path-like
    catalogues : sequence of str, optional
        Shipped names; by default MWP DR2, MWP DR1, Churchwell and WISE HII.
    """
    from bubblenet.evaluation.crossmatch import CROSSMATCH, crossmatch_table

    return crossmatch_table(_detection_table(detections), CROSSMATCH if catalogues is None else tuple(catalogues))


def train(config=None, out: str | os.PathLike = "runs/fit", *, demo_sky: str | os.PathLike | None = None,
          overwrite: bool = False, verbose: bool = False, **options: Any):
    """Train a detector, as ``bubblenet fit`` does; with no survey, the demo on its synthetic sky.

    Parameters
    ----------
    config : bubblenet.training.config.FitConfig, optional
        The options; `options` (by the same names) change them.
    out : path-like
        Run folder (a detector folder once done); an interrupted run there resumes.
    demo_sky : path-like, optional
        Where the demo's sky is drawn (or found) when no survey is given
        (`bubblenet.training.config.DEMO_SKY_FOLDER` by default).
    overwrite : bool
        Train in an `out` that holds other things (never needed to resume a run).
    verbose : bool
        Keras' line per epoch.

    Returns
    -------
    bubblenet.training.run.FitResult
    """
    from bubblenet.training.config import DEMO_SKY_FOLDER, FitConfig
    from bubblenet.training.run import fit

    config = (config or FitConfig()).replace(**options)
    return fit(config, Path(out), demo_sky=Path(demo_sky or DEMO_SKY_FOLDER), overwrite=overwrite, verbose=verbose)


def _detection_table(detections):
    """A detection table in the layout of ``bubblenet detect``'s files (``glon``, ``glat``, ``radius_arcmin``, ...).

    Takes such a file, or a table: `find_bubbles`' (``coord``, ``radius`` as a Quantity) or one read from a file.
    """
    from astropy import units as u
    from astropy.table import Table

    from bubblenet.evaluation.scoring import DETECTION_COLUMNS, read_detections

    if isinstance(detections, (str, os.PathLike)):
        return read_detections(detections)
    if not isinstance(detections, Table):
        raise InputError(f"expected a detection table or its file, got {type(detections).__name__}", "detections")
    table = Table(detections, meta=detections.meta, copy=False)
    if "radius" in table.colnames and "radius_arcmin" not in table.colnames:
        radius = table["radius"]
        table["radius_arcmin"] = (np.asarray(radius, float) * (radius.unit or u.arcmin)).to_value(u.arcmin)
        table.remove_column("radius")
    if "coord" in table.colnames:
        if "glon" not in table.colnames or "glat" not in table.colnames:
            galactic = table["coord"].galactic
            table["glon"], table["glat"] = galactic.l.deg, galactic.b.deg
        table.remove_column("coord")
    missing = [c for c in DETECTION_COLUMNS if c not in table.colnames]
    if missing:
        raise InputError(f"not a detection table: missing column(s) {', '.join(missing)}", "detections")
    return table
