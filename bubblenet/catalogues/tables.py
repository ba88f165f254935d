"""Bubble catalogues: reading, checking, shipped tables and selections, label boxes.

Every table read here keeps its original columns and gains the *standard
columns* (`STANDARD_COLUMNS`) that the rest of bubblenet uses, whatever the
source:

============ ====== ===================================================
column       unit   meaning
============ ====== ===================================================
``name``            identifier (MWP name, Churchwell name, WISE name...)
``glon``     deg    Galactic longitude in [0, 360)
``glat``     deg    Galactic latitude
``ra``       deg    ICRS right ascension
``dec``      deg    ICRS declination
``maj_axis`` arcmin semi-major axis of the bubble ellipse
``min_axis`` arcmin semi-minor axis
``reff``     arcmin effective radius as the catalogue gives it
``theta``    deg    position angle of the major axis, as the catalogue gives it
============ ====== ===================================================

``theta`` is copied from the catalogue (MWP DR2 ``theta``, DR1 ``angle_deg``)
without reinterpretation; bubblenet's synthetic survey reads and draws it as
the angle from the +glon axis towards +glat. Circular catalogues get
``theta = 0``.

An original column that has a standard name is reused when it holds the
same thing (it is replaced by the checked, unit-bearing version); when its
values differ it is kept, renamed ``<name>_orig``, with a warning.

Notes
-----
The MWP DR1 table (Simpson et al. 2012) gives the semi-axes of the *inner*
ellipse (``semi_major_deg`` is half ``inner_x_diam_deg``), while its
``reff_arcmin`` reaches about the outer edge of the shell (median 1.8 times
the inner radius). ``maj_axis``/``min_axis`` and ``reff`` of DR1 rows
therefore measure different things; MWP DR2 has ``Reff`` close to
``sqrt(MajAxis * MinAxis)``.
"""

from __future__ import annotations

import gzip
import os
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import ascii
from astropy.io.registry import IORegistryError
from astropy.io.votable.exceptions import VOWarning
from astropy.table import Table
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from bubblenet.conventions import BOX_SCALE, centre_halfsize_to_xyxy, inside_sky
from bubblenet.errors import CatalogueError

__all__ = [
    "STANDARD_COLUMNS",
    "CATALOGUES",
    "SELECTIONS",
    "KINDS",
    "BOX_SCALE",  # defined in bubblenet.conventions; re-exported here, where it used to live
    "read_catalogue",
    "packaged_catalogue",
    "packaged_path",
    "read_selection",
    "select",
    "sky_coords",
    "label_boxes",
    "in_image",
]

#: The columns every catalogue gains, with their units (None: text).
STANDARD_COLUMNS = {
    "name": None, "glon": u.deg, "glat": u.deg, "ra": u.deg, "dec": u.deg,
    "maj_axis": u.arcmin, "min_axis": u.arcmin, "reff": u.arcmin, "theta": u.deg,
}

#: Shipped catalogues: name -> (file, kind, citation).
CATALOGUES = {
    "mwp_dr2": ("mwp_dr2_jayasinghe2019.csv", "mwp_dr2", "Jayasinghe et al. 2019, MNRAS 488, 1141"),
    "mwp_dr1": ("mwp_dr1_large_simpson2012.csv", "mwp_dr1", "Simpson et al. 2012, MNRAS 424, 2442"),
    "churchwell_dr2": ("churchwell_crossids_mwp_dr2.csv", "churchwell", "Jayasinghe et al. 2019, MNRAS 488, 1141"),
    "wise_hii": ("wise_hii_v2.2_anderson2014.csv", "wise_hii", "Anderson et al. 2014, ApJS 212, 1"),
}

#: Shipped name lists of Nishimoto et al. 2025 (PASJ 77, 403): name -> file.
SELECTIONS = {
    "clear": "nishimoto2025_rank3_mwp_dr2.txt",
    "rank3": "nishimoto2025_rank3_mwp_dr2.txt",
    "rank2or3": "nishimoto2025_rank2or3_mwp_dr2.txt",
    "8um": "nishimoto2025_rank3_8um_mwp_dr2.txt",
    "churchwell_rank3": "nishimoto2025_rank3_churchwell.txt",
}

