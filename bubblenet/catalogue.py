"""Bubble catalogues: reading, checking, shipped tables and selections, label boxes.

Every table read here keeps its original columns and gains the *standard
columns* that the rest of bubblenet uses, whatever the source:

=========== ====== ===================================================
column      unit   meaning
=========== ====== ===================================================
``name``           identifier (MWP name, Churchwell name, WISE name...)
``glon``    deg    Galactic longitude in [0, 360)
``glat``    deg    Galactic latitude
``ra``      deg    ICRS right ascension
``dec``     deg    ICRS declination
``maj_axis`` arcmin semi-major axis of the bubble ellipse
``min_axis`` arcmin semi-minor axis
``reff``    arcmin effective radius, sqrt(maj_axis * min_axis) unless given
``theta``   deg    direction of the major axis, from +glon towards +glat
=========== ====== ===================================================

``theta`` is the catalogue's own position angle where it has one (MWP DR2
``theta``, DR1 ``angle_deg``); bubblenet's synthetic survey draws it with
the convention above. Circular catalogues get ``theta = 0``.
"""

from __future__ import annotations

import os
import warnings
from importlib import resources
from pathlib import Path
from typing import Iterable

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import MaskedColumn, Table
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from bubblenet.boxes import centre_halfsize_to_xyxy
from bubblenet.errors import CatalogueError

__all__ = [
    "STANDARD_COLUMNS",
    "CATALOGUES",
    "SELECTIONS",
    "BOX_SCALE",
    "read_catalogue",
    "packaged_catalogue",
    "packaged_path",
    "read_selection",
    "select",
    "sky_coords",
    "label_boxes",
    "in_image",
]

STANDARD_COLUMNS = ("name", "glon", "glat", "ra", "dec", "maj_axis", "min_axis", "reff", "theta")

#: Half-size of a bubble's label box in units of its size (MajAxis): 1.3, the
#: choice of Nishimoto et al. 2025 (PASJ 77, 403).
BOX_SCALE = 1.3

#: Shipped catalogues: name -> (file, kind, citation).
CATALOGUES = {
    "mwp_dr2": ("mwp_dr2_jayasinghe2019.csv", "mwp_dr2", "Jayasinghe et al. 2019, MNRAS 488, 1141"),
    "mwp_dr1": ("mwp_dr1_large_simpson2012.csv", "mwp_dr1", "Simpson et al. 2012, MNRAS 424, 2442"),
    "churchwell_dr2": ("churchwell_crossids_mwp_dr2.csv", "churchwell", "Jayasinghe et al. 2019"),
    "wise_hii": ("wise_hii_v2.2_anderson2014.csv", "wise_hii", "Anderson et al. 2014, ApJS 212, 1"),
}

#: Shipped name lists of Nishimoto et al. 2025: name -> file.
SELECTIONS = {
    "clear": "nishimoto2025_rank3_mwp_dr2.txt",
    "rank3": "nishimoto2025_rank3_mwp_dr2.txt",
    "rank2or3": "nishimoto2025_rank2or3_mwp_dr2.txt",
    "8um": "nishimoto2025_rank3_8um_mwp_dr2.txt",
    "churchwell_rank3": "nishimoto2025_rank3_churchwell.txt",
}

# Columns each kind needs, and the recognisable column that identifies it.
_REQUIRED = {
    "mwp_dr2": ("MWP", "GLON", "GLAT", "MajAxis", "MinAxis"),
    "mwp_dr1": ("name", "glon", "glat", "reff_arcmin", "semi_major_deg", "semi_minor_deg"),
    "churchwell": ("GLON", "GLAT", "Reff"),
    "wise_hii": ("WISE Name", "GLong", "GLat", "Radius"),
}
_ALIASES = {
    "lon": ("l", "glon", "GLON", "GLong", "lon"),
    "lat": ("b", "glat", "GLAT", "GLat", "lat"),
    "ra": ("ra", "RA", "RAJ2000", "RA_icrs", "_RAJ2000"),
    "dec": ("dec", "DEC", "Dec", "DEJ2000", "DE_icrs", "_DEJ2000"),
    "radius": ("radius", "r", "reff", "Reff", "radius_arcmin", "R"),
    "name": ("name", "Name", "NAME", "id", "ID", "MWP", "IDCW"),
}

_FORMATS = {
    ".csv": "ascii.csv", ".tsv": "ascii.tab", ".tab": "ascii.tab", ".ecsv": "ascii.ecsv",
    ".fits": "fits", ".fit": "fits", ".fts": "fits", ".xml": "votable", ".vot": "votable", ".votable": "votable",
}


def packaged_path(filename: str) -> Path:
    """Path of a file shipped in ``bubblenet/resources/catalogues``."""
    return Path(str(resources.files("bubblenet") / "resources" / "catalogues" / filename))


