"""Survey images on the sky: lazy FITS access, band pairing and two-band tiles.

A survey is a set of 8 µm mosaics (GLIMPSE ``GLM_*_mosaic_I4.fits``) and a set of
24 µm mosaics (MIPSGAL ``MG*_024.fits``), or any 2-D FITS images with a celestial
WCS. The two surveys have their own tile boundaries, pixel scales and reference
pixels, so the bands are paired by where they lie on the sky, never by file
name, and the 24 µm data are resampled onto the 8 µm pixel grid one window
at a time (`bubblenet.sky.resampling`: reproject's bilinear interpolation, the
pixel mapping computed exactly on a coarse grid).

Conventions (see `bubblenet.conventions`): arrays are indexed ``(y, x)``; pixel
coordinates are 0-based with integers at pixel centres, as astropy's WCS
methods use; a two-band array is ``(ny, nx, 2)`` with channels in
`bubblenet.conventions.CHANNELS` order (24 µm, then 8 µm).

NaN handling follows Nishimoto et al. (2025, PASJ 77, 403): survey edges and
holes are NaN in the mosaics; small holes (up to `SMALL_HOLE_AREA` pixels, e.g.
masked cosmic rays or saturated star cores) are filled by interpolation from
their surroundings, while larger NaN areas (survey edges, missing coverage)
are kept as NaN, and a window that still contains NaN is not usable for
training or detection (`is_usable`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from astropy import units as u
from astropy.convolution import Gaussian2DKernel, interpolate_replace_nans
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales
from scipy import ndimage

from bubblenet.conventions import CHANNEL_8UM, CHANNEL_24UM, CHANNELS, image_box
from bubblenet.errors import FitsError
from bubblenet.sky.resampling import pixel_mapping, resample_bilinear

# Large NaN areas are left NaN on purpose by `fill_small_holes`; astropy's
# warning about them is noise. Filtered once (catch_warnings is not thread-safe).
warnings.filterwarnings("ignore", message="nan_treatment='interpolate', however, NaN values detected")

__all__ = [
    "Window",
    "SkyImage",
    "SkyTile",
    "open_image",
    "pair_bands",
    "open_survey",
    "gather_survey_files",
    "find_survey_files",
    "fill_small_holes",
    "is_usable",
    "shift_wcs",
    "bin_wcs",
    "SMALL_HOLE_AREA",
]

log = logging.getLogger(__name__)

#: Largest NaN hole, in pixels, that is filled by interpolation rather than
#: treated as missing sky: about a 5 x 5 px patch, the size of a masked
#: saturated star core or cosmic-ray cluster at GLIMPSE's 1.2"/px.
SMALL_HOLE_AREA = 25

#: Pixels read around a window when filling holes, so that holes cut by the
#: window's edge are judged by their whole size (a hole of SMALL_HOLE_AREA
#: pixels is at most that long).
_HOLE_MARGIN = 8
#: wcslib keeps scratch space in each WCS: transformations that may run in several threads
#: (`SkyTile.read` from `bubblenet.sky.tilecache`) take this lock.
_WCS_LOCK = threading.RLock()

#: Rows read at a time when scanning a whole image (bounded memory).
_SCAN_ROWS = 512


@dataclasses.dataclass(frozen=True)
class Window:
    """A rectangular pixel window ``[y0, y0 + ny) x [x0, x0 + nx)``.

    The window may extend beyond the image; reads pad the outside with NaN.
    """

    x0: int
    y0: int
    nx: int
    ny: int

    def __post_init__(self):
        if self.nx <= 0 or self.ny <= 0:
            raise ValueError(f"window must have positive size, got nx={self.nx}, ny={self.ny}")

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)``."""
        return (self.ny, self.nx)

    @classmethod
    def centred(cls, x: float, y: float, half: float) -> "Window":
        """The square window of half-size `half` pixels centred on pixel ``(x, y)``."""
        size = max(int(round(2 * half)), 1)
        return cls(int(round(x - size / 2 + 0.5)), int(round(y - size / 2 + 0.5)), size, size)


