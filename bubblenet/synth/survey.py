"""Making a synthetic GLIMPSE/MIPSGAL-like survey: sky model, tiles and catalogue.

`make_survey` draws the sky once on a master grid at the 8 µm pixel scale,
cuts the 8 µm tiles out of it, resamples the 24 µm tiles from it onto their
own grid, adds each band's stars, noise and missing data, and writes FITS
tiles plus the catalogue of the bubbles it drew in MWP DR2 format.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.table import Table
from scipy import ndimage

from bubblenet.outputs import atomic_path, ensure_dir, run_record, write_json
from bubblenet.synth import render
from bubblenet.synth.hardening import Hardening
from bubblenet.synth.hii_regions import HII_REGION_LOOK, REACH, hii_region_shapes
from bubblenet.synth.layout import MasterGrid, Region, TileSpec, survey_layout, unwrap_longitude
from bubblenet.synth.population import Population, draw_population

__all__ = ["SynthConfig", "SurveyFiles", "make_survey", "draw_master_sky", "CATALOGUE_NAME", "SELECTION_NAME",
           "SHELLS_8UM_NAME", "TRUTH_NAME", "TRUTH_SELECTION_NAME"]

log = logging.getLogger(__name__)

CATALOGUE_NAME = "bubbles_mwp_dr2.csv"  # what was drawn, MWP DR2 columns + clear
SELECTION_NAME = "clear_bubbles.txt"  # names of the clear ones, like the real selection file
SHELLS_8UM_NAME = "shells_8um.txt"  # names of those whose 8 µm shell alone is clear, like the paper's 8 µm list
CONFUSERS_NAME = "confusers.ecsv"
HII_REGIONS_NAME = "hii_regions.ecsv"  # a hardened sky's HII regions (`bubblenet.synth.hii_regions`)
TRUTH_NAME = "bubbles_truth.csv"  # every shell drawn, where it was drawn, with 'catalogued'
TRUTH_SELECTION_NAME = "clear_bubbles_truth.txt"  # the clear ones among them, catalogued or not

#: Effective wavelengths (µm) and PSF FWHM (arcsec) of IRAC 8 µm and MIPS 24 µm.
WAVELENGTH = {"8um": 7.872, "24um": 23.68}
FWHM = {"8um": 2.0, "24um": 6.0}
#: Per-pixel noise at the surveys' native pixel sizes (1.2″, 1.25″), MJy/sr;
#: it falls as 1/pixel side at coarser scales.
NOISE = {"8um": 0.4, "24um": 0.6}
#: Point sources brighter than this saturate (mJy): clipped flat at 8 µm,
#: masked (NaN core) at 24 µm as in MIPSGAL mosaics.
SATURATION = {"8um": 1500.0, "24um": 2000.0}
#: Spawn key of the hardening's random generator.
HARDENING_KEY = 15_000
#: Largest master grid, pixels per field (~1.3 GB of working memory at this size).
MAX_MASTER_PIXELS = 200_000_000


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """What to draw.

    Attributes
    ----------
    region : Region
        Survey coverage in Galactic coordinates.
    pixscale : float
        8 µm pixel side, arcsec (GLIMPSE: 1.2; the demo uses 2.4). The 24 µm
        side is 1.25/1.2 times larger, as MIPSGAL's is.
    seed : int
        Seed of every random choice: the same config gives the same files.
    mode : {"twin", "random"}
        Real MWP DR2 bubbles of the region, or random ones.
    hardening : Hardening
        What to add to the standard sky to make it as hard as the real one
        (`bubblenet.synth.hardening.HARD` for everything); nothing by default.
    """

    region: Region
    pixscale: float = 2.4
    seed: int = 0
    mode: str = "twin"
    hardening: Hardening = Hardening()

    def __post_init__(self):
        if not 0.3 <= self.pixscale <= 60:
            raise ValueError(f"pixscale must be between 0.3 and 60 arcsec, got {self.pixscale}")
        if self.mode not in ("twin", "random"):
            raise ValueError(f"mode must be 'twin' or 'random', got {self.mode!r}")
        if not isinstance(self.hardening, Hardening):
            raise ValueError(f"hardening must be a bubblenet.synth.hardening.Hardening, got {self.hardening!r}")


@dataclasses.dataclass
class SurveyFiles:
    """Paths written by `make_survey`."""

    folder: Path
    tiles8: list[Path]
    tiles24: list[Path]
    catalogue: Path
    selection: Path
    confusers: Path
    record: Path
    n_bubbles: int
    n_clear: int
    seconds: float
    truth: Path | None = None


@dataclasses.dataclass
class MasterSky:
    """The sky model on the master grid, before stars and noise."""

    grid: MasterGrid
    sky8: np.ndarray
    sky24: np.ndarray


def _rngs(seed: int, names: tuple[str, ...]) -> dict[str, np.random.Generator]:
    """Independent generators per component, so changing one leaves the others alone."""
    seqs = np.random.SeedSequence(seed).spawn(len(names))
    return {name: np.random.default_rng(s) for name, s in zip(names, seqs)}


def _background_level(band: str, glon, glat):
    """Mean diffuse brightness (MJy/sr) by position: bright mid-plane, fading with |b| and |l|.

    Rough GLIMPSE/MIPSGAL levels in the inner Galaxy: 8 µm ~150 MJy/sr in the
    plane and ~30 at |b| = 1°; 24 µm ~70 and ~25.
    """
    glon = unwrap_longitude(glon, 0.0)
    fade = np.exp(-np.abs(glon) / 40.0)
    if band == "8um":
        return (25.0 + 130.0 * np.exp(-np.abs(glat) / 0.35)) * (0.4 + 0.6 * fade)
    return (20.0 + 55.0 * np.exp(-np.abs(glat) / 0.3)) * (0.4 + 0.6 * fade)


def draw_master_sky(grid: MasterGrid, population: Population, rngs: dict[str, np.random.Generator]) -> MasterSky:
    """Diffuse emission, filaments, dark clouds, bubbles and look-alikes on the master grid.

    Stars and noise are added per tile later, at each band's own pixel scale.
    """
    ny, nx = grid.shape
    step_arcmin = grid.pixscale / u.arcmin.to(u.arcsec)
    lat = grid.lat_of(np.arange(ny))[:, None].astype(np.float32)
    lon = grid.lon_of(np.arange(nx))[None, :].astype(np.float32)
    level8 = _background_level("8um", lon, lat).astype(np.float32)
    level24 = _background_level("24um", lon, lat).astype(np.float32)

    rng = rngs["diffuse"]
    shared = render.power_law_field(grid.shape, 2.6, rng)
    own = render.power_law_field(grid.shape, 3.4, rng)
    sky8 = level8 * np.exp(0.8 * shared - 0.32)
    # Warm dust at 24 µm is smoother and less contrasted than PAH emission.
    sky24 = level24 * np.exp(0.3 * (0.7 * shared + 0.71 * own) - 0.045)
    del own

    # Bright wispy filaments (PAH emission of cloud edges), mostly at 8 µm.
    area = grid.shape[0] * grid.shape[1] * (grid.pixscale / u.deg.to(u.arcsec)) ** 2  # deg²
    rng = rngs["filaments"]
    ink = render.draw_curves(grid.shape, rng.poisson(40 * area) + 1, (2 / step_arcmin, 25 / step_arcmin), rng)
    width = max(6.0 / grid.pixscale, 0.7)  # ~6″ wide
    filaments = render.smooth(ink, width) * (width * math.sqrt(2 * math.pi))
    sky8 *= 1 + 1.2 * filaments
    sky24 *= 1 + 0.3 * filaments
    del ink, filaments

    # Infrared-dark clouds: absorbing filaments, opaque at 8 µm, thinner at 24 µm.
    rng = rngs["irdc"]
    ink = render.draw_curves(grid.shape, rng.poisson(4 * area) + 1, (3 / step_arcmin, 15 / step_arcmin), rng,
                             persistence=0.99)
    width = max(15.0 / grid.pixscale, 1.0)
    tau = 1.5 * render.smooth(ink, width) * (width * math.sqrt(2 * math.pi))
    foreground = 0.3  # share of the emission in front of the cloud
    sky8 *= foreground + (1 - foreground) * np.exp(-tau)
    sky24 *= foreground + (1 - foreground) * np.exp(-0.5 * tau)
    del ink, tau

    _draw_bubbles(sky8, sky24, grid, population.bubbles, rngs["bubbles"])
    _draw_hii_regions(sky8, sky24, grid, population.hii_regions)
    _draw_confusers(sky8, sky24, grid, population.confusers, rngs["confusers"])

    # Diffuse emission and bubbles seen through each band's beam.
    for sky, band in ((sky8, "8um"), (sky24, "24um")):
        sky[:] = render.smooth(sky, FWHM[band] / 2.3548 / grid.pixscale)
    return MasterSky(grid, sky8.astype(np.float32), sky24.astype(np.float32))


def _shell_params(kind: str, a: float, b: float, angle: float, bg8: float, bg24: float,
                  rng: np.random.Generator, compact: float = 0.0, compact_amp24: float = 0.0) -> render.ShellParams:
    """How a bubble of each kind looks (sizes in pixels; `compact` and `compact_amp24`, in units of `bg24`: a
    hardened sky's compact look, `bubblenet.synth.hardening.draw_compact_looks`)."""
    n_gaps = {"clear": rng.integers(0, 2), "shell8": rng.integers(0, 2), "faint": rng.integers(0, 3)}[kind]
    max_gap = {"clear": 0.5, "shell8": 0.6, "faint": 1.1}[kind]  # half-width, radians
    gaps = np.column_stack([rng.uniform(0, 2 * np.pi, n_gaps), rng.uniform(0.15, max_gap, n_gaps)])
    ripple = 0.25 if kind != "faint" else 0.45
    harmonics = np.column_stack([np.arange(1, 6), rng.uniform(0, ripple, 5) / np.arange(1, 6) ** 0.5,
                                 rng.uniform(0, 2 * np.pi, 5)])
    amp8 = bg8 * math.exp(rng.normal(math.log({"clear": 1.1, "shell8": 1.0, "faint": 0.5}[kind]), 0.4))
    if kind == "clear":
        amp24 = bg24 * math.exp(rng.normal(math.log(4.0), 0.5))
    elif kind == "shell8":
        amp24 = bg24 * rng.uniform(0.0, 0.3)
    else:
        amp24 = bg24 * math.exp(rng.normal(math.log(0.7), 0.6)) * (rng.uniform() < 0.6)
    params = render.ShellParams(
        a=a, b=b, angle=angle, thickness=rng.uniform(0.3, 0.6), amp8=amp8, amp24=amp24,
        interior8=rng.uniform(0.0, 0.15), envelope8=rng.uniform(0.25, 0.55), envelope24=rng.uniform(0.15, 0.35),
        sigma24=rng.uniform(0.4, 0.7), harmonics=harmonics, gaps=gaps,
    )
    if compact > 0:
        params = dataclasses.replace(params, compact=compact, compact_amp24=bg24 * compact_amp24)
    return params


def _draw_bubbles(sky8, sky24, grid: MasterGrid, bubbles: Table, rng: np.random.Generator) -> None:
    lon = unwrap_longitude(np.asarray(bubbles["GLON"], float), grid.lon_of(grid.shape[1] / 2))
    lat = np.asarray(bubbles["GLAT"], float)
    cores = np.asarray(bubbles["core24"], float) if "core24" in bubbles.colnames else np.zeros(len(bubbles))
    core_sigma = np.asarray(bubbles["core_sigma"], float) if "core_sigma" in bubbles.colnames else cores
    compact, compact_amp24 = (np.asarray(bubbles[c], float) if c in bubbles.colnames else np.zeros(len(bubbles))
                              for c in ("compact", "compact_amp24"))
    for i, row in enumerate(bubbles):
        a = row["MajAxis"] * u.arcmin.to(u.arcsec) / grid.pixscale  # pixels
        b = min(row["MinAxis"], row["MajAxis"]) * u.arcmin.to(u.arcsec) / grid.pixscale
        # theta runs from +l towards +b; on the image +x points to -l.
        angle = math.pi - math.radians(row["theta"])
        p = _shell_params(str(row["kind"]), a, b, angle, float(_background_level("8um", lon[i], lat[i])),
                          float(_background_level("24um", lon[i], lat[i])), rng, compact=float(compact[i]),
                          compact_amp24=float(compact_amp24[i]))
        render.add_patch((sky8, sky24), float(grid.x_of(lon[i])), float(grid.y_of(lat[i])), p.extent,
                         lambda dx, dy, p=p: render.shell_images(p, dx, dy))
        if cores[i] > 0:  # a hardened sky's saturated central source (`hardening.draw_saturated_cores`)
            sigma = max(float(core_sigma[i]) * a, 0.5)
            peak = float(cores[i]) * saturation_level_24um()
            render.add_patch((sky24,), float(grid.x_of(lon[i])), float(grid.y_of(lat[i])), 4 * sigma + 2,
                             lambda dx, dy, s=sigma, v=peak: (v * render.blob(dx, dy, s),))


def _draw_hii_regions(sky8, sky24, grid: MasterGrid, regions: Table) -> None:
    """A hardened sky's HII regions at their fluxes (`bubblenet.synth.hii_regions`), each drawn whole, then clipped."""
    if len(regions) == 0:
        return
    lon = unwrap_longitude(np.asarray(regions["glon"], float), grid.lon_of(grid.shape[1] / 2))
    to_mjy_sr = 1e-6 / _pixel_solid_angle(grid.pixscale)  # Jy per pixel -> MJy/sr
    scale = HII_REGION_LOOK["flux_scale"]
    for i, row in enumerate(regions):
        radius = max(float(row["radius_arcsec"]) / grid.pixscale, 1.0)  # pixels
        x, y = float(grid.x_of(lon[i])), float(grid.y_of(row["glat"]))
        drawn = _hii_region_patches(x, y, radius, int(row["seed"]), sky8.shape)
        if drawn is None:
            continue
        (y1, y2, x1, x2), shape8, shape24 = drawn
        sky8[y1:y2, x1:x2] += shape8 * np.float32(row["flux8_jy"] * scale["8um"] * to_mjy_sr)
        sky24[y1:y2, x1:x2] += shape24 * np.float32(row["flux24_jy"] * scale["24um"] * to_mjy_sr)


#: Widest patch, in samples, an HII region's shapes are computed on; a larger region is computed on a coarser grid.
HII_PATCH_MAX = 2048


def _hii_region_patches(x: float, y: float, radius: float, seed: int, shape: tuple[int, int]):
    """One HII region's 8 and 24 µm shapes on the part of an image of `shape` they reach.

    The shapes are flux-normalised over the whole region (`hii_region_shapes`), so they are
    computed over the whole patch of `REACH` R + 2 pixels each way before they are clipped; a
    patch wider than `HII_PATCH_MAX` pixels (the catalogue's inner plane has regions of up to
    0.78 deg in radius, thousands of pixels at GLIMPSE's 1.2″/px) is computed on a grid coarser
    by a whole factor and interpolated onto the pixels it covers: the shapes' own work stays
    bounded, while the interpolated part grows with the image area the region covers.

    Returns
    -------
    tuple or None
        ``((y1, y2, x1, x2), shape8, shape24)``: the image slice covered and the two shapes on it
        (per pixel, each summing to about one within the radius); None where the region misses the image.
    """
    half = int(math.ceil(REACH * radius)) + 2
    x0, y0 = int(math.floor(x)) - half, int(math.floor(y)) - half
    size = 2 * half + 1
    ny, nx = shape
    x1, y1, x2, y2 = max(x0, 0), max(y0, 0), min(x0 + size, nx), min(y0 + size, ny)
    if x1 >= x2 or y1 >= y2:
        return None
    step = max(1, math.ceil(size / HII_PATCH_MAX))
    # Sample centres of the (coarse) patch in image pixels, and their offsets from the centre in samples.
    samples = np.arange(math.ceil(size / step), dtype=np.float32) * step + (step - 1) / 2
    dy, dx = np.meshgrid(samples + y0 - np.float32(y), samples + x0 - np.float32(x), indexing="ij")
    shapes = hii_region_shapes(dx / step, dy / step, radius / step, np.random.default_rng(seed))
    if step == 1:
        cut = (slice(y1 - y0, y2 - y0), slice(x1 - x0, x2 - x0))
        return (y1, y2, x1, x2), shapes[0][cut], shapes[1][cut]
    # Each coarse sample stands for step² pixels; linear interpolation spreads it over them.
    rows = (np.arange(y1, y2, dtype=np.float32) - y0 - (step - 1) / 2) / step
    cols = (np.arange(x1, x2, dtype=np.float32) - x0 - (step - 1) / 2) / step
    where = np.meshgrid(rows, cols, indexing="ij")
    fine = tuple(ndimage.map_coordinates(s, where, order=1, mode="nearest") / np.float32(step**2) for s in shapes)
    return (y1, y2, x1, x2), *fine


def _draw_confusers(sky8, sky24, grid: MasterGrid, confusers: Table, rng: np.random.Generator) -> None:
    """Compact HII blobs (filled, no shell), YSO and red-source halos; their stars come later."""
    lon = unwrap_longitude(np.asarray(confusers["glon"], float), grid.lon_of(grid.shape[1] / 2))
    for i, row in enumerate(confusers):
        sigma = row["size_arcmin"] * u.arcmin.to(u.arcsec) / grid.pixscale / 2  # pixels
        bg8 = float(_background_level("8um", lon[i], row["glat"]))
        bg24 = float(_background_level("24um", lon[i], row["glat"]))
        if row["kind"] == "red":  # a hardened sky's compact sources (not in the table below: it draws every entry)
            amp = (rng.uniform(0.1, 0.6) * bg8, 0.0)
        else:
            amp = {"hii_blob": (rng.uniform(0.5, 1.5) * bg8, rng.uniform(1.0, 4.0) * bg24),
                   "yso": (rng.uniform(0.3, 1.0) * bg8, 0.0),
                   "cluster": (rng.uniform(0.1, 0.3) * bg8, 0.0)}[str(row["kind"])]
        render.add_patch(
            (sky8, sky24), float(grid.x_of(lon[i])), float(grid.y_of(row["glat"])), 4 * sigma + 2,
            lambda dx, dy, s=sigma, a=amp: (a[0] * render.blob(dx, dy, s), a[1] * render.blob(dx, dy, 0.6 * s)),
        )


def _pixel_solid_angle(pixscale: float) -> float:
    """Solid angle of one pixel, sr."""
    return (pixscale / 206264.806) ** 2


@functools.lru_cache(maxsize=None)  # an Airy kernel per call otherwise: once per cored bubble and tile
def saturation_level_24um() -> float:
    """The surface brightness (MJy/sr) above which MIPSGAL saturates: a `SATURATION` point source's
    peak pixel at the native 1.25″ scale, the same rule the stars follow."""
    native = 1.25
    kernel = render.airy_kernel(WAVELENGTH["24um"], native)
    return float(SATURATION["24um"] * 1e-9 / _pixel_solid_angle(native) * kernel.max())


def _stars_layer(spec: TileSpec, stars: Table, lon_x, lat_y) -> tuple[np.ndarray, float]:
    """Point sources of one band on a tile's grid (MJy/sr, PSF-convolved) and the saturation level."""
    step = spec.pixscale / u.deg.to(u.arcsec)  # deg
    lon = unwrap_longitude(np.asarray(stars["glon"], float), float(lon_x[0]))
    x = (lon_x[0] - lon) / step
    y = (np.asarray(stars["glat"], float) - lat_y[0]) / step
    ny, nx = spec.shape
    keep = (x > -20) & (x < nx + 20) & (y > -20) & (y < ny + 20)
    flux = np.asarray(stars["flux_mjy"], np.float32)[keep] * np.float32(1e-9 / _pixel_solid_angle(spec.pixscale))
    kernel = render.airy_kernel(WAVELENGTH[spec.band], spec.pixscale)
    layer = render.convolve_psf(render.splat(spec.shape, x[keep], y[keep], flux), kernel)
    return layer, float(SATURATION[spec.band] * 1e-9 / _pixel_solid_angle(spec.pixscale) * kernel.max())


def _coverage_mask(band: str, region: Region, lon_x, lat_y, rng: np.random.Generator) -> np.ndarray:
    """True where the survey has data: |b| limits with ragged edges, minus holes.

    The latitude edges wander by a few arcmin, with a different pattern per
    band (GLIMPSE and MIPSGAL mapped the sky in different strips).
    """
    phase = {"8um": 0.0, "24um": 1.7}[band]
    wiggle = 0.03 * np.sin(2 * np.pi * lon_x / 0.41 + phase) + 0.015 * np.sin(2 * np.pi * lon_x / 0.13 + 2 * phase)
    top = region.b_max + 0.02 + wiggle
    bottom = region.b_min - 0.02 - wiggle[::-1]
    mask = (lat_y[:, None] <= top[None, :]) & (lat_y[:, None] >= bottom[None, :])
    ny, nx = mask.shape
    area = ny * nx * (abs(lat_y[1] - lat_y[0])) ** 2
    # Small holes (bad pixels, cosmic rays) everywhere; rare large gaps at 24 µm.
    for _ in range(rng.poisson(40 * area)):
        _punch(mask, rng.uniform(0, nx), rng.uniform(0, ny), rng.uniform(0.5, 2.5))
    if band == "24um":
        step_arcmin = abs(lat_y[1] - lat_y[0]) * u.deg.to(u.arcmin)
        for _ in range(rng.poisson(0.3 * area)):
            _punch(mask, rng.uniform(0, nx), rng.uniform(0, ny), rng.uniform(0.5, 1.5) / step_arcmin)
    return mask


def _punch(mask: np.ndarray, cx: float, cy: float, r: float) -> None:
    """Clear a disk of radius `r` pixels from a boolean mask, in place."""
    ny, nx = mask.shape
    y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 1, ny)
    x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 1, nx)
    if y0 < y1 and x0 < x1:
        yy, xx = np.ogrid[y0:y1, x0:x1]
        mask[y0:y1, x0:x1] &= (xx - cx) ** 2 + (yy - cy) ** 2 > r * r