def _read_table(path: Path) -> Table:
    """Read a table by extension (``.gz`` allowed), falling back to astropy's guessing."""
    suffixes = [s.lower() for s in path.suffixes]
    ext = suffixes[-2] if suffixes and suffixes[-1] == ".gz" and len(suffixes) > 1 else (suffixes or [""])[-1]
    fmt = _FORMATS.get(ext)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unit-parsing chatter from VizieR/VOTable headers
        if fmt == "ascii.tab":
            return _read_tsv(path)
        return Table.read(path, format=fmt) if fmt else Table.read(path)


def _read_tsv(path: Path) -> Table:
    """Tab-separated tables, including VizieR's: '#' comments, then header, units and dashes rows."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as handle:
        lines = [line.rstrip("\n") for line in handle if line.strip() and not line.startswith("#")]
    if not lines:
        raise CatalogueError("holds no table", path)
    header = lines[0].split("\t")
    body = [line for line in lines[1:] if not set(line.replace("\t", "")) <= {"-", " "}]
    # VizieR puts a units row right after the header: drop it if no value in it is numeric.
    if body and not any(_is_number(v) for v in body[0].split("\t")) and len(body) > 1 and any(
            _is_number(v) for v in body[1].split("\t")):
        body = body[1:]
    from astropy.io import ascii

    return ascii.read([lines[0]] + body, format="tab", names=header) if body else Table(names=header)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _detect_kind(table: Table) -> str:
    names = set(table.colnames)
    for kind in ("mwp_dr2", "mwp_dr1", "wise_hii"):
        if set(_REQUIRED[kind]) <= names:
            return kind
    if "IDCW" in names and {"GLON", "GLAT", "Reff"} <= names and "MajAxis" not in names:
        return "churchwell"
    if "MWP" in names and "MajAxis" in names:
        return "mwp_dr2"  # missing columns reported by the check below
    return "generic"


def _find(table: Table, key: str) -> str | None:
    lower = {c.lower(): c for c in table.colnames}
    for alias in _ALIASES[key]:
        if alias in table.colnames:
            return alias
        if alias.lower() in lower:
            return lower[alias.lower()]
    return None


def _numeric(table: Table, column: str, path, *, required: bool = True) -> np.ndarray:
    """A column as float64, or a CatalogueError naming the first bad row."""
    col = table[column]
    mask = np.asarray(col.mask) if isinstance(col, MaskedColumn) else np.zeros(len(col), bool)
    try:
        values = np.asarray(col.filled(np.nan) if isinstance(col, MaskedColumn) else col, dtype=np.float64)
    except (TypeError, ValueError):
        for i, value in enumerate(col):
            if not mask[i] and not _is_number(str(value)):
                raise CatalogueError(f"column '{column}' has a non-numeric value {str(value)!r} in row {i + 1}",
                                     path) from None
        values = np.array([np.nan if m else float(v) for v, m in zip(col, mask)])
    bad = mask | ~np.isfinite(values)
    if required and bad.any():
        raise CatalogueError(f"column '{column}' has a missing or non-finite value in row {int(np.argmax(bad)) + 1}",
                             path)
    return values


def _require(table: Table, columns: Iterable[str], kind: str, path) -> None:
    missing = [c for c in columns if c not in table.colnames]
    if missing:
        raise CatalogueError(
            f"a {kind} catalogue needs column(s) {', '.join(missing)}; found {', '.join(table.colnames) or 'none'}",
            path)


def _standardise(table: Table, kind: str, path) -> Table:
    """Add the standard columns for a table of a known kind."""
    if kind == "generic":
        return _standardise_generic(table, path)
    _require(table, _REQUIRED[kind], kind, path)
    if kind == "mwp_dr2":
        names, lon, lat = table["MWP"], _numeric(table, "GLON", path), _numeric(table, "GLAT", path)
        major, minor = _numeric(table, "MajAxis", path), _numeric(table, "MinAxis", path)
        theta = _numeric(table, "theta", path, required=False) if "theta" in table.colnames else np.zeros(len(table))
        reff = _numeric(table, "Reff", path, required=False) if "Reff" in table.colnames else np.sqrt(major * minor)
    elif kind == "mwp_dr1":
        names, lon, lat = table["name"], _numeric(table, "glon", path), _numeric(table, "glat", path)
        major = (_numeric(table, "semi_major_deg", path) * u.deg).to_value(u.arcmin)
        minor = (_numeric(table, "semi_minor_deg", path) * u.deg).to_value(u.arcmin)
        reff = _numeric(table, "reff_arcmin", path)
        theta = _numeric(table, "angle_deg", path, required=False) if "angle_deg" in table.colnames else 0 * major
    elif kind == "churchwell":
        names = table["IDCW"] if "IDCW" in table.colnames else table[_find(table, "name") or "GLON"]
        lon, lat = _numeric(table, "GLON", path), _numeric(table, "GLAT", path)
        reff = major = minor = _numeric(table, "Reff", path)
        theta = np.zeros(len(table))
    else:  # wise_hii
        names, lon, lat = table["WISE Name"], _numeric(table, "GLong", path), _numeric(table, "GLat", path)
        reff = major = minor = (_numeric(table, "Radius", path) * u.arcsec).to_value(u.arcmin)
        theta = np.zeros(len(table))
    coords = SkyCoord(l=lon * u.deg, b=lat * u.deg, frame="galactic")
    return _attach(table, names, coords, major, minor, reff, np.nan_to_num(theta))


def _standardise_generic(table: Table, path) -> Table:
    lon_col, lat_col = _find(table, "lon"), _find(table, "lat")
    ra_col, dec_col = _find(table, "ra"), _find(table, "dec")
    radius_col = _find(table, "radius")
    arcsec_col = next((c for c in table.colnames if c.lower() == "radius_arcsec"), None)
    if not ((lon_col and lat_col) or (ra_col and dec_col)) or not (radius_col or arcsec_col):
        need = []
        if not ((lon_col and lat_col) or (ra_col and dec_col)):
            need.append("l and b (or glon/glat, or ra and dec)")
        if not (radius_col or arcsec_col):
            need.append("radius (arcmin; or radius_arcsec)")
        raise CatalogueError(f"a bubble catalogue needs {' and '.join(need)}; found "
                             f"{', '.join(table.colnames) or 'none'}", path)
    if lon_col and lat_col:
        coords = SkyCoord(l=_numeric(table, lon_col, path) * u.deg, b=_numeric(table, lat_col, path) * u.deg,
                          frame="galactic")
    else:
        coords = SkyCoord(ra=_numeric(table, ra_col, path) * u.deg, dec=_numeric(table, dec_col, path) * u.deg,
                          frame="icrs")
    if radius_col:
        radius = _numeric(table, radius_col, path)
    else:
        radius = (_numeric(table, arcsec_col, path) * u.arcsec).to_value(u.arcmin)
    name_col = _find(table, "name")
    names = table[name_col] if name_col else [f"bubble_{i + 1}" for i in range(len(table))]
    return _attach(table, names, coords, radius, radius, radius, np.zeros(len(table)))


def _attach(table, names, coords: SkyCoord, major, minor, reff, theta) -> Table:
    out = table.copy(copy_data=True)
    galactic, icrs = coords.galactic, coords.icrs
    standard = {
        "name": np.array([str(n) for n in names], dtype=str) if len(table) else np.array([], dtype="U1"),
        "glon": galactic.l.wrap_at(360 * u.deg).deg * u.deg, "glat": galactic.b.deg * u.deg,
        "ra": icrs.ra.deg * u.deg, "dec": icrs.dec.deg * u.deg,
        "maj_axis": np.asarray(major, float) * u.arcmin, "min_axis": np.asarray(minor, float) * u.arcmin,
        "reff": np.asarray(reff, float) * u.arcmin, "theta": np.asarray(theta, float) * u.deg,
    }
    for column, values in standard.items():
        if column in out.colnames:
            out.remove_column(column)  # replaced by its checked, unit-bearing version
        out[column] = values
    return out


def read_catalogue(path: str | os.PathLike, *, kind: str | None = None) -> Table:
    """Read a bubble catalogue and add the standard columns.

    Parameters
    ----------
    path : str or path-like
        CSV, TSV (VizieR style too), ECSV, FITS or VOTable file, optionally gzipped.
    kind : {"mwp_dr2", "mwp_dr1", "churchwell", "wise_hii", "generic"}, optional
        The table's layout; detected from its columns when omitted.

    Returns
    -------
    astropy.table.Table
        The original columns plus `STANDARD_COLUMNS`; ``meta["kind"]`` and
        ``meta["source"]`` say what was read.

    Raises
    ------
    CatalogueError
        If the file cannot be read, lacks the columns its kind needs, or has
        non-numeric or missing values in them.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogueError("no such catalogue file", path)
    if kind is not None and kind not in (*_REQUIRED, "generic"):
        raise CatalogueError(f"unknown catalogue kind {kind!r}; choose from {', '.join((*_REQUIRED, 'generic'))}")
    try:
        table = _read_table(path)
    except CatalogueError:
        raise
    except Exception as err:  # astropy's readers raise many types
        raise CatalogueError(f"cannot read a table from it ({type(err).__name__}: {err})", path) from None
    kind = kind or _detect_kind(table)
    out = _standardise(table, kind, path)
    if "clear" in out.colnames and out["clear"].dtype.kind in "US":
        # Text tables store the synthetic survey's flag as "True"/"False".
        out["clear"] = np.char.lower(np.asarray(out["clear"], dtype=str)) == "true"
    out.meta["kind"] = kind
    out.meta["source"] = str(path)
    return out


