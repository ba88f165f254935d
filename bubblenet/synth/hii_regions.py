"""HII regions of the WISE catalogue drawn on the synthetic sky, at their catalogued sizes and fluxes.

The real field GLM_04130-0013 is dominated by one bright HII complex
(WISE G041.074-00.162, 440″ in radius, 223 Jy at 8 µm and 619 Jy at
24 µm), and a clear DR2 bubble sits inside it; the standard twin has
nothing like it, only filled blobs of 0.25-1.5′. The WISE catalogue of
Galactic HII regions (Anderson et al. 2014, ApJS 212, 1; version 2.2,
packaged with bubblenet) lists every such region with its radius, and
for 932 of its 8412 entries the background-subtracted GLIMPSE 8 µm and
MIPSGAL 24 µm fluxes (Makai et al. 2017, ApJ 846, 64). So:

* **where and how large**: a twin draws the catalogue's own regions inside
  its field, a random sky resamples the catalogue's regions of its
  latitude range (their radii and fluxes together) at random longitudes,
  at the catalogue's density in the inner plane. A random sky's bubbles
  are drawn on their own, so its pool leaves out the regions that are MWP
  DR2 bubbles (`apart_from_bubbles`): of the 6147 regions at
  −65° ≤ l ≤ 65°, −1° ≤ b ≤ 1° (23.6 per deg²), `RANDOM_DENSITY` per deg²
  remain (4517 regions);
* **how bright**: the catalogued fluxes where they are measured; elsewhere
  (radio-quiet and candidate regions, most of the catalogue) the two
  fluxes of a measured region of about the same radius (one of the 25
  nearest in radius, at random): the measured fluxes grow as R^1.2 at
  both bands, not as the area, with a scatter of a factor 3 (1.1 in ln F)
  about that law, and F24 / F8 has a median of 2.5 (16-84 %: 1.2-5.2).
  Candidates without radio detections are likely fainter than the
  measured regions, so this errs on the bright side;
* **what they look like** (`hii_region_shapes`, shapes only — each shape
  sums to one within the radius, where the catalogued flux was measured): warm dust at
  24 µm concentrated in the ionised gas (40 % of it in a core of σ =
  0.3 R, the rest with σ = 0.6 R), PAH emission at 8 µm in the photodissociation region around it,
  an irregular rim near the catalogue radius (which WISE measured from
  that rim, Anderson et al. 2014) brighter on one side, as in
  blister-like complexes, plus a filled part; both bands modulated by a
  clumpy log-normal field (a power-law spectrum, slope 3), much more at
  8 µm than at 24 µm. Their bright cores saturate MIPSGAL where the
  24 µm surface brightness passes the saturation level, as real bright
  HII regions do.

Many WISE HII regions are MWP bubbles too (Anderson et al. 2014): where a
drawn bubble and a region are the same object, at the same place and
scale, the bubble already draws it (its shell and its 24 µm interior), so
`apart_from_bubbles` leaves the region out; a region much larger than the
bubbles inside it, such as the complex above, is kept, and its bubbles
sit in its emission as real ones do, and so is a region much smaller than
a bubble around it (a compact HII region on a shell, say). A twin matches
its regions against the catalogued bubbles, where both catalogues put them,
so how many it keeps does not depend on the seed.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from astropy.table import Table

from bubblenet.synth import render
from bubblenet.synth.layout import Region, unwrap_longitude

__all__ = ["HII_REGION_COLUMNS", "HII_REGION_LOOK", "INNER_PLANE", "RANDOM_DENSITY", "REACH", "draw_hii_regions",
           "apart_from_bubbles", "hii_region_shapes", "no_hii_regions"]

#: The inner plane over which the catalogue's density is taken (l within 65 deg of 0, b within 1 deg: 260 deg²,
#: as MWP).
INNER_PLANE = {"l_max": 65.0, "b_max": 1.0}

#: How many measured regions of about the same radius an unmeasured one may take its fluxes from.
NEIGHBOURS = 25

#: A region at a bubble whose radius is within this factor of the bubble's MajAxis is that bubble
#: (`apart_from_bubbles`).
SAME_OBJECT_SCALE = 2.0

#: The columns of `draw_hii_regions`'s table, in order, and their types.
HII_REGION_COLUMNS = {"name": "U20", "resampled_from": "U20", "glon": float, "glat": float, "radius_arcsec": float,
                      "flux8_jy": float, "flux24_jy": float, "measured": bool, "seed": np.int64}

#: How far out, in radii, a region's emission reaches (`hii_region_shapes` tapers it to zero there).
REACH = 3.0

#: Inner-plane HII regions per deg² that are no MWP DR2 bubble, as a random sky draws them (a test recounts it).
RANDOM_DENSITY = 17.4

#: The shape numbers of `hii_region_shapes` (units of the catalogue radius R unless said).
HII_REGION_LOOK = {
    "core24": (0.4, 0.3),  # share of the 24 µm flux in the core, its Gaussian sigma
    "halo24": 0.6,  # sigma of the rest
    "rim8": (0.6, 0.8, 0.2),  # share of the 8 µm flux in the rim, its radius and Gaussian width
    "fill8": 0.8,  # sigma of the rest
    "one_sided": (0.3, 0.9),  # range of the rim's first-harmonic amplitude (brighter on one side)
    "clumps": (0.8, 0.3),  # sd of the ln brightness modulation at 8 and 24 µm
    "clump_slope": 3.0,  # power-law slope of the modulating field's spectrum
    # Drawn flux over catalogued flux, per band. With the catalogued fluxes the display-stretched twin of the
    # real field had half the real field's mean 8 µm excess over its regions with R >= 80″ (levels over the
    # 1.8-2 R ring, in rings of 0.2 R) and 1.3-1.6 times its 24 µm centre; with these scales its 9 such regions
    # that are no DR2 bubble have the real 24 µm profile, and the real 8 µm one at the rim and beyond but half
    # of it inside (docs/measurements.md). Aperture photometry against a local background (Makai et al. 2017)
    # removes the part of a region's own PAH emission that spreads beyond its radius.
    "flux_scale": {"8um": 2.0, "24um": 0.7},
}


def _catalogue() -> Table:
    """The packaged WISE catalogue: name, glon, glat, radius (arcsec) and the two fluxes (Jy, 0: not measured)."""
    from bubblenet.catalogues.tables import packaged_catalogue

    wise = packaged_catalogue("wise_hii")
    flux8 = np.nan_to_num(np.asarray(wise["GLIMPSE 8um"], float)).clip(0, None)
    flux24 = np.nan_to_num(np.asarray(wise["MIPSGAL 24um"], float)).clip(0, None)
    return Table({"name": np.asarray(wise["name"]).astype(str), "glon": np.asarray(wise["glon"], float),
                  "glat": np.asarray(wise["glat"], float), "radius_arcsec": np.asarray(wise["Radius"], float),
                  "flux8_jy": flux8, "flux24_jy": flux24})


def _inner_plane(table: Table, b_min: float, b_max: float) -> np.ndarray:
    """Rows in the inner plane (`INNER_PLANE`) with latitudes between b_min and b_max."""
    lon = unwrap_longitude(np.asarray(table["glon"], float), 0.0)
    lat = np.asarray(table["glat"], float)
    return (np.abs(lon) <= INNER_PLANE["l_max"]) & (lat >= max(b_min, -INNER_PLANE["b_max"])) \
        & (lat <= min(b_max, INNER_PLANE["b_max"]))


def draw_hii_regions(region: Region, rng: np.random.Generator, *, mode: str, share: float = 1.0) -> Table:
    """The HII regions of a synthetic sky, in sky units.

    Parameters
    ----------
    region : Region
    rng : numpy.random.Generator
    mode : {"twin", "random"}
        ``twin``: the catalogue's regions inside `region`; ``random``: the catalogue's regions of the
        region's latitude range, resampled at random longitudes at the catalogue's inner-plane density.
    share : float
        Share (0-1) of them drawn: each region is kept with this probability.

    Returns
    -------
    astropy.table.Table
        ``name`` (the WISE name of the region drawn; on a random sky a name of the same form made from
        where it is drawn), ``resampled_from`` (the WISE name of the catalogued region it copies: its
        own on a twin), ``glon``, ``glat`` (deg), ``radius_arcsec``, ``flux8_jy``, ``flux24_jy`` (the
        catalogued fluxes; a flux not catalogued taken from a measured region of about the same radius,
        as the module docstring says), ``measured`` (whether both fluxes are catalogued) and ``seed``
        (of the region's clumps, so its look does not depend on what else is drawn).

    Notes
    -----
    A twin takes the regions whose centres lie in `region`: a large region centred just outside
    it is left out, though its emission would reach in.
    """
    wise = _catalogue()
    if mode == "twin":
        out = wise[region.contains(wise["glon"], wise["glat"])]
        out["resampled_from"] = out["name"]
    elif mode == "random":
        pool = _random_pool(region.b_min, region.b_max)
        per_deg_lon = len(pool) / (2 * INNER_PLANE["l_max"])
        n = rng.poisson(per_deg_lon * (region.l_max - region.l_min)) if len(pool) else 0
        out = pool[rng.integers(0, len(pool), n)] if n else pool[:0].copy()
        out["resampled_from"] = out["name"]
        out["glon"] = rng.uniform(region.l_min, region.l_max, n) % 360
        out["name"] = [f"G{lon:07.3f}{lat:+07.3f}" for lon, lat in zip(out["glon"], out["glat"])]
    else:
        raise ValueError(f"mode must be 'twin' or 'random', got {mode!r}")
    out = out[rng.uniform(size=len(out)) < share]
    measured = (np.asarray(out["flux8_jy"]) > 0) & (np.asarray(out["flux24_jy"]) > 0)
    pick = _similar_measured(wise, np.asarray(out["radius_arcsec"], float), rng)
    for band in ("flux8_jy", "flux24_jy"):  # a flux the catalogue lacks: the neighbour's
        own = np.asarray(out[band], float)
        out[band] = np.where(own > 0, own, np.asarray(wise[band], float)[pick])
    out["measured"] = measured
    out["seed"] = rng.integers(0, 2**31, len(out))
    return out[list(HII_REGION_COLUMNS)]


def no_hii_regions() -> Table:
    """An empty table of `draw_hii_regions`'s columns: a sky without HII regions."""
    return Table(names=tuple(HII_REGION_COLUMNS), dtype=tuple(HII_REGION_COLUMNS.values()))


def apart_from_bubbles(regions: Table, bubbles: Table, *, scale: float = SAME_OBJECT_SCALE) -> Table:
    """The HII regions that are not one of the drawn bubbles.

    A region is the same object as a bubble when the bubble's centre lies within the larger of
    the region's radius and the bubble's ``MajAxis`` and the radius is within a factor `scale`
    of the ``MajAxis`` (from ``MajAxis / scale`` to ``scale * MajAxis``).

    Parameters
    ----------
    regions : astropy.table.Table
        `draw_hii_regions` rows.
    bubbles : astropy.table.Table
        The drawn shells, MWP DR2 columns (``GLON``, ``GLAT``, ``MajAxis`` in arcmin).
    scale : float
        Largest ratio, either way, of a region's radius to the ``MajAxis`` of a bubble it is.

    Returns
    -------
    astropy.table.Table
        The rows of `regions` that are none of the bubbles, in their order.
    """
    if len(regions) == 0 or len(bubbles) == 0:
        return regions
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    at = SkyCoord(l=np.asarray(regions["glon"], float) * u.deg, b=np.asarray(regions["glat"], float) * u.deg,
                  frame="galactic")
    shells = SkyCoord(l=np.asarray(bubbles["GLON"], float) * u.deg, b=np.asarray(bubbles["GLAT"], float) * u.deg,
                      frame="galactic")
    radius = np.asarray(regions["radius_arcsec"], float)
    major = np.asarray(bubbles["MajAxis"], float)[None, :] * 60.0
    same = np.zeros(len(regions), bool)
    for start in range(0, len(regions), 256):  # regions x bubbles separations, a block of regions at a time
        block = slice(start, start + 256)
        apart = at[block, None].separation(shells[None, :]).arcsec
        r = radius[block, None]
        same[block] = ((apart <= np.maximum(r, major)) & (r <= scale * major) & (r >= major / scale)).any(axis=1)
    return regions[~same]


@functools.lru_cache(maxsize=8)
def _random_pool(b_min: float, b_max: float) -> Table:
    """The inner-plane regions between latitudes b_min and b_max that are no MWP DR2 bubble (read-only: cached)."""
    from bubblenet.catalogues.tables import packaged_catalogue

    wise = _catalogue()
    return apart_from_bubbles(wise[_inner_plane(wise, b_min, b_max)], packaged_catalogue("mwp_dr2"))


def _similar_measured(wise: Table, radius: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each radius, the row of one of the `NEIGHBOURS` measured regions closest to it in radius, at random."""
    known = np.flatnonzero((wise["flux8_jy"] > 0) & (wise["flux24_jy"] > 0))
    order = known[np.argsort(np.asarray(wise["radius_arcsec"], float)[known], kind="stable")]
    sorted_radius = np.asarray(wise["radius_arcsec"], float)[order]
    # The neighbours of a radius are a window of the sorted radii around where it would sit.
    k = min(NEIGHBOURS, len(order))
    start = np.clip(np.searchsorted(sorted_radius, radius) - k // 2, 0, len(order) - k)
    return order[start + rng.integers(0, k, len(radius))]


def hii_region_shapes(dx: np.ndarray, dy: np.ndarray, radius: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The 8 and 24 µm shapes of one HII region at pixel offsets from its centre, each summing to one within R.

    Parameters
    ----------
    dx, dy : numpy.ndarray
        Offsets from the centre of a square patch reaching at least `REACH` radii out, in the same units
        as `radius` (pixels, or samples of a coarser grid: `bubblenet.synth.survey` draws large regions so).
    radius : float
        The catalogue radius, in those units.
    rng : numpy.random.Generator
        Draws the rim's orientation and strength and the clumps.

    Returns
    -------
    shape8, shape24 : numpy.ndarray
        float32, like `dx`; multiply by the flux per pixel. The catalogued fluxes are aperture
        fluxes within the radius (Makai et al. 2017), so each shape sums to one there, and its
        wings beyond the radius add more, tapered to zero between 2.5 R and `REACH` R so that no
        patch edge shows.
    """
    look = HII_REGION_LOOK
    rho = np.hypot(dx, dy) / radius
    phi = np.arctan2(dy, dx)
    inside = rho <= 1

    def unit(image):  # the catalogued fluxes are measured within the radius (Makai et al. 2017)
        total = float(image[inside].sum())
        return image / total if total > 0 else image

    core_share, core_sigma = look["core24"]
    shape24 = core_share * unit(np.exp(-0.5 * (rho / core_sigma) ** 2)) \
        + (1 - core_share) * unit(np.exp(-0.5 * (rho / look["halo24"]) ** 2))
    rim_share, rim_radius, rim_width = look["rim8"]
    side = 1 + rng.uniform(*look["one_sided"]) * np.cos(phi - rng.uniform(0, 2 * math.pi))
    rim = np.exp(-0.5 * ((rho - rim_radius) / rim_width) ** 2) * side
    shape8 = rim_share * unit(rim) + (1 - rim_share) * unit(np.exp(-0.5 * (rho / look["fill8"]) ** 2))
    # One field modulates both bands (dust and PAHs lie in the same clumps), more at 8 µm.
    field = render.power_law_field(dx.shape, look["clump_slope"], rng)
    for_8, for_24 = look["clumps"]
    # The wings go smoothly to zero before the patch's edge (the 8 µm fill is still 4 % of its peak at 2 R).
    taper = np.clip((REACH - rho) / (REACH - 2.5), 0.0, 1.0) ** 2
    shape8 = unit(shape8 * np.exp(for_8 * field) * taper)
    shape24 = unit(shape24 * np.exp(for_24 * field) * taper)
    return shape8.astype(np.float32), shape24.astype(np.float32)