def _tile_axes(spec: TileSpec, region: Region) -> tuple[np.ndarray, np.ndarray]:
    """Continuous longitude of each column and latitude of each row of a tile."""
    step = spec.pixscale / u.deg.to(u.arcsec)  # deg
    lc = unwrap_longitude(spec.crval1, (region.l_min + region.l_max) / 2)
    lon_x = lc - (np.arange(spec.shape[1]) + 1 - spec.crpix[0]) * step
    lat_y = (np.arange(spec.shape[0]) + 1 - spec.crpix[1]) * step
    return lon_x, lat_y


def _tile_sky(spec: TileSpec, sky: MasterSky, lon_x, lat_y) -> np.ndarray:
    """The master sky on a tile's grid: a slice for 8 µm, bilinear resampling for 24 µm."""
    if spec.band == "8um":
        x0, y0 = spec.master_offset
        return sky.sky8[y0:y0 + spec.shape[0], x0:x0 + spec.shape[1]].copy()
    grid = sky.grid
    # CAR is linear in both axes, so the map is a scaling plus a shift.
    scale_x = (grid.x_of(lon_x[-1]) - grid.x_of(lon_x[0])) / max(len(lon_x) - 1, 1)
    scale_y = (grid.y_of(lat_y[-1]) - grid.y_of(lat_y[0])) / max(len(lat_y) - 1, 1)
    return ndimage.affine_transform(
        sky.sky24, [scale_y, scale_x], offset=[grid.y_of(lat_y[0]), grid.x_of(lon_x[0])],
        output_shape=spec.shape, order=1, mode="nearest",
    ).astype(np.float32)