#: Columns each fixed layout needs; a tuple lists the accepted spellings.
_REQUIRED = {
    "mwp_dr2": ("MWP", "GLON", "GLAT", "MajAxis", "MinAxis", "Reff", "theta"),
    "mwp_dr1": ("name", "glon", "glat", "reff_arcmin", "semi_major_deg", "semi_minor_deg", "angle_deg"),
    "churchwell": (("IDCW", "name"), ("GLON", "glon"), ("GLAT", "glat"), "Reff"),
    "wise_hii": ("WISE Name", "GLong", "GLat", "Radius"),
}

#: Catalogue layouts `read_catalogue` understands.
KINDS = (*_REQUIRED, "generic")

# Column spellings of a generic catalogue, matched case-insensitively, first wins.
_ALIASES = {
    "lon": ("l", "glon", "GLong", "lon"),
    "lat": ("b", "glat", "GLat", "lat"),
    "ra": ("ra", "RAJ2000", "RA_icrs", "_RAJ2000"),
    "dec": ("dec", "DEJ2000", "DE_icrs", "_DEJ2000"),
    "radius": ("radius", "r", "reff", "radius_arcmin"),
    "radius_arcsec": ("radius_arcsec",),
    "name": ("name", "id", "MWP", "IDCW"),
}

_FORMATS = {
    ".csv": "ascii.csv", ".tsv": "tab", ".tab": "tab", ".ecsv": "ascii.ecsv",
    ".fits": "fits", ".fit": "fits", ".fts": "fits", ".xml": "votable", ".vot": "votable", ".votable": "votable",
}

# Two values of a standard column agree ("same meaning") within these.
_ANGLE_TOLERANCE = 1 * u.arcsec
_SIZE_TOLERANCE = 1e-3 * u.arcmin  # catalogues round sizes to 0.01'


def packaged_path(filename: str) -> Path:
    """Path of a file shipped in ``bubblenet/resources/catalogues``.

    Parameters
    ----------
    filename : str
        File name, e.g. ``"mwp_dr2_jayasinghe2019.csv"``.

    Returns
    -------
    pathlib.Path
    """
    return Path(str(resources.files("bubblenet") / "resources" / "catalogues" / filename))


# --- reading tables ----------------------------------------------------------


def _read_table(path: Path) -> Table:
    """Read a table by extension (``.gz`` allowed), else by astropy's guessing."""
    suffixes = [s.lower() for s in path.suffixes]
    if len(suffixes) > 1 and suffixes[-1] == ".gz":
        suffixes.pop()
    fmt = _FORMATS.get(suffixes[-1] if suffixes else "")
    with warnings.catch_warnings():
        # VizieR unit strings and VOTable schema chatter say nothing about the values.
        warnings.simplefilter("ignore", u.UnitsWarning)
        warnings.simplefilter("ignore", VOWarning)
        if fmt == "tab":
            return _read_tsv(path)
        if fmt:
            return Table.read(path, format=fmt)
        try:
            return Table.read(path)  # FITS, VOTable, ECSV... identified by content
        except IORegistryError:
            return Table.read(path, format="ascii")  # astropy tries its text formats


def _read_tsv(path: Path) -> Table:
    """Tab-separated text, VizieR's too: ``#`` comments, header, units row, dashes row."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        rows = [line.rstrip("\r\n").split("\t") for line in handle if line.strip() and not line.startswith("#")]
    if not rows:
        raise CatalogueError("holds no table (only comments or blank lines)", path)
    header, body = rows[0], rows[1:]
    # VizieR writes a units row then a row of dashes under the header: drop both.
    for i, row in enumerate(body[:2]):
        if any(row) and all(set(v.strip()) <= {"-"} for v in row):
            body = body[i + 1:]
            break
    # VizieR pads values to the column width; the tab reader would keep the spaces.
    lines = ["\t".join(v.strip() for v in row) for row in [header, *body]]
    if not body:
        return Table(names=[h.strip() for h in header])
    return ascii.read(lines, format="tab", guess=False)


def _detect_kind(colnames: list[str]) -> str:
    """The layout a table's columns announce; its other columns are checked later."""
    names = set(colnames)
    if {"MWP", "MajAxis"} <= names:
        return "mwp_dr2"
    if "semi_major_deg" in names:
        return "mwp_dr1"
    if "WISE Name" in names or {"GLong", "Radius"} <= names:
        return "wise_hii"
    if {"IDCW", "Reff"} <= names:
        return "churchwell"
    return "generic"


