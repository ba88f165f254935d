"""Checking and correcting an image's WCS against catalogued compact sources.

The Milky Way Project's composite images carry an *approximate* WCS, and a
WCS a few pixels off is enough to make a one-to-one score miss bubbles that
were found (the match radius of a 0.5′ bubble is 0.3′, under 3 pixels at
6.75″/px). `measure_offset` measures the offset from sources whose positions
are known independently of the image: compact WISE HII regions (Anderson et
al. 2014, positions from WISE 12 and 22 µm) are bright at both 8 and 24 µm
and small enough for a centroid to mean something. `registered_wcs` and
`write_registered` apply the measured shift; `register_images` (the
``bubblenet register`` verb) does both for a set of bands on one grid.

For the MWP field at l = 41.3° (`../shared/data/images`) the 24 and 8 µm
planes agree, and both put the emission about 2.2 pixels (15″) below where
their WCS says it is (docs/measurements.md, "The real field's astrometry").
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.wcs import WCS

from bubblenet.errors import FitsError, InputError

__all__ = ["AstrometricOffset", "measure_offset", "centroid_near", "registered_wcs", "write_registered",
           "register_images", "background_half_size", "COMPACT_RADIUS_ARCMIN", "MIN_SOURCES"]

#: WISE HII regions at most this large (radius, arcmin) are centroided: a larger
#: region's emission is too structured for its centre to be its catalogued position.
COMPACT_RADIUS_ARCMIN = 0.9

#: Fewest sources `measure_offset` needs by default.
MIN_SOURCES = 3

#: Smallest half-size (pixels) of the box whose median is a source's background.
_BACKGROUND_HALF = 15

#: Robust standard deviation of a normal distribution per unit median absolute deviation.
_MAD_TO_SIGMA = 1.4826

#: The standard error of the median of n normal values is √(π/2) σ/√n (for large
#: n; Kendall & Stuart): a median is noisier than a mean of the same values.
_MEDIAN_ERROR_FACTOR = float(np.sqrt(np.pi / 2))

#: The record `register_images` writes.
RECORD_NAME = "astrometry.json"

#: ``status`` of a source in `AstrometricOffset.sources`.
USED, OUTLIER, NO_CENTROID, WANDERED, BLENDED = "used", "outlier", "no centroid", "wandered", "blended with"


@dataclass(frozen=True)
class AstrometricOffset:
    """Where an image's emission lies relative to where its WCS puts it.

    The offset is *measured minus WCS-predicted* pixel position of catalogued
    sources: a source at sky position ``p`` lies at pixel
    ``wcs.world_to_pixel(p) + (dx, dy)``. `registered_wcs` shifts ``CRPIX``
    by it.

    Attributes
    ----------
    dx, dy : float
        Median offset along the image's x (column) and y (row) axes, pixels.
    dx_err, dy_err : float
        Uncertainty of the medians: √(π/2) × 1.4826 × MAD / √n over the n
        sources used.
    pixel_scale_arcsec : float
        The image's pixel scale, arcsec per pixel.
    sources : astropy.table.Table
        One row per catalogued source tried and band: ``source`` (its row in
        the catalogue), ``name, glon, glat, radius_px, band, x_wcs, y_wcs,
        x, y, dx, dy, used, status``. ``status`` says why a source was not
        used: ``"outlier"`` (clipped), ``"no centroid"`` (no flux above the
        background, or NaN pixels in the aperture), ``"wandered"`` (the
        centroid moved more than ``max_shift``), ``"blended with <name>"``
        (another compact source's aperture overlaps its own).
    images : tuple of str
        The images measured.
    """

    dx: float
    dy: float
    dx_err: float
    dy_err: float
    pixel_scale_arcsec: float
    sources: Table = field(repr=False)
    images: tuple[str, ...] = ()

    @property
    def n_sources(self) -> int:
        """How many distinct sources the medians are taken over."""
        return len(set(self.sources["source"][self.sources["used"]]))

    @property
    def offset_arcsec(self) -> float:
        """Length of the offset, arcsec."""
        return float(np.hypot(self.dx, self.dy) * self.pixel_scale_arcsec)

    @property
    def significance(self) -> float:
        """Offset length over its uncertainty along the offset (above ~3: the WCS is measurably off)."""
        err = np.hypot(self.dx_err * self.dx, self.dy_err * self.dy) / max(np.hypot(self.dx, self.dy), 1e-12)
        return float(np.hypot(self.dx, self.dy) / max(err, 1e-12))

    def shifted_crpix(self, crpix1: float, crpix2: float) -> tuple[float, float]:
        """A WCS reference pixel moved by the offset (what registering does to ``CRPIX1``/``CRPIX2``)."""
        return float(crpix1) + self.dx, float(crpix2) + self.dy

    def as_dict(self) -> dict:
        """The numbers, for a JSON record."""
        return {"dx_px": self.dx, "dy_px": self.dy, "dx_err_px": self.dx_err, "dy_err_px": self.dy_err,
                "offset_arcsec": self.offset_arcsec, "significance": self.significance,
                "pixel_scale_arcsec": self.pixel_scale_arcsec, "n_sources": self.n_sources,
                "images": list(self.images)}


def background_half_size(radius: float) -> int:
    """Half-size (pixels) of the background box of a source of aperture `radius` pixels.

    Twice the radius, so the source fills a fifth of the box and its median
    stays the background's; never under 15 pixels.
    """
    return max(_BACKGROUND_HALF, int(np.ceil(2 * radius)))


def centroid_near(data: np.ndarray, x: float, y: float, radius: float, *, iterations: int = 5,
                  background_half: int | None = None) -> tuple[float, float] | None:
    """Iterated, background-subtracted, flux-weighted centroid of the source near ``(x, y)``.

    The background is the median of a ``2 × background_half`` pixel box
    around the start; the centroid (`photutils.centroids.centroid_com`) is
    taken over the pixels within `radius` of the current estimate, above the
    background, and the circle is moved there, `iterations` times.

    Parameters
    ----------
    data : ndarray
        ``(ny, nx)`` image.
    x, y : float
        Starting position, pixels (0-based, FITS row 0 at the bottom).
    radius : float
        Aperture radius, pixels.
    iterations : int
        Times the aperture is re-centred.
    background_half : int, optional
        Half-size of the background box, pixels; by default
        `background_half_size` of `radius`.

    Returns
    -------
    tuple of float or None
        ``(x, y)`` of the centroid, or None where the aperture holds no flux
        above the background, leaves `data`, or covers a NaN pixel (outside
        the image, or a saturated core: a centroid around a hole is biased).
    """
    from photutils.centroids import centroid_com

    ny, nx = data.shape
    half_bg = background_half_size(radius) if background_half is None else int(background_half)
    x0, y0 = int(round(x)), int(round(y))
    box = data[max(0, y0 - half_bg):y0 + half_bg, max(0, x0 - half_bg):x0 + half_bg]
    if not np.isfinite(box).any():
        return None
    background = float(np.nanmedian(box))
    half = int(np.ceil(radius)) + 1
    cx, cy = float(x), float(y)
    for _ in range(iterations):
        i0, j0 = int(round(cx)) - half, int(round(cy)) - half
        if i0 < 0 or j0 < 0 or i0 + 2 * half + 1 > nx or j0 + 2 * half + 1 > ny:
            return None
        cut = data[j0:j0 + 2 * half + 1, i0:i0 + 2 * half + 1] - background
        jj, ii = np.mgrid[j0:j0 + 2 * half + 1, i0:i0 + 2 * half + 1]
        inside = (ii - cx) ** 2 + (jj - cy) ** 2 <= radius ** 2
        if not np.isfinite(cut[inside]).all():
            return None
        weights = np.where(inside, np.clip(cut, 0.0, None), 0.0)
        if weights.sum() <= 0:
            return None
        mx, my = centroid_com(weights)
        cx, cy = i0 + float(mx), j0 + float(my)
    return cx, cy


def _compact_sources(catalogue, max_radius_arcmin: float) -> Table:
    """The catalogue's sources of radius at most `max_radius_arcmin`, with their row numbers (``source``)."""
    from bubblenet.evaluation.scoring import reference_catalogue

    table = reference_catalogue(catalogue) if isinstance(catalogue, (str, os.PathLike)) else Table(catalogue)
    table["source"] = np.arange(len(table))
    return table[np.asarray(table["reff"], float) <= max_radius_arcmin]


def _same_grid(images) -> None:
    """Refuse images whose shapes differ or whose WCS put their corners more than 1 % of a pixel apart."""
    first = images[0]
    for image in images[1:]:
        if image.shape != first.shape:
            raise InputError(f"images to measure together must share one pixel grid; {image.name} is "
                             f"{image.shape}, {first.name} is {first.shape}", image.path)
        xs, ys = np.array([0.0, first.shape[1] - 1.0]), np.array([0.0, first.shape[0] - 1.0])
        # Angular separations, so a longitude wrapping through 0/360 or another frame is no difference.
        apart = first.wcs.pixel_to_world(xs, ys).separation(image.wcs.pixel_to_world(xs, ys)).deg
        scale = abs(first.wcs.proj_plane_pixel_scales()[0].to_value("deg"))
        if np.max(apart) > 0.01 * scale:
            raise InputError(f"images to measure together must share one pixel grid; {image.name}'s WCS "
                             f"differs from {first.name}'s", image.path)


def _robust_median(values: np.ndarray) -> tuple[float, float, float]:
    """Median, 1.4826 × MAD, and the median's uncertainty √(π/2) × 1.4826 × MAD / √n."""
    median = float(np.median(values))
    sigma = _MAD_TO_SIGMA * float(np.median(np.abs(values - median)))
    return median, sigma, float(_MEDIAN_ERROR_FACTOR * sigma / np.sqrt(len(values)))


def _blends(x: np.ndarray, y: np.ndarray, radius: np.ndarray, names) -> list[str]:
    """For each source, the name of another whose aperture overlaps its own ('' when none).

    Two catalogued regions on one blob would both be centroided on it and
    count twice in the median, each pulled toward the other.
    """
    if len(x) == 0:
        return []
    gap = np.hypot(x[:, None] - x, y[:, None] - y) - (radius[:, None] + radius)  # edge to edge, pixels
    np.fill_diagonal(gap, np.inf)
    nearest = np.argmin(gap, axis=1)
    return [str(names[j]) if gap[i, j] < 0 else "" for i, j in enumerate(nearest)]


def measure_offset(images: Sequence, catalogue="wise_hii", *, max_radius_arcmin: float = COMPACT_RADIUS_ARCMIN,
                   min_sources: int = MIN_SOURCES, clip: float = 4.0, max_shift: float = 6.0
                   ) -> AstrometricOffset:
    """Measure how far an image's emission lies from where its WCS puts catalogued compact sources.

    Each compact source (radius ≤ `max_radius_arcmin`) inside the image is
    centroided in every image given (`centroid_near`, aperture radius = the
    source's radius, at least 3 pixels). Sources whose apertures overlap
    another compact source's are left out, as are those whose aperture
    covers NaN (the image edge, saturated cores). A source's offset is the
    mean over the images, and the result is the median over sources, after
    dropping those more than `clip` robust standard deviations (at least
    0.5 px) from it.

    Parameters
    ----------
    images : sequence of SkyImage
        One or more bands on one pixel grid (e.g. the 8 and 24 µm planes of
        an MWP composite). Their WCS are checked to agree.
    catalogue : str, path-like or astropy.table.Table
        Sources with known positions, with ``name, glon, glat, reff``
        (arcmin) columns: a shipped catalogue name, a file, or a table as
        `bubblenet.catalogues.read_catalogue` gives it. Default: the WISE
        catalogue of HII regions (Anderson et al. 2014).
    max_radius_arcmin : float
        Largest source radius used.
    min_sources : int
        Fewest sources that make a measurement; at least 2 (one source
        gives no uncertainty).
    clip : float
        Outlier rejection, in robust standard deviations.
    max_shift : float
        A centroid further than this (pixels) from the predicted position has
        wandered to another source and is not used.

    Returns
    -------
    AstrometricOffset

    Raises
    ------
    InputError
        If `min_sources` is below 2, the images do not share a grid, or
        fewer than `min_sources` sources could be measured (the message
        names the image).
    """
    from bubblenet.sky.mosaics import Window

    if not images:
        raise InputError("give at least one image to measure")
    if min_sources < 2:
        raise InputError(f"min_sources must be at least 2 (one source gives no uncertainty), got {min_sources}")
    _same_grid(images)
    first = images[0]
    scale_arcsec = float(abs(first.wcs.proj_plane_pixel_scales()[0].to_value("arcsec")))
    table = _compact_sources(catalogue, max_radius_arcmin)
    coords = SkyCoord(np.asarray(table["glon"], float), np.asarray(table["glat"], float), unit="deg",
                      frame="galactic")
    x, y = first.wcs.world_to_pixel(coords)  # converts to the image's frame (e.g. ICRS) where needed
    ny, nx = first.shape
    inside = np.nonzero(np.isfinite(x) & np.isfinite(y) & (x >= 0) & (x <= nx - 1) & (y >= 0) & (y <= ny - 1))[0]
    radii = np.maximum(3.0, np.asarray(table["reff"], float)[inside] * 60.0 / scale_arcsec)
    blends = _blends(x[inside], y[inside], radii, table["name"][inside])
    rows, status = [], []
    for i, radius, blend in zip(inside, radii, blends):
        # Read a cut-out per source, not the whole image: survey mosaics can be gigabytes.
        half = max(background_half_size(radius), int(np.ceil(radius + max_shift)) + 2)
        window = Window(int(round(x[i])) - half, int(round(y[i])) - half, 2 * half + 1, 2 * half + 1)
        for image in images:
            found = None if blend else centroid_near(image.read(window), x[i] - window.x0, y[i] - window.y0,
                                                     radius)
            cx, cy = (window.x0 + found[0], window.y0 + found[1]) if found is not None else (np.nan, np.nan)
            rows.append((int(table["source"][i]), str(table["name"][i]), float(table["glon"][i]),
                         float(table["glat"][i]), float(radius), image.name, float(x[i]), float(y[i]), cx, cy,
                         cx - x[i], cy - y[i]))
            status.append(f"{BLENDED} {blend}" if blend else NO_CENTROID if found is None
                          else WANDERED if np.hypot(cx - x[i], cy - y[i]) > max_shift else USED)
    names = ["source", "name", "glon", "glat", "radius_px", "band", "x_wcs", "y_wcs", "x", "y", "dx", "dy"]
    sources = Table(rows=rows, names=names) if rows else Table(names=names, dtype=[int, str, float, float, float,
                                                                                 str] + [float] * 6)
    status = np.array(status, dtype=f"U{max(len(text) for text in [*status, OUTLIER])}")  # OUTLIER fits in
    per_source = _per_source_offsets(sources, status == USED)
    if len(per_source) >= min_sources:
        offsets = np.array(list(per_source.values()))
        keep = np.ones(len(offsets), bool)
        for axis in (0, 1):
            median, sigma, _ = _robust_median(offsets[:, axis])
            keep &= np.abs(offsets[:, axis] - median) <= clip * max(sigma, 0.5)
        status[np.isin(np.asarray(sources["source"]), [s for s, k in zip(per_source, keep) if not k])] = OUTLIER
        per_source = _per_source_offsets(sources, status == USED)
    sources["used"] = status == USED
    sources["status"] = status
    if len(per_source) < min_sources:
        where = " and ".join(image.name for image in images)
        raise InputError(f"only {len(per_source)} compact catalogued source(s) (radius <= {max_radius_arcmin}') "
                         f"could be centroided in {where}; at least {min_sources} are needed to measure its "
                         "WCS offset", first.path)
    offsets = np.array(list(per_source.values()))
    dx, _, dx_err = _robust_median(offsets[:, 0])
    dy, _, dy_err = _robust_median(offsets[:, 1])
    return AstrometricOffset(dx, dy, dx_err, dy_err, scale_arcsec, sources,
                             tuple(str(image.path) for image in images))


def _per_source_offsets(sources: Table, used: np.ndarray) -> dict[int, tuple[float, float]]:
    """Each used source's offset (keyed by its catalogue row), averaged over the bands it was measured in."""
    ids = np.asarray(sources["source"])[used]
    dx, dy = np.asarray(sources["dx"], float)[used], np.asarray(sources["dy"], float)[used]
    return {int(s): (float(dx[ids == s].mean()), float(dy[ids == s].mean())) for s in dict.fromkeys(ids.tolist())}


def registered_wcs(wcs: WCS, offset: AstrometricOffset) -> WCS:
    """A copy of `wcs` with its reference pixel moved by the measured offset.

    A pure shift: the pixel scale and rotation are kept (the offset is measured
    as a single translation).

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        The celestial WCS the offset was measured through.
    offset : AstrometricOffset
        From `measure_offset`.

    Returns
    -------
    astropy.wcs.WCS
        A new WCS that puts the catalogued sources where the image shows them;
        `wcs` is unchanged.
    """
    out = wcs.deepcopy()
    out.wcs.crpix = offset.shifted_crpix(*out.wcs.crpix[:2])
    out.wcs.set()
    return out


def write_registered(path: str | os.PathLike, out: str | os.PathLike, offset: AstrometricOffset, *,
                     overwrite: bool = False) -> Path:
    """Write a copy of a FITS image whose WCS is shifted by `offset`.

    The data and every other header card are kept; ``CRPIX1``/``CRPIX2`` of
    the image HDU move by ``(dx, dy)`` and ``HISTORY`` cards say by how much
    and why. The file is written atomically.

    Parameters
    ----------
    path : str or path-like
        The FITS image to copy.
    out : str or path-like
        Where to write the copy; never the same file as `path`.
    offset : AstrometricOffset
        From `measure_offset` on this image (or on bands sharing its grid).
    overwrite : bool
        Replace an existing `out`; refused otherwise.

    Returns
    -------
    pathlib.Path
        `out`.

    Raises
    ------
    InputError
        If `out` is `path`, or exists and `overwrite` is False.
    FitsError
        If `path` has no image HDU with ``CRPIX1``/``CRPIX2``.
    """
    from astropy.io import fits

    from bubblenet.outputs import atomic_path
    from bubblenet.sky.mosaics import open_image

    path, out = Path(path), Path(out)
    if out.exists() and out.resolve() == path.resolve():
        raise InputError("the registered copy cannot replace the image it is made from; give another name", out)
    if out.exists() and not overwrite:
        raise InputError("the file exists; give another name, or overwrite=True (--overwrite) to replace it", out)
    image = open_image(path, check_data=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy's verify chatter about non-standard MWP cards
        with fits.open(path) as hdul:
            header = hdul[image.hdu].header
            if "CRPIX1" not in header or "CRPIX2" not in header:
                raise FitsError("no CRPIX1/CRPIX2 cards to shift", path)
            header["CRPIX1"], header["CRPIX2"] = offset.shifted_crpix(header["CRPIX1"], header["CRPIX2"])
            header.add_history(f"bubblenet: CRPIX shifted by ({offset.dx:+.3f}, {offset.dy:+.3f}) px "
                               f"+/- ({offset.dx_err:.3f}, {offset.dy_err:.3f}),")
            header.add_history(f"measured on {offset.n_sources} compact catalogued sources "
                               "(bubblenet.sky.astrometry.measure_offset)")
            with atomic_path(out) as tmp:
                hdul.writeto(tmp, overwrite=True, output_verify="silentfix")
    return out


def register_images(paths: Sequence[str | os.PathLike], out: str | os.PathLike, *, catalogue="wise_hii",
                    max_radius_arcmin: float = COMPACT_RADIUS_ARCMIN, min_sources: int = MIN_SOURCES,
                    write_copies: bool = True, overwrite: bool = False, labels: Sequence[str] | None = None,
                    options: dict | None = None) -> tuple[AstrometricOffset, list[Path]]:
    """Measure the WCS offset of images on one grid and write registered copies into a folder.

    Writes, into `out`: ``astrometry.json`` (the offset, the options and
    package versions), ``astrometry_sources.ecsv`` (every source tried),
    ``astrometry.png`` (a cut-out of each source in each band with its
    catalogued and measured positions, `bubblenet.plotting.plot_astrometry`)
    and, with `write_copies`, one ``<name>_registered.fits`` per image
    (`write_registered`). Copies an earlier run wrote into `out` and this
    one does not rewrite are removed: they were shifted by another
    measurement.

    Parameters
    ----------
    paths : sequence of path-like
        FITS images sharing one pixel grid (e.g. the 8 and 24 µm planes of a
        composite).
    out : path-like
        Output folder: new, empty, or an earlier ``register`` output
        (`bubblenet.outputs.claim_output_dir`).
    catalogue, max_radius_arcmin, min_sources
        As for `measure_offset`.
    write_copies : bool
        Write the registered copies (else only measure).
    overwrite : bool
        Write into a folder that holds other things.
    labels : sequence of str, optional
        A short name per image (``"8 µm"``) for the picture.
    options : dict, optional
        Recorded in ``astrometry.json`` (the verb passes its options).

    Returns
    -------
    tuple
        The `AstrometricOffset` and the paths of the copies written.

    Raises
    ------
    InputError
        If two images share a name, a copy would land on one of the inputs,
        `labels` does not give one name per image, or as `measure_offset`.
    """
    from bubblenet.outputs import atomic_path, claim_output_dir, run_record, write_json
    from bubblenet.plotting import plot_astrometry
    from bubblenet.sky.mosaics import open_image

    images = [open_image(p) for p in paths]
    if labels is not None and len(labels) != len(images):
        raise InputError(f"give one label per image: {len(labels)} label(s) for {len(images)} image(s)")
    copies = _copy_paths(images, Path(out))
    offset = measure_offset(images, catalogue, max_radius_arcmin=max_radius_arcmin, min_sources=min_sources)
    out = claim_output_dir(out, "register", overwrite=overwrite)
    earlier = _earlier_copies(out / RECORD_NAME)
    written = [write_registered(image.path, copy, offset, overwrite=True)
               for image, copy in zip(images, copies)] if write_copies else []
    for stale in earlier - {p.resolve() for p in written}:
        stale.unlink(missing_ok=True)
    with atomic_path(out / "astrometry_sources.ecsv") as tmp:
        offset.sources.write(tmp, format="ascii.ecsv", overwrite=True)
    record = run_record("register", dict(options or {}))
    record.update(offset=offset.as_dict(), registered=[str(p) for p in written])
    write_json(out / RECORD_NAME, record)  # before the picture: the numbers are what a run is for
    plot_astrometry(images, offset, out / "astrometry.png", labels=labels)
    return offset, written


def _copy_paths(images, out: Path) -> list[Path]:
    """Where each image's registered copy goes, refusing names that collide or land on an input."""
    copies = [out / f"{image.name}_registered.fits" for image in images]
    by_name: dict[str, Path] = {}
    for image in images:
        if image.name in by_name:
            raise InputError(f"two images share the name {image.name!r} ({by_name[image.name]} and {image.path}); "
                             "their registered copies would collide")
        by_name[image.name] = Path(image.path)
    inputs = {Path(image.path).resolve(): Path(image.path) for image in images}
    for copy in copies:
        if copy.resolve() in inputs:
            raise InputError(f"the registered copy {copy} would replace the input {inputs[copy.resolve()]}; give "
                             "another --out", copy)
    return copies


def _earlier_copies(record: Path) -> set[Path]:
    """The registered copies an earlier run's record lists and that still exist beside it."""
    import json

    try:
        listed = json.loads(record.read_text()).get("registered", [])
    except (OSError, ValueError, AttributeError):
        return set()
    folder = record.parent.resolve()
    paths = {Path(p).resolve() for p in listed if isinstance(p, str)}
    return {p for p in paths if p.parent == folder and p.name.endswith("_registered.fits") and p.exists()}