def render_tile(spec: TileSpec, sky: MasterSky, population: Population, region: Region,
                rng: np.random.Generator) -> np.ndarray:
    """The final image of one tile: sky, stars, saturation, noise and missing data."""
    lon_x, lat_y = _tile_axes(spec, region)
    data = _tile_sky(spec, sky, lon_x, lat_y)
    stars = population.stars8 if spec.band == "8um" else population.stars24
    layer, saturation = _stars_layer(spec, stars, lon_x, lat_y)
    if spec.band == "8um":
        data += np.minimum(layer, saturation)
    else:
        saturated = layer > saturation
        if "core24" in population.bubbles.colnames or len(population.hii_regions):
            # a hardened sky: its saturated extended sources (cored bubbles, bright HII regions) too
            saturated |= data > saturation_level_24um()
        data += layer
        data[saturated] = np.nan
    native = 1.2 if spec.band == "8um" else 1.25
    data += rng.normal(0.0, NOISE[spec.band] * native / spec.pixscale, spec.shape).astype(np.float32)
    data[~_coverage_mask(spec.band, region, lon_x, lat_y, rng)] = np.nan
    return data


def _write_tile(path: Path, data: np.ndarray, spec: TileSpec, config: SynthConfig) -> None:
    header = spec.header()
    header["SEED"] = (config.seed, "bubblenet.synth random seed")
    header["SYNMODE"] = (config.mode, "twin: real MWP DR2 bubbles; random")
    header["HARDENED"] = (config.hardening.active, "bubblenet.synth.hardening additions drawn")
    with atomic_path(path) as tmp:
        fits.PrimaryHDU(data.astype(np.float32), header).writeto(tmp, overwrite=True)