# --- checking columns ----------------------------------------------------------


def _resolve(table: Table, spellings, kind: str, path) -> list[str]:
    """The table's names for the columns a layout needs, or an error listing the missing ones."""
    found, missing = [], []
    for spelling in spellings:
        options = (spelling,) if isinstance(spelling, str) else spelling
        name = next((c for c in options if c in table.colnames), None)
        found.append(name)
        if name is None:
            missing.append(" or ".join(options))
    if missing:
        raise CatalogueError(f"a {kind} catalogue needs column(s) {', '.join(missing)}; "
                             f"found {', '.join(table.colnames) or 'no columns'}", path)
    return found


def _alias(table: Table, key: str) -> str | None:
    lower = {c.lower(): c for c in table.colnames}
    return next((lower[a.lower()] for a in _ALIASES[key] if a.lower() in lower), None)


def _floats(table: Table, column: str, path) -> np.ndarray:
    """A column as float64 with NaN where masked, or an error naming the first non-numeric row."""
    col = table[column]
    mask = np.ma.getmaskarray(col)
    data = np.asarray(np.ma.getdata(col))  # a plain array: Column arithmetic would carry its unit
    if data.dtype.kind in "biuf":
        values = data.astype(np.float64)
    else:
        values = np.full(len(col), np.nan)
        for i in np.flatnonzero(~mask):
            try:
                values[i] = float(data[i])
            except (TypeError, ValueError):
                raise CatalogueError(f"column '{column}' has a non-numeric value {str(data[i])!r} in row {i + 1}",
                                     path) from None
    values[mask] = np.nan
    return values


def _quantity(table: Table, column: str, unit: u.Unit, path, *, required: bool = True) -> u.Quantity:
    """A numeric column in `unit` (its own unit when it has a usable one, else `unit`)."""
    values = _floats(table, column, path)
    bad = ~np.isfinite(values)
    if required and bad.any():
        raise CatalogueError(f"column '{column}' has a missing or non-finite value in row {np.argmax(bad) + 1}", path)
    own = table[column].unit
    if own is None or isinstance(own, u.UnrecognizedUnit):
        return values * unit
    if not own.is_equivalent(unit):
        raise CatalogueError(f"column '{column}' is in {own}, which is not a unit of {unit.physical_type}", path)
    return (values * own).to(unit)


def _size(table: Table, column: str, unit: u.Unit, path) -> u.Quantity:
    """A bubble size column in arcmin; sizes must be positive."""
    size = _quantity(table, column, unit, path).to(u.arcmin)
    if (size <= 0).any():
        row = int(np.argmax(size <= 0)) + 1
        raise CatalogueError(f"column '{column}' has a size that is not positive in row {row}", path)
    return size


# --- standardising ---------------------------------------------------------------


@dataclass
class _Parsed:
    """What a layout yields; `origin` maps standard columns to the original columns they came from."""

    names: object
    coords: SkyCoord
    frame: str
    major: u.Quantity
    minor: u.Quantity
    reff: u.Quantity
    theta: u.Quantity
    origin: dict = field(default_factory=dict)


def _galactic(table, lon, lat, path) -> SkyCoord:
    return SkyCoord(l=_quantity(table, lon, u.deg, path), b=_quantity(table, lat, u.deg, path), frame="galactic")


def _theta(table, column, path) -> u.Quantity:
    # An orientation is meaningless for a round bubble: a missing one reads as 0.
    theta = _quantity(table, column, u.deg, path, required=False)
    return np.where(np.isfinite(theta), theta, 0 * u.deg)


def _parse_mwp_dr2(table, path) -> _Parsed:
    name, lon, lat, major, minor, reff, theta = _resolve(table, _REQUIRED["mwp_dr2"], "mwp_dr2", path)
    return _Parsed(table[name], _galactic(table, lon, lat, path), "galactic", _size(table, major, u.arcmin, path),
                   _size(table, minor, u.arcmin, path), _size(table, reff, u.arcmin, path),
                   _theta(table, theta, path), {"theta": theta})


