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
from astropy.table import Table
from astropy.wcs import WCS

from bubblenet.errors import FitsError, InputError

__all__ = ["AstrometricOffset", "measure_offset", "centroid_near", "registered_wcs", "write_registered",
           "register_images", "COMPACT_RADIUS_ARCMIN"]

#: WISE HII regions at most this large (radius, arcmin) are centroided: a larger
#: region's emission is too structured for its centre to be its catalogued position.
COMPACT_RADIUS_ARCMIN = 0.9

#: Half-size (pixels) of the box whose median is a source's background.
_BACKGROUND_HALF = 15

#: Robust standard deviation of a normal distribution per unit median absolute deviation.
_MAD_TO_SIGMA = 1.4826


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
        Uncertainty of the medians: 1.4826 × MAD / √n over the sources used.
    pixel_scale_arcsec : float
        The image's pixel scale, arcsec per pixel.
    sources : astropy.table.Table
        One row per catalogued source tried: ``name, glon, glat, radius_px,
        band, x_wcs, y_wcs, x, y, dx, dy, used`` (a source measured in two
        bands has two rows; ``used`` is False for those rejected as
        outliers or unmeasurable).
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
        used = self.sources[self.sources["used"]]
        return len(set(used["name"]))

    @property
    def offset_arcsec(self) -> float:
        """Length of the offset, arcsec."""
        return float(np.hypot(self.dx, self.dy) * self.pixel_scale_arcsec)

    @property
    def significance(self) -> float:
        """Offset length over its uncertainty (above ~3: the WCS is measurably off)."""
        err = np.hypot(self.dx_err * self.dx, self.dy_err * self.dy) / max(np.hypot(self.dx, self.dy), 1e-12)
        return float(np.hypot(self.dx, self.dy) / max(err, 1e-12))

    def as_dict(self) -> dict:
        """The numbers, for a JSON record."""
        return {"dx_px": self.dx, "dy_px": self.dy, "dx_err_px": self.dx_err, "dy_err_px": self.dy_err,
                "offset_arcsec": self.offset_arcsec, "significance": self.significance,
                "pixel_scale_arcsec": self.pixel_scale_arcsec, "n_sources": self.n_sources,
                "images": list(self.images)}


def centroid_near(data: np.ndarray, x: float, y: float, radius: float, *, iterations: int = 5,
                  background_half: int = _BACKGROUND_HALF) -> tuple[float, float] | None:
    """Iterated, background-subtracted, flux-weighted centroid of the source near ``(x, y)``.

    The background is the median of a ``2 × background_half`` pixel box
    around the start; the centroid (`photutils.centroids.centroid_com`) is
    taken over the pixels within `radius` of the current estimate, above the
    background, and the circle is moved there, `iterations` times.

    Parameters
    ----------
    data : ndarray
        ``(ny, nx)`` image; NaN pixels are left out.
    x, y : float
        Starting position, pixels (0-based, FITS row 0 at the bottom).
    radius : float
        Aperture radius, pixels.
    iterations : int
        Times the aperture is re-centred.
    background_half : int
        Half-size of the background box, pixels.

    Returns
    -------
    tuple of float or None
        ``(x, y)`` of the centroid, or None where the aperture holds no flux
        above the background or leaves the image.
    """
    from photutils.centroids import centroid_com

    ny, nx = data.shape
    x0, y0 = int(round(x)), int(round(y))
    box = data[max(0, y0 - background_half):y0 + background_half, max(0, x0 - background_half):x0 + background_half]
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
        outside = (ii - cx) ** 2 + (jj - cy) ** 2 > radius ** 2
        weights = np.where(outside | ~np.isfinite(cut), 0.0, np.clip(cut, 0.0, None))
        if weights.sum() <= 0:
            return None
        mx, my = centroid_com(weights)
        cx, cy = i0 + float(mx), j0 + float(my)
    return cx, cy


def _compact_sources(catalogue, max_radius_arcmin: float) -> Table:
    from bubblenet.evaluation.scoring import reference_catalogue

    table = reference_catalogue(catalogue) if isinstance(catalogue, (str, os.PathLike)) else catalogue
    return table[np.asarray(table["reff"], float) <= max_radius_arcmin]