def _write_catalogue(folder: Path, population: Population) -> tuple[Path, Path, Path, Path]:
    bubbles = population.catalogue.copy()
    shells8 = bubbles["MWP"][bubbles["clear8"]]
    bubbles.remove_columns([c for c in ("kind", "clear8", "catalogued", "core24", "core_sigma") if c in bubbles.colnames])
    bubbles.meta = {"comments": ["Synthetic bubbles drawn by bubblenet.synth (MWP DR2 columns + clear)"]}
    catalogue, selection, confusers = folder / CATALOGUE_NAME, folder / SELECTION_NAME, folder / CONFUSERS_NAME
    with atomic_path(catalogue) as tmp:
        bubbles.write(tmp, format="ascii.csv", overwrite=True)
    with atomic_path(selection) as tmp:
        tmp.write_text("".join(f"{name}\n" for name in bubbles["MWP"][bubbles["clear"]]))
    with atomic_path(folder / SHELLS_8UM_NAME) as tmp:
        tmp.write_text("".join(f"{name}\n" for name in shells8))
    with atomic_path(confusers) as tmp:
        population.confusers.write(tmp, format="ascii.ecsv", overwrite=True)
    if len(population.hii_regions):
        with atomic_path(folder / HII_REGIONS_NAME) as tmp:
            population.hii_regions.write(tmp, format="ascii.ecsv", overwrite=True)
    else:  # a sky with none, drawn where one with some was (the caller let it overwrite the folder)
        (folder / HII_REGIONS_NAME).unlink(missing_ok=True)
    truth = population.bubbles.copy()
    truth.meta = {"comments": ["Every shell bubblenet.synth drew, where it drew it: MWP DR2 columns + clear, clear8,",
                               "kind, catalogued (listed in bubbles_mwp_dr2.csv); on a hardened sky core24 (its",
                               "saturated 24 um core's peak over saturation, 0: none), core_sigma (over MajAxis),",
                               "compact (0-1: how much it looks like a compact HII region) and compact_amp24"]}
    with atomic_path(folder / TRUTH_NAME) as tmp:
        truth.write(tmp, format="ascii.csv", overwrite=True)
    with atomic_path(folder / TRUTH_SELECTION_NAME) as tmp:
        tmp.write_text("".join(f"{name}\n" for name in truth["MWP"][truth["clear"]]))
    return catalogue, selection, confusers, folder / TRUTH_NAME