def packaged_catalogue(name: str) -> Table:
    """One of the shipped catalogues (`CATALOGUES`): ``mwp_dr2``, ``mwp_dr1``, ``churchwell_dr2``, ``wise_hii``."""
    if name not in CATALOGUES:
        raise CatalogueError(f"no shipped catalogue {name!r}; choose from {', '.join(CATALOGUES)}")
    filename, kind, citation = CATALOGUES[name]
    table = read_catalogue(packaged_path(filename), kind=kind)
    table.meta["citation"] = citation
    return table


def read_selection(name_or_path: str | os.PathLike) -> frozenset[str]:
    """A set of bubble names: a shipped selection (`SELECTIONS`) or a text file, one name a line.

    Blank lines and ``#`` comments are ignored.
    """
    key = str(name_or_path)
    path = packaged_path(SELECTIONS[key]) if key in SELECTIONS else Path(key)
    if not path.is_file():
        raise CatalogueError(f"not a shipped selection ({', '.join(SELECTIONS)}) nor a file of names", key)
    names = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return frozenset(n for n in names if n)


def _squash(name: str) -> str:
    return "".join(str(name).split()).upper()


def select(table: Table, names: Iterable[str]) -> np.ndarray:
    """Rows of `table` whose name is in `names`.

    Names match ignoring spaces and case (``"CN 28"`` is ``"CN28"``); an MWP
    DR2 table also matches on its Churchwell names (``IDCW``).

    Returns
    -------
    numpy.ndarray of bool
    """
    wanted = {_squash(n) for n in names}
    mask = np.array([_squash(n) in wanted for n in table["name"]], dtype=bool)
    if "IDCW" in table.colnames:
        ids = table["IDCW"].filled("") if isinstance(table["IDCW"], MaskedColumn) else table["IDCW"]
        mask |= np.array([bool(str(i).strip()) and _squash(i) in wanted for i in ids], dtype=bool)
    return mask


