"""Where the synthetic survey's tiles lie, and their FITS headers.

The two bands are tiled the way the real surveys are, so that the rest of the
pipeline meets the same problems as on archive data:

* GLIMPSE-like 8 µm mosaics: 3.1° wide tiles centred every 3° in longitude,
  named ``GLM_LLLLL+BBBB_mosaic_I4.fits``, Galactic CAR with a ``CD`` matrix
  and ``PIXSCAL1/2`` (GLIMPSE: 1.2″/px; Benjamin et al. 2003).
* MIPSGAL-like 24 µm mosaics: 1.1° x 1.1° tiles centred every 1° in
  longitude and latitude, named ``MGLLLL[pn]BBB_024.fits``, Galactic CAR with
  ``CDELT`` keywords, 1.25″/px at full resolution (Carey et al. 2009).

Both are cropped to the requested region. Every 8 µm tile is an exact
sub-grid of the survey's *master grid* (same pixel scale, integer pixel
offset), which is where the sky model is drawn; the 24 µm tiles have their own
pixel scale and reference pixels and are resampled from it.

Unlike MIPSGAL (whose tiles use ``CRVAL2`` = tile centre), every tile here
uses ``CRVAL2 = 0`` so that CAR stays a plain linear latitude axis; only the
reference pixel differs from tile to tile.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.wcs import WCS

__all__ = ["Region", "TileSpec", "MasterGrid", "survey_layout", "PIXSCALE_RATIO_24"]

#: MIPSGAL mosaic pixel (1.25″) over GLIMPSE mosaic pixel (1.2″).
PIXSCALE_RATIO_24 = 1.25 / 1.2
#: Tile spacing and size in degrees (GLIMPSE: 3° spacing, 3.1° wide;
#: MIPSGAL: 1° spacing, 1.1° wide).
GLIMPSE_STEP, GLIMPSE_WIDTH = 3.0, 3.1
MIPSGAL_STEP, MIPSGAL_WIDTH = 1.0, 1.1
#: Latitude margin of the 8 µm tiles beyond the survey coverage (GLIMPSE tiles
#: are 2.4° high for |b| <= 1°, so their top and bottom rows are NaN).
LAT_MARGIN = 0.2


@dataclasses.dataclass(frozen=True)
class Region:
    """A Galactic longitude-latitude box, degrees.

    Longitudes are continuous across l = 0 (``l_min`` may be negative, e.g.
    -2 to 2); they are wrapped into [0, 360) only in headers and catalogues.
    """

    l_min: float
    l_max: float
    b_min: float
    b_max: float

    def __post_init__(self):
        if not self.l_max > self.l_min:
            raise ValueError(f"region needs l_max > l_min, got {self.l_min}..{self.l_max}")
        if not self.b_max > self.b_min:
            raise ValueError(f"region needs b_max > b_min, got {self.b_min}..{self.b_max}")
        if self.l_max - self.l_min > 360 or not -90 <= self.b_min < self.b_max <= 90:
            raise ValueError("region must span at most 360° in l and lie within |b| <= 90°")

    @property
    def area_deg2(self) -> float:
        """Sky area in square degrees (small-box approximation)."""
        b_mid = math.radians((self.b_min + self.b_max) / 2)
        return (self.l_max - self.l_min) * (self.b_max - self.b_min) * math.cos(b_mid)

    def contains(self, glon, glat):
        """Boolean mask of positions inside the region (longitude wrap handled)."""
        lon = unwrap_longitude(np.asarray(glon, float), (self.l_min + self.l_max) / 2)
        glat = np.asarray(glat, float)
        return (lon >= self.l_min) & (lon <= self.l_max) & (glat >= self.b_min) & (glat <= self.b_max)


def unwrap_longitude(glon, centre: float):
    """Longitudes shifted by multiples of 360° to lie within 180° of `centre`."""
    return (np.asarray(glon, float) - centre + 180.0) % 360.0 - 180.0 + centre


@dataclasses.dataclass(frozen=True)
class TileSpec:
    """One FITS tile of the synthetic survey: its file name, grid and band."""

    band: str  # "8um" or "24um"
    filename: str
    shape: tuple[int, int]  # (ny, nx)
    crval1: float  # tile-centre longitude, deg, in [0, 360)
    crpix: tuple[float, float]  # 1-based FITS reference pixel
    pixscale: float  # arcsec
    master_offset: tuple[int, int] | None = None  # (x0, y0) in the master grid, 8 µm only

    def wcs(self) -> WCS:
        """The tile's Galactic CAR WCS."""
        w = WCS(naxis=2)
        w.wcs.ctype = ["GLON-CAR", "GLAT-CAR"]
        w.wcs.crval = [self.crval1, 0.0]
        w.wcs.crpix = list(self.crpix)
        w.wcs.cdelt = [-self.pixscale / u.deg.to(u.arcsec), self.pixscale / u.deg.to(u.arcsec)]
        w.wcs.cunit = ["deg", "deg"]
        w.array_shape = self.shape
        return w

    def header(self) -> fits.Header:
        """A header shaped like the real survey's (``CD`` for 8 µm, ``CDELT`` for 24 µm)."""
        h = fits.Header()
        h["TELESCOP"] = ("SPITZER", "Telescope (synthetic survey)")
        if self.band == "8um":
            h["INSTRUME"] = ("IRAC", "Instrument ID")
            h["CHNLNUM"] = (4, "IRAC channel: 8.0 um")
            h["WAVELENG"] = (7.872, "[um] isophotal wavelength")
        else:
            h["INSTRUME"] = ("MIPS", "Instrument ID")
            h["WAVELENG"] = (23.68, "[um] isophotal wavelength")
        h["FILENAME"] = (self.filename, "Name of this file")
        h["ORIGIN"] = ("bubblenet.synth", "Synthetic GLIMPSE/MIPSGAL-like survey")
        h["SYNTHETC"] = (True, "Not an observation: drawn by bubblenet.synth")
        h["BUNIT"] = ("MJy/sr", "Units of image data")
        h["CTYPE1"] = ("GLON-CAR", "Projection Type")
        h["CTYPE2"] = ("GLAT-CAR", "Projection Type")
        h["CRVAL1"] = (self.crval1, "[Deg] Galactic Longitude at reference pixel")
        h["CRVAL2"] = (0.0, "[Deg] Galactic Latitude at reference pixel")
        h["CRPIX1"] = (self.crpix[0], "Reference pixel for x-position")
        h["CRPIX2"] = (self.crpix[1], "Reference pixel for y-position")
        step = self.pixscale / u.deg.to(u.arcsec)  # deg
        if self.band == "8um":
            h["CD1_1"], h["CD1_2"], h["CD2_1"], h["CD2_2"] = -step, 0.0, 0.0, step
        else:
            h["CDELT1"] = (-step, "[deg/pix]")
            h["CDELT2"] = (step, "[deg/pix]")
        h["CUNIT1"], h["CUNIT2"] = "deg", "deg"
        h["EQUINOX"] = (2000.0, "Equinox for celestial coordinate system")
        h["PIXSCAL1"] = (self.pixscale, "[arcsec/pixel] pixel scale for axis 1")
        h["PIXSCAL2"] = (self.pixscale, "[arcsec/pixel] pixel scale for axis 2")
        return h