def _parse_mwp_dr1(table, path) -> _Parsed:
    name, lon, lat, reff, major, minor, angle = _resolve(table, _REQUIRED["mwp_dr1"], "mwp_dr1", path)
    return _Parsed(table[name], _galactic(table, lon, lat, path), "galactic", _size(table, major, u.deg, path),
                   _size(table, minor, u.deg, path), _size(table, reff, u.arcmin, path),
                   _theta(table, angle, path), {"name": name, "glon": lon, "glat": lat})


def _parse_churchwell(table, path) -> _Parsed:
    name, lon, lat, reff = _resolve(table, _REQUIRED["churchwell"], "churchwell", path)
    radius = _size(table, reff, u.arcmin, path)
    return _Parsed(table[name], _galactic(table, lon, lat, path), "galactic", radius, radius, radius,
                   np.zeros(len(table)) * u.deg, {"name": name, "glon": lon, "glat": lat})


def _parse_wise_hii(table, path) -> _Parsed:
    name, lon, lat, radius = _resolve(table, _REQUIRED["wise_hii"], "wise_hii", path)
    size = _size(table, radius, u.arcsec, path)
    return _Parsed(table[name], _galactic(table, lon, lat, path), "galactic", size, size, size,
                   np.zeros(len(table)) * u.deg)


def _parse_generic(table, path) -> _Parsed:
    lon, lat, ra, dec = (_alias(table, key) for key in ("lon", "lat", "ra", "dec"))
    radius, arcsec, name = _alias(table, "radius"), _alias(table, "radius_arcsec"), _alias(table, "name")
    need = []
    if not (lon and lat) and not (ra and dec):
        need.append("l and b (or glon and glat, or ra and dec)")
    if not (radius or arcsec):
        need.append("a radius (radius, r or reff in arcmin, or radius_arcsec)")
    if need:
        raise CatalogueError(f"a generic catalogue needs {' and '.join(need)}; "
                             f"found {', '.join(table.colnames) or 'no columns'}", path)
    if lon and lat:
        coords, frame, origin = _galactic(table, lon, lat, path), "galactic", {"glon": lon, "glat": lat}
    else:
        coords = SkyCoord(ra=_quantity(table, ra, u.deg, path), dec=_quantity(table, dec, u.deg, path), frame="icrs")
        frame, origin = "icrs", {"ra": ra, "dec": dec}
    size = _size(table, radius, u.arcmin, path) if radius else _size(table, arcsec, u.arcsec, path)
    origin.update(name=name, reff=radius)
    # A table of the standard schema reads back as itself: honour its ellipse columns.
    extra = {c: c for c in ("maj_axis", "min_axis", "theta") if c in table.colnames}
    origin.update(extra)
    major = _size(table, "maj_axis", u.arcmin, path) if "maj_axis" in extra else size
    minor = _size(table, "min_axis", u.arcmin, path) if "min_axis" in extra else size
    theta = _theta(table, "theta", path) if "theta" in extra else np.zeros(len(table)) * u.deg
    names = table[name] if name else [f"bubble_{i + 1}" for i in range(len(table))]
    return _Parsed(names, coords, frame, major, minor, size, theta, origin)


_PARSERS = {"mwp_dr2": _parse_mwp_dr2, "mwp_dr1": _parse_mwp_dr1, "churchwell": _parse_churchwell,
            "wise_hii": _parse_wise_hii, "generic": _parse_generic}


def _text(values) -> np.ndarray:
    """Names as stripped text; masked entries become empty strings."""
    mask = np.ma.getmaskarray(values) if isinstance(values, np.ndarray) else np.zeros(len(values), bool)
    data = np.ma.getdata(values) if isinstance(values, np.ndarray) else values
    return np.array(["" if m else str(v).strip() for v, m in zip(data, mask)], dtype=str).reshape(-1)


def _same(original, value) -> bool:
    """Whether an original column already holds a standard column's values (within rounding)."""
    if not isinstance(value, u.Quantity):
        return bool(np.array_equal(_text(original), value))
    try:
        old = u.Quantity(np.asarray(np.ma.filled(original, np.nan), dtype=float), original.unit or value.unit)
    except (TypeError, ValueError, u.UnitsError):
        return False
    if not old.unit.is_equivalent(value.unit):
        return False
    if value.unit == u.deg:
        tolerance = _ANGLE_TOLERANCE
        difference = (old - value + 180 * u.deg) % (360 * u.deg) - 180 * u.deg  # longitudes wrap
    else:
        tolerance, difference = _SIZE_TOLERANCE, old - value
    return bool(np.all(np.abs(difference) <= tolerance))