def shift_wcs(wcs: WCS, x0: float, y0: float) -> WCS:
    """The WCS of a window whose pixel (0, 0) is pixel ``(x0, y0)`` of `wcs`.

    Unlike ``wcs[y0:, x0:]`` this works for windows that start outside the
    image (negative offsets).
    """
    out = wcs.deepcopy()
    out.wcs.crpix = out.wcs.crpix - np.array([x0, y0], dtype=float)
    if out.array_shape is not None:
        out.array_shape = None
    return out


def bin_wcs(wcs: WCS, factor: int) -> WCS:
    """The WCS of an image block-averaged by `factor` (pixel (0, 0) = mean of the first block).

    Written out rather than ``wcs[::factor, ::factor]`` because astropy's
    slicing does not rescale a ``CD`` matrix (GLIMPSE headers use one).
    """
    out = wcs.deepcopy()
    if out.wcs.has_cd():
        cd = out.wcs.cd.copy()
        del out.wcs.cd
        out.wcs.pc = cd
        out.wcs.cdelt = [1.0, 1.0]
    out.wcs.cdelt = np.asarray(out.wcs.cdelt) * factor
    # FITS pixel p (1-based) of the fine grid sits at (p - 0.5) / factor + 0.5 on the coarse one.
    out.wcs.crpix = (np.asarray(out.wcs.crpix) - 0.5) / factor + 0.5
    out.array_shape = None
    out.wcs.set()
    return out


#: Units of uncalibrated images (display bytes, counts): fine, since every window is normalised on its own.
_RAW_UNIT_BASES = {u.bit, u.byte, u.DN, u.adu, u.count, u.photon, u.s}


def _check_unit(bunit, path: Path) -> str | None:
    """`bunit` if it can be an infrared image's unit, else a `FitsError`.

    Accepted: no ``BUNIT``; a surface brightness (MJy/sr as GLIMPSE and
    MIPSGAL, W m-2 sr-1 as MSX ...); uncalibrated counts or display values
    (``8bit``, ``DN/s``); and unit strings astropy cannot parse (nothing can be
    said of them). Rejected: units of something else, such as a radio map's
    ``K`` or ``Jy/beam``, a flux per pixel or magnitudes.
    """
    text = str(bunit).strip() if bunit is not None else ""
    if not text:
        return None
    try:
        unit = u.Unit(text, format="fits", parse_strict="raise")
    except ValueError:
        try:
            unit = u.Unit(text, parse_strict="raise")
        except ValueError:
            log.debug("%s: unit %r not understood; used as is", path, text)
            return text
    if unit.is_equivalent(u.MJy / u.sr) or unit.is_equivalent(u.W / u.m**2 / u.sr):
        return text
    if set(unit.decompose().bases) <= _RAW_UNIT_BASES:
        return text
    kind = f" ({unit.physical_type})" if str(unit.physical_type) != "unknown" else ""
    raise FitsError(f"BUNIT {text!r}{kind} is not a surface brightness: expected images in "
                    "MJy/sr like GLIMPSE and MIPSGAL (or another surface-brightness unit, or raw counts)", path)


def _celestial_wcs(header: fits.Header, path: Path) -> WCS:
    """The 2-D celestial WCS of an image header, or a `FitsError` saying why not."""
    with warnings.catch_warnings():
        # Survey headers carry non-standard keywords that astropy fixes noisily.
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header)
        except Exception as err:  # astropy raises several types for bad WCS
            raise FitsError(f"cannot parse the WCS ({err})", path) from None
    if not wcs.has_celestial:
        ctypes = [header.get(f"CTYPE{i}", "<missing>") for i in (1, 2)]
        raise FitsError(
            f"no celestial WCS: CTYPE1/CTYPE2 are {ctypes[0]!r}/{ctypes[1]!r}, "
            "expected sky axes such as 'GLON-CAR'/'GLAT-CAR' or 'RA---TAN'/'DEC--TAN'",
            path,
        )
    if sorted([wcs.wcs.lng, wcs.wcs.lat]) != [0, 1]:
        raise FitsError("the celestial axes are not the first two image axes", path)
    return wcs.celestial