def _same_grid(images) -> None:
    first = images[0]
    for image in images[1:]:
        if image.shape != first.shape:
            raise InputError(f"images to measure together must share one pixel grid; {image.name} is "
                             f"{image.shape}, {first.name} is {first.shape}", image.path)
        corners = np.array([[0, 0], [first.shape[1] - 1, first.shape[0] - 1]], float)
        a = first.wcs.pixel_to_world_values(corners[:, 0], corners[:, 1])
        b = image.wcs.pixel_to_world_values(corners[:, 0], corners[:, 1])
        scale = abs(first.wcs.proj_plane_pixel_scales()[0].to_value("deg"))
        if np.max(np.abs(np.subtract(a, b))) > 0.01 * scale:
            raise InputError(f"images to measure together must share one pixel grid; {image.name}'s WCS "
                             f"differs from {first.name}'s", image.path)


def _robust_median(values: np.ndarray) -> tuple[float, float, float]:
    """Median, 1.4826 × MAD, and the median's uncertainty 1.4826 × MAD / √n."""
    median = float(np.median(values))
    sigma = _MAD_TO_SIGMA * float(np.median(np.abs(values - median)))
    return median, sigma, float(sigma / np.sqrt(len(values)))


def measure_offset(images: Sequence, catalogue="wise_hii", *, max_radius_arcmin: float = COMPACT_RADIUS_ARCMIN,
                   min_sources: int = 3, edge: int = 15, clip: float = 4.0, max_shift: float = 6.0
                   ) -> AstrometricOffset:
    """Measure how far an image's emission lies from where its WCS puts catalogued compact sources.

    Each compact source (radius ≤ `max_radius_arcmin`) inside the image is
    centroided in every image given (`centroid_near`, aperture radius = the
    source's radius, at least 3 pixels); a source's offset is the mean over
    the images, and the result is the median over sources, after dropping
    those more than `clip` robust standard deviations (at least 0.5 px)
    from it.

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
        Fewest sources that make a measurement.
    edge : int
        Sources within this many pixels of the image edge are skipped.
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
        If the images do not share a grid, or fewer than `min_sources`
        sources could be measured (the message names the image).
    """
    if not images:
        raise InputError("give at least one image to measure")
    _same_grid(images)
    first = images[0]
    scale_arcsec = float(abs(first.wcs.proj_plane_pixel_scales()[0].to_value("arcsec")))
    table = _compact_sources(catalogue, max_radius_arcmin)
    from astropy.coordinates import SkyCoord

    from bubblenet.sky.mosaics import Window

    coords = SkyCoord(np.asarray(table["glon"], float), np.asarray(table["glat"], float), unit="deg",
                      frame="galactic")
    x, y = first.wcs.world_to_pixel(coords)  # converts to the image's frame (e.g. ICRS) where needed
    ny, nx = first.shape
    inside = np.isfinite(x) & np.isfinite(y) & (x > edge) & (x < nx - 1 - edge) & (y > edge) & (y < ny - 1 - edge)
    rows = []
    for i in np.nonzero(inside)[0]:
        radius = max(3.0, float(table["reff"][i]) * 60.0 / scale_arcsec)
        # Read a cut-out per source, not the whole image: survey mosaics can be gigabytes.
        half = max(_BACKGROUND_HALF, int(np.ceil(radius + max_shift)) + 2)
        window = Window(int(round(x[i])) - half, int(round(y[i])) - half, 2 * half + 1, 2 * half + 1)
        for image in images:
            found = centroid_near(image.read(window), x[i] - window.x0, y[i] - window.y0, radius)
            cx, cy = (window.x0 + found[0], window.y0 + found[1]) if found is not None else (np.nan, np.nan)
            rows.append((str(table["name"][i]), float(table["glon"][i]), float(table["glat"][i]), radius,
                         image.name, float(x[i]), float(y[i]), cx, cy, cx - x[i], cy - y[i]))
    names = ["name", "glon", "glat", "radius_px", "band", "x_wcs", "y_wcs", "x", "y", "dx", "dy"]
    sources = Table(rows=rows, names=names) if rows else Table(names=names, dtype=[str, float, float, float, str]
                                                              + [float] * 6)
    sources["used"] = np.isfinite(np.asarray(sources["dx"], float)) & (
        np.hypot(sources["dx"], sources["dy"]) <= max_shift)
    where = " and ".join(image.name for image in images)
    per_source = _per_source_offsets(sources)
    if len(per_source) >= min_sources:
        offsets = np.array(list(per_source.values()))
        keep = np.ones(len(offsets), bool)
        for axis in (0, 1):
            median, sigma, _ = _robust_median(offsets[:, axis])
            keep &= np.abs(offsets[:, axis] - median) <= clip * max(sigma, 0.5)
        rejected = {name for name, k in zip(per_source, keep) if not k}
        sources["used"] &= ~np.isin(np.asarray(sources["name"]), list(rejected))
        per_source = _per_source_offsets(sources)
    if len(per_source) < min_sources:
        raise InputError(f"only {len(per_source)} compact catalogued source(s) (radius <= {max_radius_arcmin}') "
                         f"could be centroided in {where}; at least {min_sources} are needed to measure its "
                         "WCS offset", first.path)
    offsets = np.array(list(per_source.values()))
    dx, _, dx_err = _robust_median(offsets[:, 0])
    dy, _, dy_err = _robust_median(offsets[:, 1])
    return AstrometricOffset(dx, dy, dx_err, dy_err, scale_arcsec, sources,
                             tuple(str(image.path) for image in images))