def _standard_values(parsed: _Parsed) -> dict:
    galactic, icrs = parsed.coords.galactic, parsed.coords.icrs
    return {
        "name": _text(parsed.names),
        "glon": galactic.l.wrap_at(360 * u.deg).to(u.deg), "glat": galactic.b.to(u.deg),
        "ra": icrs.ra.wrap_at(360 * u.deg).to(u.deg), "dec": icrs.dec.to(u.deg),
        "maj_axis": parsed.major.to(u.arcmin), "min_axis": parsed.minor.to(u.arcmin),
        "reff": parsed.reff.to(u.arcmin), "theta": parsed.theta.to(u.deg),
    }


def _attach(table: Table, parsed: _Parsed, path) -> Table:
    """A copy of `table` with the standard columns added (see the module notes on name clashes)."""
    out = table.copy(copy_data=True)
    for column, value in _standard_values(parsed).items():
        if column not in out.colnames:
            out[column] = value
        elif parsed.origin.get(column) == column or _same(out[column], value):
            out.replace_column(column, value)  # the same thing: its checked, unit-bearing version
        else:
            kept = next(f"{column}_orig{i or ''}" for i in range(len(out.colnames) + 1)
                        if f"{column}_orig{i or ''}" not in out.colnames)
            warnings.warn(f"{path}: column '{column}' differs from the standard '{column}'; kept as '{kept}'",
                          stacklevel=3)
            out.rename_column(column, kept)
            out[column] = value
    return out


def _bool_flag(table: Table) -> None:
    """The synthetic survey's flags (``clear``, and the truth file's ``clear8`` and ``catalogued``) as booleans
    (text tables store "True"/"False")."""
    for name in ("clear", "clear8", "catalogued"):
        if name in table.colnames and table[name].dtype.kind in "US":
            text = np.char.lower(np.char.strip(np.asarray(table[name], dtype=str)))
            if set(text) <= {"true", "false"}:
                table[name] = text == "true"


def read_catalogue(path: str | os.PathLike, *, kind: str | None = None) -> Table:
    """Read a bubble catalogue and add the standard columns.

    Parameters
    ----------
    path : str or path-like
        CSV, TSV (VizieR's too), ECSV, FITS or VOTable file, optionally
        gzipped; other extensions are read by astropy's format guessing.
    kind : {"mwp_dr2", "mwp_dr1", "churchwell", "wise_hii", "generic"}, optional
        The table's layout; detected from its columns when omitted.

    Returns
    -------
    astropy.table.Table
        A new table: the original columns plus `STANDARD_COLUMNS`, with
        units. ``meta["kind"]`` is the layout, ``meta["source"]`` the path and
        ``meta["frame"]`` the frame the positions were given in
        (``"galactic"`` or ``"icrs"``).

    Raises
    ------
    CatalogueError
        If the file is missing or unreadable, lacks the columns its layout
        needs, or has non-numeric, missing or non-positive values in them.

    Notes
    -----
    Layouts and their required columns:

    * ``mwp_dr2`` (VizieR J/MNRAS/488/1141): ``MWP, GLON, GLAT, MajAxis,
      MinAxis, Reff, theta``; sizes in arcmin.
    * ``mwp_dr1``: ``name, glon, glat, reff_arcmin, semi_major_deg,
      semi_minor_deg, angle_deg``.
    * ``churchwell``: ``IDCW`` (or ``name``), ``GLON``, ``GLAT``, ``Reff``
      (arcmin; the bubble is taken as round).
    * ``wise_hii``: ``WISE Name, GLong, GLat, Radius`` (arcsec).
    * ``generic``: longitude and latitude (``l``/``glon``/``GLong``,
      ``b``/``glat``/``GLat``) or ``ra``/``RAJ2000``/``RA_icrs`` and
      ``dec``/``DEJ2000``/``DE_icrs`` (treated as ICRS), a radius
      (``radius``/``r``/``reff``/``radius_arcmin`` in arcmin, or
      ``radius_arcsec``) and optionally ``name``, ``maj_axis``,
      ``min_axis`` and ``theta``; names match case-insensitively.

    A column with a unit of its own (ECSV, FITS, VOTable) is converted from
    that unit. An empty table gives an empty table of the full schema.

    Examples
    --------
    >>> from bubblenet.catalogues.tables import packaged_path, read_catalogue
    >>> dr2 = read_catalogue(packaged_path("mwp_dr2_jayasinghe2019.csv"))
    >>> len(dr2), dr2.meta["kind"], dr2["maj_axis"].unit
    (2600, 'mwp_dr2', Unit("arcmin"))
    """
    path = Path(path)
    if kind is not None and kind not in KINDS:
        raise CatalogueError(f"unknown catalogue kind {kind!r}; choose from {', '.join(KINDS)}", path)
    if not path.is_file():
        raise CatalogueError("no such catalogue file", path)
    try:
        table = _read_table(path)
    except CatalogueError:
        raise
    except Exception as err:  # astropy's readers raise many types
        raise CatalogueError(f"cannot read a table from it ({type(err).__name__}: {err})", path) from None
    kind = kind or _detect_kind(table.colnames)
    parsed = _PARSERS[kind](table, path)
    out = _attach(table, parsed, path)
    _bool_flag(out)
    out.meta.update(kind=kind, source=str(path), frame=parsed.frame)
    return out