@dataclasses.dataclass
class _Stats:
    finite_fraction: float
    vmin: float
    vmax: float


class SkyImage:
    """One 2-D FITS image with a celestial WCS, read lazily by window.

    Use `open_image` to make one. Data are never loaded whole: windows are
    read through ``HDU.section`` (memory-mapped for uncompressed files).

    Attributes
    ----------
    path : pathlib.Path
        The FITS file.
    hdu : int
        Index of the image HDU in the file.
    shape : tuple of int
        ``(ny, nx)``.
    wcs : astropy.wcs.WCS
        The 2-D celestial WCS.
    unit : str or None
        ``BUNIT`` of the image (e.g. ``'MJy/sr'``).
    header : astropy.io.fits.Header
        The image header.
    """

    def __init__(self, path: Path, hdu: int, header: fits.Header, shape: tuple[int, int],
                 lead: tuple[int, ...]):
        self.path = path
        self.hdu = hdu
        self.header = header
        self.shape = shape
        self._lead = lead  # zero indices for degenerate leading axes (NAXIS3 = 1 ...)
        self.wcs = _celestial_wcs(header, path)
        self.unit = _check_unit(header.get("BUNIT"), path)
        self._hdul = None
        self._array = None  # the data, for an image held in memory (`from_array`)
        self._lock = threading.Lock()  # one reader of the file handle at a time

    @classmethod
    def from_array(cls, data, wcs, *, name: str = "memory", unit: str | None = None) -> "SkyImage":
        """An image held in memory: a 2-D array and its celestial WCS (or a FITS header holding one).

        Parameters
        ----------
        data : array_like
            ``(ny, nx)``, row 0 at the bottom as in a FITS file.
        wcs : astropy.wcs.WCS or astropy.io.fits.Header
        name : str
            Stands for the file name in tile names and messages.
        unit : str, optional
            ``BUNIT`` (surface brightness, e.g. ``'MJy/sr'``); the header's by default.

        Raises
        ------
        FitsError
            If the array is not 2-D, has no celestial WCS, or is all NaN or constant.
        """
        path = Path(name)
        data = np.asarray(data, dtype=np.float32)
        if data.ndim != 2:
            raise FitsError(f"expected a 2-D image, got an array of shape {data.shape}", path)
        if not isinstance(wcs, (fits.Header, WCS)):
            raise FitsError(f"expected an astropy WCS or FITS header, got {type(wcs).__name__}", path)
        header = wcs.copy() if isinstance(wcs, fits.Header) else wcs.to_header()
        header["NAXIS"], header["NAXIS1"], header["NAXIS2"] = 2, data.shape[1], data.shape[0]
        if unit is not None:
            header["BUNIT"] = unit
        image = cls(path, 0, header, data.shape, ())
        image._array = data
        _check_values(image)
        return image

    def fingerprint(self) -> str:
        """What the image's data depend on: the file's resolved path, HDU, size and modification time, or,
        for an image held in memory, a digest of its values (caches and partial results are keyed by it)."""
        if self._array is not None:
            import hashlib

            return f"memory:{self.path}:{hashlib.sha256(self._array.tobytes()).hexdigest()[:20]}"
        stat = self.path.stat()
        return f"{self.path.resolve()}:{self.hdu}:{stat.st_size}:{stat.st_mtime_ns}"

    # -- file handle: opened on first read, dropped when pickled (for workers) --
    def _open(self):
        if self._array is not None:
            return _MemoryHDU(self._array)
        if self._hdul is None:
            self._hdul = fits.open(self.path, memmap=True, lazy_load_hdus=True)
        return self._hdul[self.hdu]

    def close(self) -> None:
        """Close the file handle (it reopens on the next read)."""
        with self._lock:
            if self._hdul is not None:
                self._hdul.close()
                self._hdul = None

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_hdul"] = None
        del state["_lock"]
        # astropy's own WCS pickling re-serialises the WCS and rounds it (1e-7 relative differences in the
        # reprojected 24 µm plane): rebuild it from the FITS header instead, so that a Dask worker gets
        # exactly the driver's WCS and the same detections.
        del state["wcs"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()
        self.wcs = _celestial_wcs(self.header, self.path)

    def __repr__(self) -> str:
        return f"SkyImage({str(self.path)!r}, shape={self.shape}, frame={self.frame!r})"

    @property
    def name(self) -> str:
        """File name without FITS extensions."""
        name = self.path.name
        for ext in (".gz", ".fz", ".fits", ".fit", ".fts"):
            name = name.removesuffix(ext)
        return name

    @property
    def frame(self) -> str:
        """Celestial frame of the WCS, e.g. ``'galactic'`` or ``'icrs'``."""
        return self.wcs.pixel_to_world(0, 0).frame.name

    @property
    def pixel_scale(self) -> u.Quantity:
        """Mean pixel side at the reference point, in arcsec."""
        scales = proj_plane_pixel_scales(self.wcs) * u.Unit(self.wcs.wcs.cunit[0] or "deg")
        return float(np.sqrt(scales[0] * scales[1]).to_value(u.arcsec)) * u.arcsec

    def read(self, window: Window | None = None) -> np.ndarray:
        """Read a window of the image as float32, NaN outside the image.

        Parameters
        ----------
        window : Window, optional
            The pixels to read; the whole image when omitted.
        """
        ny, nx = self.shape
        if window is None:
            window = Window(0, 0, nx, ny)
        out = np.full(window.shape, np.nan, dtype=np.float32)
        ya, yb = max(window.y0, 0), min(window.y0 + window.ny, ny)
        xa, xb = max(window.x0, 0), min(window.x0 + window.nx, nx)
        if ya >= yb or xa >= xb:
            return out
        try:
            with self._lock:
                block = self._open().section[self._lead + (slice(ya, yb), slice(xa, xb))]
        except (OSError, ValueError, TypeError) as err:
            raise FitsError(f"cannot read image data ({err})", self.path) from None
        out[ya - window.y0:yb - window.y0, xa - window.x0:xb - window.x0] = block
        return out

    def read_binned(self, factor: int) -> tuple[np.ndarray, WCS]:
        """The whole image block-averaged by `factor` (NaN-aware), with its WCS.

        Read in strips of rows, so memory stays bounded for large mosaics.
        """
        factor = max(int(factor), 1)
        shape = (self.shape[0] // factor, self.shape[1] // factor)
        return _block_mean(self, factor, shape), bin_wcs(self.wcs, factor)

    def scan(self) -> _Stats:
        """Finite fraction and range of the data, read in strips of rows."""
        ny, nx = self.shape
        finite, vmin, vmax = 0, np.inf, -np.inf
        for y0 in range(0, ny, _SCAN_ROWS):
            block = self.read(Window(0, y0, nx, min(_SCAN_ROWS, ny - y0)))
            ok = np.isfinite(block)
            n = int(ok.sum())
            if n:
                finite += n
                vmin = min(vmin, float(block[ok].min()))
                vmax = max(vmax, float(block[ok].max()))
        return _Stats(finite / (nx * ny), vmin, vmax)

    def footprint(self, n_per_side: int = 8) -> SkyCoord:
        """Points along the image border (pixel edges), in the image's frame."""
        t = np.linspace(0.0, 1.0, n_per_side, endpoint=False)
        x0, y0, x1, y1 = image_box(self.shape)
        xs = np.concatenate([x0 + t * (x1 - x0), np.full_like(t, x1), x1 - t * (x1 - x0), np.full_like(t, x0)])
        ys = np.concatenate([np.full_like(t, y0), y0 + t * (y1 - y0), np.full_like(t, y1), y1 - t * (y1 - y0)])
        return self.wcs.pixel_to_world(xs, ys)

    def centre_and_radius(self) -> tuple[SkyCoord, u.Quantity]:
        """Sky position of the image centre and the largest distance to its border."""
        ny, nx = self.shape
        centre = self.wcs.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
        return centre, centre.separation(self.footprint()).max()

    def pixel_bounds_of(self, coords: SkyCoord, margin: float = 0.0) -> tuple[float, float, float, float] | None:
        """Pixel bounding box ``(xmin, ymin, xmax, ymax)`` of sky points in this image.

        Returns None when no point projects to a finite pixel position.
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            x, y = self.wcs.world_to_pixel(coords)
        ok = np.isfinite(x) & np.isfinite(y)
        if not ok.any():
            return None
        return (x[ok].min() - margin, y[ok].min() - margin, x[ok].max() + margin, y[ok].max() + margin)


def open_image(path: str | os.PathLike, *, hdu: int | None = None, check_data: bool = True) -> SkyImage:
    """Open a 2-D FITS image with a celestial WCS, without loading its data.

    Parameters
    ----------
    path : str or path-like
        A FITS file (gzip-compressed and tile-compressed files work too).
    hdu : int, optional
        The HDU to use; by default the first HDU holding an image.
    check_data : bool
        Scan the data once (in strips) and refuse images that are all NaN or
        constant.

    Returns
    -------
    SkyImage

    Raises
    ------
    FitsError
        If the file cannot be read, holds no 2-D image, has no celestial WCS,
        or (with `check_data`) its data are all NaN or constant.
    """
    path = Path(path)
    if not path.is_file():
        raise FitsError("no such file", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy's verify chatter: our own error follows
            with fits.open(path, memmap=True, lazy_load_hdus=False) as hdul:
                index = _image_hdu_index(hdul, hdu, path)
                header = hdul[index].header.copy()
                if hdul[index].data is None:
                    raise FitsError(f"HDU {index} holds no data", path)
    except FitsError:
        raise
    except Exception as err:  # truncated or non-FITS files fail in many ways
        raise FitsError(f"not a readable FITS file ({type(err).__name__}: {err})", path) from None
    shape, lead = _image_shape(header, path)
    image = SkyImage(path, index, header, shape, lead)
    if check_data:
        _check_values(image)
        image.close()
    return image


class _MemoryHDU:
    """What `SkyImage.read` needs of an HDU (its ``section``), for an array in memory."""

    def __init__(self, array: np.ndarray):
        self.section = array


def _check_values(image: SkyImage) -> None:
    """Refuse an image that is all NaN or constant, naming it."""
    stats = image.scan()
    if stats.finite_fraction == 0:
        raise FitsError("the image is all NaN (no data)", image.path)
    if stats.vmin == stats.vmax:
        raise FitsError(f"the image is constant ({stats.vmin:g} everywhere): no sky signal", image.path)


def _image_hdu_index(hdul: fits.HDUList, hdu: int | None, path: Path) -> int:
    if hdu is not None:
        if not 0 <= hdu < len(hdul):
            raise FitsError(f"has no HDU {hdu} (it has {len(hdul)})", path)
        return hdu
    for i, h in enumerate(hdul):
        if h.is_image and h.header.get("NAXIS", 0) >= 2:
            return i
    raise FitsError("holds no image HDU with two or more axes", path)


def _image_shape(header: fits.Header, path: Path) -> tuple[tuple[int, int], tuple[int, ...]]:
    """``(ny, nx)`` of the first two axes, and zero indices for degenerate extra axes."""
    naxis = header["ZNAXIS"] if "ZNAXIS" in header else header["NAXIS"]
    key = "ZNAXIS" if "ZNAXIS" in header else "NAXIS"
    sizes = [header[f"{key}{i}"] for i in range(1, naxis + 1)]
    if any(n != 1 for n in sizes[2:]):
        raise FitsError(f"is a cube of shape {tuple(reversed(sizes))}: expected one 2-D image", path)
    return (sizes[1], sizes[0]), (0,) * (naxis - 2)


def _overlaps(a: SkyImage, b: SkyImage) -> bool:
    """Whether two images share any sky (tested in `a`'s pixel frame)."""
    ca, ra = a.centre_and_radius()
    cb, rb = b.centre_and_radius()
    if ca.separation(cb) > ra + rb:
        return False
    bounds = a.pixel_bounds_of(b.footprint(16))
    if bounds is None:
        return False
    lo_x, lo_y, hi_x, hi_y = image_box(a.shape)
    xmin, ymin, xmax, ymax = bounds
    return xmin < hi_x and xmax > lo_x and ymin < hi_y and ymax > lo_y


def pair_bands(images8: Sequence[SkyImage], images24: Sequence[SkyImage]) -> list["SkyTile"]:
    """Pair every 8 µm image with the 24 µm images that overlap it on the sky.

    Parameters
    ----------
    images8, images24 : sequence of SkyImage
        The two bands, in any order and with any tiling.

    Returns
    -------
    list of SkyTile
        One tile per 8 µm image, on the 8 µm pixel grid.

    Raises
    ------
    FitsError
        If an 8 µm image has no overlapping 24 µm image, or a 24 µm image
        overlaps no 8 µm image (naming the file).
    """
    if not images8:
        raise FitsError("no 8 µm image given")
    if not images24:
        raise FitsError("no 24 µm image given")
    partners = {id(b): 0 for b in images24}
    tiles = []
    for a in images8:
        matched = [b for b in images24 if _overlaps(a, b)]
        if not matched:
            raise FitsError("no 24 µm image overlaps this 8 µm image on the sky (bands do not overlap)", a.path)
        for b in matched:
            partners[id(b)] += 1
        tiles.append(SkyTile(a, matched))
    for b in images24:
        if not partners[id(b)]:
            raise FitsError("this 24 µm image overlaps no 8 µm image on the sky (bands do not overlap)", b.path)
    return tiles


def open_survey(files8: Iterable[str | os.PathLike], files24: Iterable[str | os.PathLike]) -> list["SkyTile"]:
    """Open 8 µm and 24 µm FITS files and pair them by sky overlap.

    Returns
    -------
    list of SkyTile
        One per 8 µm file, in the order given.
    """
    return pair_bands([open_image(f) for f in files8], [open_image(f) for f in files24])


#: File-name patterns of the two bands in a survey folder: GLIMPSE and
#: MIPSGAL archive names first, then generic ones.
PATTERNS_8UM = ("GLM_*_mosaic_I4.fits*", "*_I4.fits*", "*8um*.fits*")
PATTERNS_24UM = ("MG*_024.fits*", "*_024.fits*", "*24um*.fits*")


def gather_survey_files(folder: str | os.PathLike | None = None, files8: Iterable = (),
                        files24: Iterable = ()) -> tuple[list[Path], list[Path]]:
    """Files given one by one plus those of a survey folder (`find_survey_files`), 8 µm and 24 µm."""
    files8, files24 = [Path(f) for f in files8], [Path(f) for f in files24]
    if folder is not None:
        found8, found24 = find_survey_files(folder)
        files8, files24 = files8 + found8, files24 + found24
    return files8, files24


def find_survey_files(folder: str | os.PathLike) -> tuple[list[Path], list[Path]]:
    """The 8 µm and 24 µm FITS files in a folder, recognised by survey file names.

    Only the names sort files into bands; which files go together is decided
    later by sky overlap (`pair_bands`).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FitsError("not a folder", folder)

    def first_match(patterns):
        for pattern in patterns:
            found = sorted(folder.glob(pattern))
            if found:
                return found
        return []

    files8, files24 = first_match(PATTERNS_8UM), first_match(PATTERNS_24UM)
    if not files8 or not files24:
        raise FitsError(
            f"found {len(files8)} 8 µm and {len(files24)} 24 µm FITS files; expected names like "
            "GLM_01200+0000_mosaic_I4.fits and MG0120p005_024.fits",
            folder,
        )
    return files8, files24


class SkyTile:
    """An 8 µm image and the 24 µm data on its pixel grid, read by window.

    Parameters
    ----------
    image8 : SkyImage
        The 8 µm image; it defines the tile's pixel grid and WCS.
    images24 : sequence of SkyImage
        The 24 µm images overlapping it (any grid, any celestial frame).
    """

    def __init__(self, image8: SkyImage, images24: Sequence[SkyImage]):
        self.image8 = image8
        self.images24 = tuple(images24)

    def __repr__(self) -> str:
        return f"SkyTile({self.name!r}, shape={self.shape}, n24={len(self.images24)})"

    @property
    def name(self) -> str:
        """Name of the 8 µm file, without extension."""
        return self.image8.name

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of the 8 µm grid."""
        return self.image8.shape

    @property
    def wcs(self) -> WCS:
        """Celestial WCS of the 8 µm grid."""
        return self.image8.wcs

    @property
    def pixel_scale(self) -> u.Quantity:
        """Pixel side of the 8 µm grid, arcsec."""
        return self.image8.pixel_scale

    def pixel_to_world(self, x, y) -> SkyCoord:
        """Sky positions of 0-based pixel coordinates."""
        return self.wcs.pixel_to_world(x, y)

    def world_to_pixel(self, coords: SkyCoord) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel coordinates ``(x, y)`` of sky positions (any frame)."""
        return self.wcs.world_to_pixel(coords)

    def window_wcs(self, window: Window) -> WCS:
        """The WCS of a window's pixel grid."""
        return shift_wcs(self.wcs, window.x0, window.y0)

    def read(self, window: Window | None = None, *, fill_holes: bool = True) -> np.ndarray:
        """The two bands over a window of the 8 µm grid.

        Parameters
        ----------
        window : Window, optional
            Pixels of the 8 µm grid; the whole tile when omitted (mind the memory).
        fill_holes : bool
            Fill NaN holes of at most `SMALL_HOLE_AREA` pixels (`fill_small_holes`).

        Returns
        -------
        numpy.ndarray
            ``(ny, nx, 2)`` float32, channels in `bubblenet.conventions.CHANNELS`
            order, NaN where a band has no data.
        """
        if window is None:
            window = Window(0, 0, self.shape[1], self.shape[0])
        out = np.empty(window.shape + (len(CHANNELS),), dtype=np.float32)
        out[..., CHANNEL_24UM] = self.read24(window, fill_holes=fill_holes)
        if fill_holes:
            # Holes are judged on a margin around the window, so one cut by the
            # window's edge is not mistaken for a small one.
            m = _HOLE_MARGIN
            padded = self.image8.read(Window(window.x0 - m, window.y0 - m, window.nx + 2 * m, window.ny + 2 * m))
            out[..., CHANNEL_8UM] = fill_small_holes(padded)[m:-m, m:-m]
        else:
            out[..., CHANNEL_8UM] = self.image8.read(window)
        return out

    def read24(self, window: Window, *, fill_holes: bool = True) -> np.ndarray:
        """The 24 µm data resampled bilinearly onto a window (`bubblenet.sky.resampling`).

        Only the part of each 24 µm image under the window (plus a margin) is
        read. Small holes are filled on the 24 µm image's own grid, before
        resampling, which would otherwise grow them. Where several 24 µm
        images overlap, their mean is taken. Safe to call from several threads.
        """
        total = np.zeros(window.shape, dtype=np.float64)
        count = np.zeros(window.shape, dtype=np.float64)
        for image, section_window, mapping in self._plan24(window):
            section = image.read(section_window)
            if fill_holes:
                section = fill_small_holes(section)
            values = resample_bilinear(section, mapping)
            ok = np.isfinite(values)
            total[ok] += values[ok]
            count[ok] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            return (total / count).astype(np.float32)

    def _plan24(self, window: Window) -> list[tuple["SkyImage", Window, tuple]]:
        """``(image, its pixels to read, pixel mapping)`` of each 24 µm image under `window`, all the WCS
        work of `read24` (under the WCS lock)."""
        plans = []
        with _WCS_LOCK:
            target = self.window_wcs(window)
            corners = _window_border(target, window.shape)
            for image in self.images24:
                bounds = image.pixel_bounds_of(corners, margin=2.0 + _HOLE_MARGIN)
                if bounds is None:
                    continue
                x0, y0 = math.floor(bounds[0]), math.floor(bounds[1])
                x1, y1 = math.ceil(bounds[2]) + 1, math.ceil(bounds[3]) + 1
                ny, nx = image.shape
                x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, nx), min(y1, ny)
                if x0 >= x1 or y0 >= y1:
                    continue
                mapping = pixel_mapping(target, shift_wcs(image.wcs, x0, y0), window.shape)
                plans.append((image, Window(x0, y0, x1 - x0, y1 - y0), mapping))
        return plans

    def read_binned(self, factor: int) -> tuple[np.ndarray, WCS]:
        """The whole tile block-averaged by `factor`, for pictures.

        Returns
        -------
        data : numpy.ndarray
            ``(ny // factor, nx // factor, 2)`` float32, channels in
            `bubblenet.conventions.CHANNELS` order.
        wcs : astropy.wcs.WCS
            The WCS of the binned grid.
        """
        from reproject import reproject_interp

        factor = max(int(factor), 1)
        binned8, coarse = self.image8.read_binned(factor)
        by, bx = binned8.shape
        out = np.empty((by, bx, len(CHANNELS)), dtype=np.float32)
        out[..., CHANNEL_8UM] = binned8
        total = np.zeros((by, bx))
        count = np.zeros((by, bx))
        for image in self.images24:
            binned_scale = factor * self.pixel_scale.to_value(u.arcsec)  # arcsec per binned pixel
            f24 = max(int(round(binned_scale / image.pixel_scale.to_value(u.arcsec))), 1)
            binned, w24 = image.read_binned(f24)
            values, footprint = reproject_interp((binned, w24), coarse, shape_out=(by, bx), order="bilinear")
            ok = (footprint > 0) & np.isfinite(values)
            total[ok] += values[ok]
            count[ok] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            out[..., CHANNEL_24UM] = total / count
        return out, coarse


def _window_border(wcs: WCS, shape: tuple[int, int], n: int = 6) -> SkyCoord:
    """Sky points along the border (pixel edges) of a pixel grid, to find the data under it."""
    ny, nx = shape
    x0, y0, x1, y1 = image_box(shape)
    t = np.linspace(0.0, 1.0, n)
    xs = np.concatenate([x0 + t * nx, np.full(n, x1), x0 + t * nx, np.full(n, x0)])
    ys = np.concatenate([np.full(n, y0), y0 + t * ny, np.full(n, y1), y0 + t * ny])
    return wcs.pixel_to_world(xs, ys)


def _block_mean(image: SkyImage, factor: int, shape: tuple[int, int]) -> np.ndarray:
    """Block-average an image by `factor`, reading strips of rows (NaN-aware)."""
    by, bx = shape
    out = np.full((by, bx), np.nan, dtype=np.float32)
    rows = max(_SCAN_ROWS // factor, 1) * factor
    for y0 in range(0, by * factor, rows):
        n = min(rows, by * factor - y0)
        block = image.read(Window(0, y0, bx * factor, n)).reshape(n // factor, factor, bx, factor)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks stay NaN
            out[y0 // factor: (y0 + n) // factor] = np.nanmean(block, axis=(1, 3))
    return out


def fill_small_holes(data: np.ndarray, max_area: int = SMALL_HOLE_AREA) -> np.ndarray:
    """Fill NaN holes of at most `max_area` pixels; leave larger NaN areas alone.

    Holes are connected NaN regions (4-connectivity). Small ones are filled
    with a Gaussian-weighted mean of the valid pixels around them
    (`astropy.convolution.interpolate_replace_nans`, σ = 1 px). The input is
    not modified.

    Parameters
    ----------
    data : numpy.ndarray
        A 2-D image.
    max_area : int
        Largest hole, in pixels, that is filled.

    Returns
    -------
    numpy.ndarray
        A copy with small holes filled.
    """
    bad = ~np.isfinite(data)
    if not bad.any() or bad.all():
        return data.copy()
    labels, n = ndimage.label(bad)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    small = (sizes <= max_area)[labels] & bad
    if not small.any():
        return data.copy()
    filled = interpolate_replace_nans(data.astype(np.float64), Gaussian2DKernel(1.0))
    out = data.copy()
    out[small] = filled[small]
    return out


def is_usable(data: np.ndarray) -> bool:
    """Whether a (hole-filled) window has data everywhere in every band.

    The reference method rejects any cut-out that touches missing sky, so a
    window with NaN left after `fill_small_holes` is not usable.
    """
    return bool(np.isfinite(data).all())