@dataclasses.dataclass(frozen=True)
class MasterGrid:
    """The 8 µm-scale Galactic CAR grid that covers the whole region.

    Its x axis runs towards decreasing longitude (``CDELT1 < 0``), as survey
    images do. `lon_ref` is the longitude at pixel x = 0 (continuous, not
    wrapped).
    """

    lon_ref: float
    lat_ref: float
    pixscale: float  # arcsec
    shape: tuple[int, int]

    @property
    def step(self) -> float:
        """Pixel side in degrees."""
        return self.pixscale / u.deg.to(u.arcsec)

    def x_of(self, glon):
        """Fractional master x of continuous longitudes."""
        return (self.lon_ref - np.asarray(glon, float)) / self.step

    def y_of(self, glat):
        """Fractional master y of latitudes."""
        return (np.asarray(glat, float) - self.lat_ref) / self.step

    def lon_of(self, x):
        """Continuous longitude of master x."""
        return self.lon_ref - np.asarray(x, float) * self.step

    def lat_of(self, y):
        """Latitude of master y."""
        return self.lat_ref + np.asarray(y, float) * self.step


def _tile_name_8um(lon: float) -> str:
    return f"GLM_{int(round(lon * 100)) % 36000:05d}+0000_mosaic_I4.fits"


def _tile_name_24um(lon: float, lat: float) -> str:
    sign = "p" if lat >= 0 else "n"
    return f"MG{int(round(lon * 10)) % 3600:04d}{sign}{int(round(abs(lat) * 10)):03d}_024.fits"