def packaged_catalogue(name: str) -> Table:
    """One of the shipped catalogues.

    Parameters
    ----------
    name : {"mwp_dr2", "mwp_dr1", "churchwell_dr2", "wise_hii"}
        A key of `CATALOGUES`.

    Returns
    -------
    astropy.table.Table
        As `read_catalogue` gives it, with ``meta["citation"]``.

    Raises
    ------
    CatalogueError
        If `name` is not a shipped catalogue.
    """
    if name not in CATALOGUES:
        raise CatalogueError(f"no shipped catalogue {name!r}; choose from {', '.join(CATALOGUES)}")
    filename, kind, citation = CATALOGUES[name]
    table = read_catalogue(packaged_path(filename), kind=kind)
    table.meta["citation"] = citation
    return table


# --- selections ---------------------------------------------------------------------


def read_selection(name_or_path: str | os.PathLike) -> frozenset[str]:
    """A set of bubble names: a shipped selection or a text file of names.

    Parameters
    ----------
    name_or_path : str or path-like
        A key of `SELECTIONS` (``"clear"`` = ``"rank3"``, ``"rank2or3"``,
        ``"8um"``, ``"churchwell_rank3"``; Nishimoto et al. 2025) or a text
        file with one name a line; blank lines and ``#`` comments are ignored.

    Returns
    -------
    frozenset of str

    Raises
    ------
    CatalogueError
        If it is neither a shipped selection nor a readable file.
    """
    key = os.fspath(name_or_path)
    path = packaged_path(SELECTIONS[key]) if key in SELECTIONS else Path(key)
    if not path.is_file():
        raise CatalogueError(f"not a shipped selection ({', '.join(SELECTIONS)}) nor a file of names", key)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CatalogueError(f"cannot read names from it ({err})", path) from None
    names = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return frozenset(n for n in names if n)


def _squash(name: str) -> str:
    return "".join(str(name).split()).upper()


def select(table: Table, names: Iterable[str]) -> np.ndarray:
    """Rows of `table` whose name is in `names`.

    Parameters
    ----------
    table : astropy.table.Table
        A standardised catalogue (`read_catalogue`).
    names : iterable of str
        Bubble names, e.g. from `read_selection`.

    Returns
    -------
    numpy.ndarray of bool
        ``(len(table),)``.

    Notes
    -----
    Names match ignoring white space and case (``"CN 28"`` is ``"CN28"``).
    A table with an ``IDCW`` column (MWP DR2) also matches on it; an ``IDCW``
    entry may hold several Churchwell names separated by spaces
    (``"CN103 CN102"``), and matches if any of them is wanted.
    """
    wanted = {_squash(n) for n in names}
    mask = np.array([_squash(n) in wanted for n in _text(table["name"])], dtype=bool).reshape(-1)
    if "IDCW" in table.colnames:
        mask |= np.array([any(_squash(t) in wanted for t in ids.split()) for ids in _text(table["IDCW"])],
                         dtype=bool).reshape(-1)
    return mask


