"""Ways the real sky is harder than the standard synthetic twin, each a named switch calibrated on real data.

The standard twin (every switch off) is what tests, the demo and the
shipped detector were built on. A detector trained on it makes several
times more false positives on real Milky Way Project fields than on their
twins, mostly on compact 24 µm sources with 8 µm counterparts, and the
real catalogue is less exact than the twin's. `Hardening` adds what the
standard twin leaves out; `HARD` switches all of it on with the numbers
below, and where each number comes from is said beside it.

* ``compact_sources``: red compact sources (young stellar objects, AGB
  stars, compact HII regions): a 24 µm point source with an 8 µm
  counterpart and a small 8 µm halo. On the real field GLM_04130-0013 a
  census of 24 µm peaks (`bubblenet.synth.realism.compact_source_census`)
  finds 863 per deg² bright enough to matter, 264 of them with an 8 µm
  counterpart; the standard twin in the same display stretch has 327-351
  and 24-44 (seeds 0-2), a `HARD` twin 748-778 and 244-283. The bright
  HII regions below take the top of the display stretch and leave fewer
  compact sources above the census's threshold, so their density was
  raised from 900 to 1100 per deg² when the regions were added.
* ``hii_blobs``: more compact HII regions, filled 8 + 24 µm blobs of
  0.25-1.5′ (`bubblenet.synth.realism.hii_blob_census`): the real field has
  22 per deg² with 8 µm, the standard twin 9-14. `HARD` adds none: its
  WISE HII regions and compact small bubbles (``compact_bubbles``) give
  21-23 (seeds 0-2) with only the standard 3 per deg². Before the small
  bubbles were drawn compact, 25 more per deg² were needed (45 before the
  WISE regions were drawn): the real field's blobs are partly its small
  DR2 bubbles.
* ``hii_regions``: the HII regions of the WISE catalogue (Anderson et al.
  2014), at their catalogued positions (a twin, less those that are its
  DR2 bubbles) or resampled at the density of those that are no DR2
  bubble (a random sky: 17.4 per deg² in the inner plane), radii and
  GLIMPSE/MIPSGAL fluxes (`bubblenet.synth.hii_regions`): the real field's
  brightest structure, a 440″ complex holding a clear bubble, which the
  standard twin lacks.
* ``saturated_cores``: the share of clear bubbles whose central 24 µm source
  saturates MIPSGAL and leaves a NaN core (Carey et al. 2009: saturation
  near 2 Jy for point sources; bright HII regions inside bubbles saturate
  over up to thousands of its 1.25″ pixels).
* ``uncatalogued``: bubbles per deg² that are drawn but not listed, as real
  bubbles are absent from MWP: Nishimoto et al. (2025) found 1413 bubbles
  new to MWP over 256 deg², 5.5 per deg². They are written to the truth file
  only.
* ``position_scatter``, ``size_scatter``: how far the catalogue is from the
  shells, in units of each DR2 bubble's own ``Disp`` (per axis) and
  ``e_Reff/Reff`` (in ln Reff). MWP DR2 bubbles lie 0.47 Disp per axis from
  their MWP DR1 counterparts (1914 pairs within one MajAxis, Rayleigh median),
  and their ln Reff differ by a robust 0.17 from DR1's, 0.78 e_Reff/Reff;
  with two equal independent errors, each catalogue is off by
  0.47/√2 = 0.33 Disp and 0.78/√2 = 0.55 e_Reff/Reff.
* ``compact_bubbles``: small bubbles drawn as compact HII regions, filled
  8 µm disks whose 24 µm emission follows them, rather than an 8 µm ring
  about a 24 µm core (`compact_share`): on the real field the DR2 bubbles
  under 1.4′ look so (docs/measurements.md, "Small bubbles").
* ``stars_8um``: more 8 µm point sources (stars with no 24 µm counterpart),
  a probe, off in `HARD`. The real field has about twice the hardened
  twin's 8 µm point sources 10-40 display levels above a 47″ running median
  (`bubblenet.synth.realism.point_source_census_8um`: 12,662, 6,275 and
  2,465 per deg² above 10, 20 and 40 levels; the twin 6,602-8,708,
  2,668-3,191 and 1,449-1,616, seeds 0-2, JPEG), and a third more above 80
  (1,188 against 777-931).
  1e5 more per deg² of 5-150 mJy (`STARS_8UM_FLUX`: fainter ones do not
  reach 10 levels, brighter ones overshoot at 80) match that census, but
  that is twice the standard sky's own 8 µm star density, itself of
  GLIMPSE's order, so the real field's extra peaks are presumably compact
  nebular knots rather than stars (not measured), and `HARD` does not draw
  them as stars.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table, vstack

from bubblenet.synth.layout import Region

__all__ = ["Hardening", "HARD", "scatter_catalogue", "dr2_like_errors", "draw_compact_sources", "draw_saturated_cores",
           "compact_share", "draw_compact_looks", "draw_stars_8um"]


@dataclasses.dataclass(frozen=True)
class Hardening:
    """What a synthetic survey adds to make its sky as hard as the real one.

    Attributes
    ----------
    compact_sources : float
        Red compact sources per deg² (YSO-like: 24 µm point source, 8 µm counterpart and halo),
        on top of the standard stars; their latitudes follow the confusers' exponential law (scale height 0.4°).
    hii_blobs : float
        More compact HII regions per deg² (filled 8 + 24 µm blobs of 0.25-1.5′, no shell: the standard
        sky's ``hii_blob`` look-alikes), on top of the standard 3 per deg².
    hii_regions : float
        Share (0-1) of the WISE catalogue's HII regions drawn (`bubblenet.synth.hii_regions`): a twin
        keeps each of its field's regions with this probability, a random sky draws them at this
        share of the catalogue's density.
    saturated_cores : float
        Share (0-1) of clear bubbles given a central 24 µm source above saturation, which the
        24 µm tiles leave NaN.
    uncatalogued : float
        Bubbles per deg² drawn on the sky but left out of the catalogue (written to the truth file),
        averaged over latitudes within 1° of the plane: like the random bubbles they thin out
        exponentially with latitude (scale height 0.5°), so a mid-plane strip gets more per deg²
        than this. Their names encode where they are drawn.
    position_scatter : float
        Standard deviation, per axis and in units of each bubble's ``Disp``, of the catalogue
        position about the drawn shell's centre.
    size_scatter : float
        Standard deviation of ln(catalogue Reff / drawn Reff), in units of each bubble's
        ``e_Reff / Reff``.
    compact_bubbles : float
        MajAxis (arcmin) at which a bubble looks half like a ring and half like a compact HII
        region (`compact_share`; `bubblenet.synth.render.ShellParams.compact`); 0 for rings only.
    stars_8um : float
        More 8 µm point sources per deg² (stars with no 24 µm counterpart), with fluxes of
        `STARS_8UM_FLUX` and uniform on the sky (`draw_stars_8um`), on top of the standard
        `bubblenet.synth.population.STAR_DENSITY_8UM`.
    """

    compact_sources: float = 0.0
    hii_blobs: float = 0.0
    hii_regions: float = 0.0
    saturated_cores: float = 0.0
    uncatalogued: float = 0.0
    position_scatter: float = 0.0
    size_scatter: float = 0.0
    compact_bubbles: float = 0.0
    stars_8um: float = 0.0

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"hardening {field.name} must be a number, got {value!r}")
        for name in ("compact_sources", "hii_blobs", "uncatalogued", "position_scatter", "size_scatter",
                     "compact_bubbles", "stars_8um"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"hardening {name} must be a number >= 0, got {value!r}")
        for name in ("hii_regions", "saturated_cores"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"hardening {name} is a share between 0 and 1, got {getattr(self, name)!r}")

    @property
    def active(self) -> bool:
        """Whether anything is added to the standard twin."""
        return self != Hardening()

    @property
    def scatters(self) -> bool:
        """Whether the catalogue differs from the drawn shells."""
        return self.position_scatter > 0 or self.size_scatter > 0


#: Everything on, calibrated as the module docstring says.
HARD = Hardening(compact_sources=1100.0, hii_blobs=0.0, hii_regions=1.0, saturated_cores=0.3, uncatalogued=5.5,
                 position_scatter=0.33, size_scatter=0.55, compact_bubbles=1.4)

#: The added 8 µm stars' fluxes (`draw_stars_8um`): faintest and brightest (mJy), slope of dN/dS ∝ S^-slope.
#: At 1e5 per deg² they bring the hardened JPEG twin's 8 µm point sources 10-40 levels above the local median
#: (`bubblenet.synth.realism.point_source_census_8um`) to the real field's, which has about twice the twin's
#: there and a third more above 80; fainter ones do not show, brighter ones overshoot at 80.
STARS_8UM_FLUX = (5.0, 150.0, 1.8)

#: How sharply the look turns from compact to ring about `Hardening.compact_bubbles` (`compact_share`).
COMPACT_STEEPNESS = 8.0
#: Median 24 µm brightness scale of a compact bubble's look (`bubblenet.synth.render.ShellParams.compact_amp24`),
#: in units of the local 24 µm background; log-normal, sd `COMPACT_AMP24_SD` in ln. Clear rings' central
#: sources are drawn at 4. On the real field every small DR2 bubble is bright at 24 µm whatever its kind
#: (centre ranks 0.76-0.95, docs/measurements.md).
COMPACT_AMP24, COMPACT_AMP24_SD = 1.5, 0.5


def compact_share(maj_axis, scale: float) -> np.ndarray:
    """How much (0-1) bubbles of a size look like compact HII regions rather than rings.

    ``1 / (1 + (maj_axis / scale) ** COMPACT_STEEPNESS)``. On the real field
    GLM_04130-0013 every DR2 bubble under 1.4′ is a filled blob whose 8 and
    24 µm planes agree (Pearson correlation 0.72-0.98 within 1.5 MajAxis,
    median 0.86, `bubblenet.synth.realism.bubble_band_correlations`), those
    of 1.46-3.6′ are rings (0.26-0.70, median 0.56): half-way at `HARD`'s 1.4′.

    Parameters
    ----------
    maj_axis : array_like
        MajAxis of each bubble, arcmin.
    scale : float
        MajAxis at which the share is 0.5, arcmin; 0 for none (rings only).

    Returns
    -------
    numpy.ndarray
        One share per bubble, shaped like `maj_axis` (at least 1-d).
    """
    maj_axis = np.atleast_1d(np.asarray(maj_axis, float))
    if scale <= 0:
        return np.zeros_like(maj_axis)
    return 1.0 / (1.0 + (maj_axis / scale) ** COMPACT_STEEPNESS)


def scatter_catalogue(bubbles: Table, rng: np.random.Generator, *, position: float, size: float) -> Table:
    """A copy of a DR2-format table with positions and sizes moved by each row's own errors.

    Parameters
    ----------
    bubbles : astropy.table.Table
        MWP DR2 columns (``GLON``, ``GLAT``, ``Disp``, ``MajAxis``, ``MinAxis``, ``Reff``, ``e_Reff``,
        ``RA_icrs``, ``DE_icrs``).
    rng : numpy.random.Generator
    position : float
        Per-axis standard deviation of the move, in units of ``Disp`` (arcmin).
    size : float
        Standard deviation of the change in ln Reff, in units of ``e_Reff / Reff``; both axes
        scale with Reff, so the shape is kept.

    Returns
    -------
    astropy.table.Table
        The moved table; ``RA_icrs`` and ``DE_icrs`` follow the new positions.
    """
    out = bubbles.copy()
    n = len(out)
    if n == 0:
        return out
    disp_deg = np.nan_to_num(np.asarray(out["Disp"], float)) / 60.0
    glat = np.asarray(out["GLAT"], float) + rng.normal(0.0, 1.0, n) * position * disp_deg
    dlon = rng.normal(0.0, 1.0, n) * position * disp_deg / np.cos(np.radians(glat))
    glon = (np.asarray(out["GLON"], float) + dlon) % 360
    reff = np.asarray(out["Reff"], float)
    rel = np.nan_to_num(np.asarray(out["e_Reff"], float) / np.where(reff > 0, reff, np.nan))
    factor = np.exp(rng.normal(0.0, 1.0, n) * size * rel)
    coords = SkyCoord(l=glon * u.deg, b=glat * u.deg, frame="galactic").icrs
    out["GLON"], out["GLAT"] = glon.round(4), glat.round(4)
    for name in ("MajAxis", "MinAxis", "Reff"):
        out[name] = (np.asarray(out[name], float) * factor).round(2).clip(0.05, None)
    out["RA_icrs"], out["DE_icrs"] = coords.ra.deg.round(5), coords.dec.deg.round(5)
    return out


def dr2_like_errors(bubbles: Table, rng: np.random.Generator) -> Table:
    """A copy with ``Disp`` and ``e_Reff`` drawn as DR2 has them for bubbles of each size.

    Each row gets the ``Disp / MajAxis`` and ``e_Reff / Reff`` of a DR2 bubble
    drawn at random (median 0.28 and 0.23 in DR2), so that a scatter by them
    (`scatter_catalogue`) is as large as the real catalogue's.
    """
    from bubblenet.catalogues.tables import packaged_catalogue

    dr2 = packaged_catalogue("mwp_dr2")
    disp = np.asarray(dr2["Disp"], float) / np.asarray(dr2["MajAxis"], float)
    e_reff = np.asarray(dr2["e_Reff"], float) / np.asarray(dr2["Reff"], float)
    ok = np.isfinite(disp) & np.isfinite(e_reff)
    pick = rng.choice(np.flatnonzero(ok), len(bubbles))
    out = bubbles.copy()
    out["Disp"] = (np.asarray(out["MajAxis"], float) * disp[pick]).round(2)
    out["e_Reff"] = (np.asarray(out["Reff"], float) * e_reff[pick]).round(2)
    return out


#: Red compact sources: 24 µm flux range (mJy) and slope of dN/dS, S8/S24 (log-normal median and sd in ln),
#: and the 8 µm halo's Gaussian sigma range (arcsec). Tuned with the density of `HARD` so that the display
#: twin's compact-source census meets the real field's (the module docstring; docs/measurements.md).
COMPACT_SOURCE_LOOK = {"flux24": (100.0, 5000.0), "slope": 1.8, "ratio8": (2.0, 0.7), "halo_sigma": (4.0, 12.0)}


def draw_compact_sources(region: Region, rng: np.random.Generator, density: float,
                         latitudes) -> tuple[Table, Table, Table]:
    """Red compact sources of a region: the look-alike rows and their 8 and 24 µm point sources.

    Parameters
    ----------
    region : Region
    rng : numpy.random.Generator
    density : float
        Sources per deg².
    latitudes : callable
        ``latitudes(n, rng)`` draws their latitudes (the population's law for confusers).

    Returns
    -------
    confusers, stars8, stars24 : astropy.table.Table
        ``kind = "red"`` rows with ``glon``, ``glat``, ``size_arcmin`` (twice the halo's sigma) and
        ``flux_mjy`` tables, in the population's formats.
    """
    from bubblenet.synth.population import power_law

    look = COMPACT_SOURCE_LOOK
    n = rng.poisson(density * region.area_deg2)
    glon = rng.uniform(region.l_min, region.l_max, n)
    glat = latitudes(n, rng)
    flux24 = power_law(n, *look["flux24"], look["slope"], rng)
    flux8 = flux24 * np.exp(rng.normal(math.log(look["ratio8"][0]), look["ratio8"][1], n))
    sigma = np.exp(rng.uniform(*np.log(look["halo_sigma"]), n))  # arcsec
    confusers = Table({"kind": np.full(n, "red", dtype="U8"), "glon": glon, "glat": glat,
                       "size_arcmin": 2 * sigma / 60.0})
    return confusers, Table({"glon": glon, "glat": glat, "flux_mjy": flux8}), \
        Table({"glon": glon, "glat": glat, "flux_mjy": flux24})


def draw_stars_8um(region: Region, rng: np.random.Generator, density: float) -> Table:
    """More 8 µm stars of a region (`Hardening.stars_8um`), uniform on the sky.

    Parameters
    ----------
    region : Region
    rng : numpy.random.Generator
    density : float
        Stars per deg².

    Returns
    -------
    astropy.table.Table
        ``glon``, ``glat`` and ``flux_mjy`` (`STARS_8UM_FLUX`'s power law), in the population's format.
    """
    from bubblenet.synth.population import power_law

    n = rng.poisson(density * region.area_deg2)
    return Table({"glon": rng.uniform(region.l_min, region.l_max, n),
                  "glat": rng.uniform(region.b_min, region.b_max, n),
                  "flux_mjy": power_law(n, *STARS_8UM_FLUX, rng)})


def draw_saturated_cores(bubbles: Table, rng: np.random.Generator, share: float) -> Table:
    """Mark a share of the clear bubbles with a saturated central 24 µm source.

    Adds ``core24`` (peak in units of the 24 µm saturation level, 0 for none) and ``core_sigma``
    (the core's Gaussian sigma in units of the semi-major axis). Peaks of 1.5-8 times saturation
    and sigmas of 0.06-0.2 MajAxis give NaN cores from a few to thousands of MIPSGAL's 1.25″ pixels.
    """
    out = bubbles.copy()
    n = len(out)
    pick = np.asarray(out["clear"], bool) & (rng.uniform(size=n) < share)
    out["core24"] = np.where(pick, np.exp(rng.uniform(math.log(1.5), math.log(8.0), n)), 0.0)
    out["core_sigma"] = np.where(pick, rng.uniform(0.06, 0.2, n), 0.0)
    return out


def draw_compact_looks(bubbles: Table, rng: np.random.Generator, scale: float) -> Table:
    """Give the bubbles their share of a compact HII region's look and its 24 µm brightness.

    Adds ``compact`` (`compact_share` of each row's ``MajAxis``, to three decimals as
    the truth file lists it) and ``compact_amp24`` (the look's 24 µm brightness scale in
    units of the local background, `COMPACT_AMP24`; 0 where ``compact`` is 0). Drawn here
    from a stream of its own, not where the shells are rendered, so that the rings'
    own draws stay as they are with the look on or off.
    """
    out = bubbles.copy()
    share = compact_share(out["MajAxis"], scale).round(3)
    amp24 = np.exp(rng.normal(math.log(COMPACT_AMP24), COMPACT_AMP24_SD, len(out)))
    out["compact"] = share
    out["compact_amp24"] = np.where(share > 0, amp24, 0.0).round(3)
    return out


def with_rows(table: Table, extra: Table) -> Table:
    """`table` with `extra`'s rows appended (columns of `table` only)."""
    if len(extra) == 0:
        return table
    return vstack([table, extra[table.colnames]], metadata_conflicts="silent")