def _per_source_offsets(sources: Table) -> dict[str, tuple[float, float]]:
    """Each used source's offset, averaged over the bands it was measured in."""
    used = sources[sources["used"]]
    out: dict[str, tuple[float, float]] = {}
    for name in dict.fromkeys(used["name"]):
        rows = used[used["name"] == name]
        out[str(name)] = (float(np.mean(rows["dx"])), float(np.mean(rows["dy"])))
    return out


def registered_wcs(wcs: WCS, offset: AstrometricOffset) -> WCS:
    """A copy of `wcs` with its reference pixel moved by the measured offset.

    A pure shift: the pixel scale and rotation are kept (the offset is measured
    as a single translation).
    """
    out = wcs.deepcopy()
    out.wcs.crpix = [out.wcs.crpix[0] + offset.dx, out.wcs.crpix[1] + offset.dy]
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
            header["CRPIX1"] = float(header["CRPIX1"]) + offset.dx
            header["CRPIX2"] = float(header["CRPIX2"]) + offset.dy
            header.add_history(f"bubblenet: CRPIX shifted by ({offset.dx:+.3f}, {offset.dy:+.3f}) px "
                               f"+/- ({offset.dx_err:.3f}, {offset.dy_err:.3f}),")
            header.add_history(f"measured on {offset.n_sources} compact catalogued sources "
                               "(bubblenet.sky.astrometry.measure_offset)")
            with atomic_path(out) as tmp:
                hdul.writeto(tmp, overwrite=True, output_verify="silentfix")
    return out


def register_images(paths: Sequence[str | os.PathLike], out: str | os.PathLike, *, catalogue="wise_hii",
                    max_radius_arcmin: float = COMPACT_RADIUS_ARCMIN, min_sources: int = 3,
                    write_copies: bool = True, overwrite: bool = False, labels: Sequence[str] | None = None,
                    options: dict | None = None) -> tuple[AstrometricOffset, list[Path]]:
    """Measure the WCS offset of images on one grid and write registered copies into a folder.

    Writes, into `out`: ``astrometry.json`` (the offset, the options and
    package versions), ``astrometry_sources.ecsv`` (every source tried),
    ``astrometry.png`` (a cut-out of each source in each band with its
    catalogued and measured positions, `bubblenet.plotting.plot_astrometry`)
    and, with `write_copies`, one ``<name>_registered.fits`` per image
    (`write_registered`).

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
    """
    from bubblenet.outputs import atomic_path, claim_output_dir, run_record, write_json
    from bubblenet.plotting import plot_astrometry
    from bubblenet.sky.mosaics import open_image

    images = [open_image(p) for p in paths]
    names = [image.name for image in images]
    if len(set(names)) < len(names):
        raise InputError(f"two images share the name {max(names, key=names.count)!r}; their registered copies "
                         "would collide")
    offset = measure_offset(images, catalogue, max_radius_arcmin=max_radius_arcmin, min_sources=min_sources)
    out = claim_output_dir(out, "register", overwrite=overwrite)
    written = [write_registered(image.path, out / f"{image.name}_registered.fits", offset, overwrite=True)
               for image in images] if write_copies else []
    with atomic_path(out / "astrometry_sources.ecsv") as tmp:
        offset.sources.write(tmp, format="ascii.ecsv", overwrite=True)
    plot_astrometry(images, offset, out / "astrometry.png", labels=labels)
    record = run_record("register", dict(options or {}))
    record.update(offset=offset.as_dict(), registered=[str(p) for p in written])
    write_json(out / "astrometry.json", record)
    return offset, written