# --- positions and label boxes --------------------------------------------------------


def sky_coords(table: Table) -> SkyCoord:
    """Galactic positions of a standardised catalogue.

    Parameters
    ----------
    table : astropy.table.Table
        A standardised catalogue (`read_catalogue`).

    Returns
    -------
    astropy.coordinates.SkyCoord
        In the Galactic frame, one per row.
    """
    return SkyCoord(l=_column_quantity(table, "glon"), b=_column_quantity(table, "glat"), frame="galactic")


def _column_quantity(table: Table, column: str) -> u.Quantity:
    """A standard column as a Quantity, in its standard unit if it lost its own."""
    col = table[column]
    return u.Quantity(np.asarray(col, dtype=float), col.unit or STANDARD_COLUMNS[column]).reshape(-1)


def _native_coords(table: Table) -> SkyCoord:
    """Positions in the frame the catalogue gave them, so no round trip through another frame."""
    if table.meta.get("frame") == "icrs":
        return SkyCoord(ra=_column_quantity(table, "ra"), dec=_column_quantity(table, "dec"), frame="icrs")
    return sky_coords(table)


def _pixel_scale(wcs: WCS) -> u.Quantity:
    """Side of a pixel (geometric mean of the two axes) at the WCS reference point."""
    celestial = wcs.celestial
    sides = [s * u.Unit(unit or "deg") for s, unit in zip(proj_plane_pixel_scales(celestial), celestial.wcs.cunit)]
    return np.sqrt(sides[0] * sides[1])


def label_boxes(table: Table, wcs: WCS, *, k: float = BOX_SCALE, size: str = "maj_axis") -> np.ndarray:
    """Label boxes of catalogue bubbles in the pixel frame of `wcs`.

    Parameters
    ----------
    table : astropy.table.Table
        A standardised catalogue (`read_catalogue`).
    wcs : astropy.wcs.WCS
        WCS of the image, Galactic or equatorial (only its celestial part is used).
    k : float
        Box half-size over bubble size; by default
        `bubblenet.conventions.BOX_SCALE` (1.3, after Nishimoto et al. 2025,
        PASJ 77, 403).
    size : {"maj_axis", "reff"}
        Which size column to scale.

    Returns
    -------
    numpy.ndarray
        ``(N, 4)`` ``xyxy`` boxes in pixels (`bubblenet.conventions` conventions).

    Notes
    -----
    Each box is a square of half-size ``k * size`` on the sky, centred on the
    bubble's position (converted by ``wcs.world_to_pixel`` from the frame the
    catalogue gave). The half-size is converted to pixels with the pixel
    scale at the WCS reference point (`proj_plane_pixel_scales`), the
    geometric mean of the two axes for non-square pixels.
    """
    if size not in ("maj_axis", "reff"):
        raise ValueError(f"size must be 'maj_axis' or 'reff', got {size!r}")
    if len(table) == 0:
        return np.zeros((0, 4))
    x, y = wcs.celestial.world_to_pixel(_native_coords(table))
    half = (k * _column_quantity(table, size) / _pixel_scale(wcs)).to_value(u.one)
    return centre_halfsize_to_xyxy(x, y, half)


def in_image(table: Table, wcs: WCS, shape: tuple[int, int], *, margin: float = 0.0) -> np.ndarray:
    """Which bubbles have their centre inside an image (`bubblenet.conventions.inside_sky`).

    Parameters
    ----------
    table : astropy.table.Table
        A standardised catalogue (`read_catalogue`).
    wcs : astropy.wcs.WCS
        WCS of the image.
    shape : tuple of int
        Image shape ``(ny, nx)``.
    margin : float
        Pixels added on every side of the image's extent
        ``[-0.5, nx - 0.5) x [-0.5, ny - 0.5)`` (negative to keep away from
        the edges).

    Returns
    -------
    numpy.ndarray of bool
        ``(len(table),)``.
    """
    if len(table) == 0:
        return np.zeros(0, bool)
    return inside_sky(_native_coords(table), wcs, shape, margin=margin)