def survey_layout(region: Region, pixscale: float) -> tuple[MasterGrid, list[TileSpec], list[TileSpec]]:
    """Lay out the master grid and the 8 µm and 24 µm tiles of a region.

    Parameters
    ----------
    region : Region
        Survey coverage; 8 µm tiles extend `LAT_MARGIN` beyond it in latitude.
    pixscale : float
        8 µm pixel side in arcsec (GLIMPSE: 1.2); the 24 µm side is
        `PIXSCALE_RATIO_24` times larger.

    Returns
    -------
    master : MasterGrid
    tiles8, tiles24 : list of TileSpec
    """
    step = pixscale / u.deg.to(u.arcsec)  # deg
    b_lo, b_hi = region.b_min - LAT_MARGIN, region.b_max + LAT_MARGIN
    nx = int(math.ceil((region.l_max - region.l_min) / step))
    ny = int(math.ceil((b_hi - b_lo) / step))
    # Pixel centres from the high-longitude edge, half a pixel in.
    master = MasterGrid(region.l_max - step / 2, b_lo + step / 2, pixscale, (ny, nx))

    tiles8 = []
    first = math.floor((region.l_min + GLIMPSE_WIDTH / 2) / GLIMPSE_STEP)
    last = math.ceil((region.l_max - GLIMPSE_WIDTH / 2) / GLIMPSE_STEP)
    for k in range(last, first - 1, -1):
        lc = k * GLIMPSE_STEP
        lo, hi = max(lc - GLIMPSE_WIDTH / 2, region.l_min), min(lc + GLIMPSE_WIDTH / 2, region.l_max)
        if hi <= lo:
            continue
        # Master pixels whose centres lie within [lo, hi] (tolerant of rounding).
        x0 = max(int(math.ceil(master.x_of(hi) - 1e-6)), 0)
        x1 = min(int(math.floor(master.x_of(lo) + 1e-6)) + 1, nx)
        crpix1 = master.x_of(lc) - x0 + 1.0
        crpix2 = master.y_of(0.0) + 1.0
        tiles8.append(TileSpec("8um", _tile_name_8um(lc), (ny, x1 - x0), lc % 360.0,
                               (crpix1, crpix2), pixscale, (x0, 0)))

    tiles24 = []
    s24 = pixscale * PIXSCALE_RATIO_24
    step24 = s24 / u.deg.to(u.arcsec)  # deg
    n_rows = max(int(math.ceil((region.b_max - region.b_min - 1e-9) / MIPSGAL_STEP)), 1)
    for lc in np.arange(math.ceil(region.l_min), math.floor(region.l_max) + 1, MIPSGAL_STEP)[::-1]:
        lo, hi = max(lc - MIPSGAL_WIDTH / 2, region.l_min), min(lc + MIPSGAL_WIDTH / 2, region.l_max)
        if hi <= lo:
            continue
        for j in range(n_rows):
            bc = region.b_min + MIPSGAL_STEP / 2 + j * MIPSGAL_STEP
            blo, bhi = bc - MIPSGAL_WIDTH / 2, bc + MIPSGAL_WIDTH / 2
            tnx = int(math.ceil((hi - lo) / step24))
            tny = int(math.ceil((bhi - blo) / step24))
            # Pixel x = 0 sits half a pixel inside the high-longitude edge.
            crpix1 = (hi - step24 / 2 - lc) / step24 + 1.0
            crpix2 = (0.0 - (blo + step24 / 2)) / step24 + 1.0
            tiles24.append(TileSpec("24um", _tile_name_24um(lc, bc), (tny, tnx), float(lc) % 360.0,
                                    (crpix1, crpix2), s24))
    return master, tiles8, tiles24