def sky_coords(table: Table) -> SkyCoord:
    """Galactic positions of a standardised catalogue."""
    return SkyCoord(l=np.asarray(table["glon"], float) * u.deg, b=np.asarray(table["glat"], float) * u.deg,
                    frame="galactic")


def _pixel_scale_arcmin(wcs: WCS) -> float:
    """Mean pixel side of a celestial WCS at its reference point, arcmin."""
    scales = proj_plane_pixel_scales(wcs.celestial) * u.Unit(wcs.wcs.cunit[0] or "deg")
    return float(np.sqrt(scales[0] * scales[1]).to_value(u.arcmin))


def label_boxes(table: Table, wcs: WCS, *, k: float = BOX_SCALE, size: str = "maj_axis") -> np.ndarray:
    """Label boxes of catalogue bubbles in the pixel frame of `wcs`.

    Each box is a square of half-size ``k * size`` on the sky around the
    bubble's position, converted to pixels through the WCS (Galactic or
    equatorial).

    Parameters
    ----------
    table : astropy.table.Table
        A standardised catalogue (`read_catalogue`).
    wcs : astropy.wcs.WCS
        Celestial WCS of the image.
    k : float
        Box half-size over bubble size; 1.3 after Nishimoto et al. 2025.
    size : {"maj_axis", "reff"}
        Which size column to scale. The reference code mixed the two; use one.

    Returns
    -------
    numpy.ndarray
        ``(N, 4)`` ``xyxy`` boxes in pixels (`bubblenet.boxes` conventions).
    """
    if size not in ("maj_axis", "reff"):
        raise ValueError(f"size must be 'maj_axis' or 'reff', got {size!r}")
    if len(table) == 0:
        return np.zeros((0, 4))
    x, y = wcs.celestial.world_to_pixel(sky_coords(table))
    half = k * np.asarray(table[size], float) / _pixel_scale_arcmin(wcs)
    return centre_halfsize_to_xyxy(x, y, half)


def in_image(table: Table, wcs: WCS, shape: tuple[int, int], *, margin: float = 0.0) -> np.ndarray:
    """Which bubbles have their centre inside an image of `shape` ``(ny, nx)`` (plus `margin` px)."""
    if len(table) == 0:
        return np.zeros(0, bool)
    x, y = wcs.celestial.world_to_pixel(sky_coords(table))
    ny, nx = shape
    return (x >= -0.5 - margin) & (x <= nx - 0.5 + margin) & (y >= -0.5 - margin) & (y <= ny - 0.5 + margin)