def make_survey(folder: str | Path, config: SynthConfig, *,
                progress: Callable | None = None) -> SurveyFiles:
    """Draw a synthetic survey and write it to `folder`.

    Parameters
    ----------
    folder : str or pathlib.Path
        Output folder (created). Each file is written atomically.
    config : SynthConfig
    progress : callable, optional
        ``progress(iterable, total=..., desc=...)`` wrapper such as
        `tqdm.tqdm`, used over the tiles.

    Returns
    -------
    SurveyFiles
    """
    start = time.perf_counter()
    folder = ensure_dir(folder)
    master, specs8, specs24 = survey_layout(config.region, config.pixscale)
    if master.shape[0] * master.shape[1] > MAX_MASTER_PIXELS:
        raise ValueError(
            f"region {config.region} at {config.pixscale}″/px needs a {master.shape[1]} x {master.shape[0]} px "
            "master grid; split it into smaller regions or use a coarser pixel scale"
        )
    rngs = _rngs(config.seed, ("population", "diffuse", "filaments", "irdc", "bubbles", "confusers", "tiles"))
    # The hardening's generator has a spawn key of its own, far from those of the components and tiles
    # (which count up from 0), so the standard sky underneath is unchanged.
    hard_rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(HARDENING_KEY,)))
    population = draw_population(config.region, rngs["population"], mode=config.mode,
                                 hardening=config.hardening, hard_rng=hard_rng)
    log.info("drawing %d bubbles (%d clear), %d look-alikes, %d HII regions, %d + %d stars on a %d x %d px sky",
             len(population.bubbles), int(population.bubbles["clear"].sum()), len(population.confusers),
             len(population.hii_regions), len(population.stars8), len(population.stars24), master.shape[1],
             master.shape[0])
    sky = draw_master_sky(master, population, rngs)
    tile_rngs = np.random.SeedSequence(config.seed).spawn(len(specs8) + len(specs24) + 1)[1:]
    specs = specs8 + specs24
    written = []
    iterator = zip(specs, tile_rngs)
    if progress is not None:
        iterator = progress(iterator, total=len(specs), desc="tiles", unit="tile")
    for spec, seq in iterator:
        data = render_tile(spec, sky, population, config.region, np.random.default_rng(seq))
        path = folder / spec.filename
        _write_tile(path, data, spec, config)
        written.append(path)
    catalogue, selection, confusers, truth = _write_catalogue(folder, population)
    seconds = time.perf_counter() - start
    files = SurveyFiles(folder, written[: len(specs8)], written[len(specs8):], catalogue, selection, confusers,
                        folder / "synth_run.json", len(population.catalogue),
                        int(population.catalogue["clear"].sum()), seconds, truth)
    record = run_record("synth", {"region": dataclasses.asdict(config.region), "pixscale": config.pixscale,
                                  "mode": config.mode, "hardening": dataclasses.asdict(config.hardening)},
                        seed=config.seed)
    record.update(seconds=round(seconds, 2), tiles_8um=[p.name for p in files.tiles8],
                  tiles_24um=[p.name for p in files.tiles24], n_bubbles=files.n_bubbles, n_clear=files.n_clear)
    write_json(files.record, record)
    return files
