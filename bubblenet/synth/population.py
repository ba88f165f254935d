"""What lies on the synthetic sky: bubbles, look-alikes and stars, in sky units.

Two ways to choose bubbles:

* ``twin`` (default): the real Milky Way Project DR2 bubbles of the region
  (Jayasinghe et al. 2019), at their catalogue positions, sizes,
  eccentricities and orientations. Those in the clear list of Nishimoto et
  al. (2025) get a well-defined 8 µm shell around 24 µm emission; those whose
  8 µm shell alone is clear but that are not clear bubbles get little 24 µm;
  the rest are fainter and more broken, as most MWP bubbles are. The paper's
  "8 µm" list is bubbles whose 8 µm shell alone is clear (518 of its 616
  names are clear bubbles too, with 24 µm inside), not bubbles without
  24 µm: ``clear8`` marks its members, and a synthetic survey writes their
  names beside the clear ones (``shells_8um.txt``).
* ``random``: the same kinds of bubble at random places, with sizes and
  eccentricities drawn from the DR2 distributions, for any region.

The bubble table has the MWP DR2 columns (VizieR J/MNRAS/488/1141), plus
``clear``, so that downstream code cannot tell it from the real catalogue.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table

from bubblenet.catalogues.tables import packaged_catalogue, read_selection
from bubblenet.synth.hardening import (Hardening, draw_compact_looks, draw_compact_sources, draw_saturated_cores,
                                      draw_stars_8um, dr2_like_errors, scatter_catalogue, with_rows)
from bubblenet.synth.hii_regions import apart_from_bubbles, draw_hii_regions, no_hii_regions
from bubblenet.synth.layout import Region, unwrap_longitude

__all__ = ["Population", "draw_population", "DR2_COLUMNS", "mwp_name", "BUBBLE_KINDS", "power_law"]

#: The MWP DR2 table's columns, in VizieR order.
DR2_COLUMNS = ("MWP", "GLON", "GLAT", "Disp", "MajAxis", "MinAxis", "Reff", "e_Reff", "theta", "e_theta",
               "Ecc", "HR2", "HR3", "RelFlag", "HierFlag", "IDDR1", "IDA14", "Dist", "IDCW",
               "RA_icrs", "DE_icrs")

#: Bubble kinds, how they look: "clear" (8 µm shell around 24 µm emission),
#: "shell8" (clear 8 µm shell, little 24 µm: in the 8 µm list but not clear) and "faint" (the rest).
BUBBLE_KINDS = ("clear", "shell8", "faint")

#: Surface densities per square degree near the mid-plane of the inner Galaxy.
BUBBLE_DENSITY = 10.0  # MWP DR2: 2600 bubbles in ~260 deg² (|l| <= 65°, |b| <= 1°)
STAR_DENSITY_8UM = 5.0e4  # GLIMPSE 8 µm detections per deg², order of magnitude
STAR_DENSITY_24UM = 4.0e3  # MIPSGAL 24 µm point-source catalogue: ~1.2e6 in ~300 deg²
#: 8 µm star fluxes: the faint limit and the brightest (mJy) and the slope of dN/dS ∝ S^-slope.
STAR_FLUX_8UM = (0.5, 3000.0, 1.8)
CONFUSER_DENSITY = {"yso": 8.0, "hii_blob": 3.0, "cluster": 2.0}  # per deg², look-alikes


@dataclasses.dataclass
class Population:
    """Everything drawn on the sky.

    Attributes
    ----------
    bubbles : astropy.table.Table
        The shells drawn on the sky (the truth): MWP DR2 columns plus ``clear`` (bool), ``clear8``
        (bool: the 8 µm shell alone is clear, the paper's 8 µm list), ``kind`` (one of
        `BUBBLE_KINDS`) and ``catalogued`` (bool: listed in `catalogue`); a hardened sky
        (`bubblenet.synth.hardening`) adds ``core24`` and ``core_sigma``, and
        ``compact`` and ``compact_amp24`` (`bubblenet.synth.hardening.draw_compact_looks`) where it draws
        compact bubbles.
    confusers : astropy.table.Table
        ``kind`` (``yso``, ``hii_blob``, ``cluster``, and ``red`` on a hardened sky), ``glon``,
        ``glat``, ``size_arcmin``: bubble look-alikes, written out for diagnostics.
    stars8, stars24 : astropy.table.Table
        Point sources: ``glon``, ``glat``, ``flux_mjy``.
    catalogue : astropy.table.Table, optional
        The bubbles as the written catalogue lists them: the ``catalogued`` rows, in the same
        order and with the same names, where the catalogue puts them (a hardened twin's
        shells are moved off the real DR2 rows, a hardened random sky's listing off its
        shells; `bubblenet.synth.hardening.scatter_catalogue`); without hardening, `bubbles`
        itself.
    hii_regions : astropy.table.Table, optional
        HII regions of the WISE catalogue drawn on a hardened sky (`bubblenet.synth.hii_regions.draw_hii_regions`
        columns); none by default.
    """

    bubbles: Table
    confusers: Table
    stars8: Table
    stars24: Table
    catalogue: Table | None = None
    hii_regions: Table | None = None

    def __post_init__(self):
        if self.hii_regions is None:
            self.hii_regions = no_hii_regions()
        if "catalogued" not in self.bubbles.colnames:
            self.bubbles["catalogued"] = np.ones(len(self.bubbles), bool)
        if self.catalogue is None:
            self.catalogue = self.bubbles


def mwp_name(glon, glat) -> list[str]:
    """MWP DR2-style names, e.g. ``MWP2G0100769-0042035`` for (10.0769, -0.42035)."""
    out = []
    for lon, lat in zip(np.atleast_1d(glon), np.atleast_1d(glat)):
        out.append(f"MWP2G{int(round(lon % 360 * 1e4)):07d}{'-' if lat < 0 else '+'}{int(round(abs(lat) * 1e5)):07d}")
    return out


def draw_population(region: Region, rng: np.random.Generator, *, mode: str = "twin",
                    hardening: Hardening | None = None, hard_rng: np.random.Generator | None = None) -> Population:
    """Choose the bubbles, look-alikes and stars of a region.

    Parameters
    ----------
    region : Region
    rng : numpy.random.Generator
    mode : {"twin", "random"}
        Real DR2 bubbles of the region, or random ones.
    hardening : Hardening, optional
        What to add to the standard sky (`bubblenet.synth.hardening`); nothing by default.
    hard_rng : numpy.random.Generator, optional
        The generator of everything `hardening` adds, kept apart from `rng` so that the
        standard sky underneath stays the same; required when `hardening` is active.
    """
    if mode == "twin":
        bubbles = _twin_bubbles(region)
    elif mode == "random":
        bubbles = _random_bubbles(region, rng)
    else:
        raise ValueError(f"mode must be 'twin' or 'random', got {mode!r}")
    confusers = _confusers(region, rng)
    stars8, stars24 = _stars(region, rng, confusers)
    population = Population(bubbles, confusers, stars8, stars24)
    if hardening is not None and hardening.active:
        if hard_rng is None:
            raise ValueError("a hardened population needs its own generator (hard_rng)")
        population = _harden(population, region, mode, hardening, hard_rng)
    return population


def _harden(population: Population, region: Region, mode: str, hardening: Hardening,
            rng: np.random.Generator) -> Population:
    """The population with `hardening`'s additions.

    Each addition draws from a generator of its own (spawned from `rng`), so
    that switching one on or off leaves the others' draws as they were.
    """
    # A new addition's stream goes last: spawning more children leaves the first ones as they were.
    streams = dict(zip(("errors", "scatter", "uncatalogued", "cores", "hii_blobs", "compact", "hii_regions",
                        "compact_looks", "stars_8um"), rng.spawn(9)))
    drawn = catalogue = population.bubbles
    if hardening.scatters:
        if mode == "random":
            # Random bubbles carry made-up errors; a scatter by them needs DR2's own.
            drawn = catalogue = dr2_like_errors(drawn, streams["errors"])
        moved = scatter_catalogue(drawn, streams["scatter"], position=hardening.position_scatter,
                                  size=hardening.size_scatter)
        # The twin's catalogue is the real DR2, so its shells move; random shells stay, their listing moves.
        drawn, catalogue = (moved, drawn) if mode == "twin" else (drawn, moved)
    if hardening.uncatalogued > 0:
        unlisted = dr2_like_errors(_random_bubbles(region, streams["uncatalogued"], density=hardening.uncatalogued),
                                   streams["uncatalogued"])
        unlisted["catalogued"] = np.zeros(len(unlisted), bool)
        drawn = with_rows(drawn, unlisted)
    drawn = draw_saturated_cores(drawn, streams["cores"], hardening.saturated_cores)
    if hardening.compact_bubbles > 0:
        drawn = draw_compact_looks(drawn, streams["compact_looks"], hardening.compact_bubbles)
    confusers, stars8, stars24 = population.confusers, population.stars8, population.stars24
    if hardening.hii_blobs > 0:
        confusers = with_rows(confusers, _confusers(region, streams["hii_blobs"], {"hii_blob": hardening.hii_blobs}))
    if hardening.compact_sources > 0:
        extra, extra8, extra24 = draw_compact_sources(
            region, streams["compact"], hardening.compact_sources, lambda n, r: _draw_latitudes(region, 0.4, n, r))
        confusers, stars8, stars24 = (with_rows(confusers, extra), with_rows(stars8, extra8),
                                      with_rows(stars24, extra24))
    if hardening.stars_8um > 0:
        stars8 = with_rows(stars8, draw_stars_8um(region, streams["stars_8um"], hardening.stars_8um))
    hii_regions = None
    if hardening.hii_regions > 0:
        hii_regions = draw_hii_regions(region, streams["hii_regions"], mode=mode, share=hardening.hii_regions)
        if mode == "twin":
            # The same objects in both catalogues, where the catalogues put them (a random sky's pool leaves
            # DR2's out already, and its bubbles fall where they may).
            hii_regions = apart_from_bubbles(hii_regions, population.bubbles)
    return Population(drawn, confusers, stars8, stars24, catalogue=catalogue, hii_regions=hii_regions)


def _kinds(names) -> np.ndarray:
    clear, shell8 = read_selection("clear"), read_selection("8um")
    return np.array(["clear" if n in clear else "shell8" if n in shell8 else "faint" for n in names], dtype="U6")


def _twin_bubbles(region: Region) -> Table:
    dr2 = packaged_catalogue("mwp_dr2")
    inside = region.contains(dr2["GLON"], dr2["GLAT"])
    out = Table(dr2[inside][list(DR2_COLUMNS)], masked=False)
    out["kind"] = _kinds(out["MWP"])
    out["clear"] = out["kind"] == "clear"
    out["clear8"] = np.isin(np.asarray(out["MWP"]).astype(str), sorted(read_selection("8um")))
    return out


def _random_bubbles(region: Region, rng: np.random.Generator, *, density: float = BUBBLE_DENSITY) -> Table:
    dr2 = packaged_catalogue("mwp_dr2")
    n = rng.poisson(density * region.area_deg2 * _latitude_share(region, 0.5))
    glon = rng.uniform(region.l_min, region.l_max, n).round(4)
    glat = _draw_latitudes(region, 0.5, n, rng).round(4)
    log_major = np.log(np.asarray(dr2["MajAxis"], float))
    major = np.exp(rng.normal(log_major.mean(), log_major.std(), n)).round(2).clip(0.1, 20.0)
    ecc = rng.choice(np.asarray(dr2["Ecc"], float), n)
    minor = (major * np.sqrt(1 - ecc**2)).round(2).clip(0.05, None)
    kinds = _kinds(dr2["MWP"])
    drawn = rng.choice(len(kinds), n)  # kinds in DR2 proportions (the same draws as choosing from `kinds`)
    kind = kinds[drawn]
    clear8 = np.isin(np.asarray(dr2["MWP"]).astype(str), sorted(read_selection("8um")))[drawn]
    coords = SkyCoord(l=glon % 360 * u.deg, b=glat * u.deg, frame="galactic").icrs
    nan = np.full(n, np.nan)
    empty = np.full(n, "", dtype="U20")
    reff = np.sqrt(major * minor).round(2)
    columns = {
        "MWP": mwp_name(glon, glat), "GLON": (glon % 360).round(4), "GLAT": glat,
        "Disp": rng.uniform(0.1, 1.0, n).round(2), "MajAxis": major, "MinAxis": minor, "Reff": reff,
        "e_Reff": (0.15 * reff).round(2), "theta": rng.uniform(0, 180, n).round(0), "e_theta": np.full(n, 20.0),
        "Ecc": ecc, "HR2": nan, "HR3": nan, "RelFlag": np.full(n, "R", dtype="U2"), "HierFlag": empty,
        "IDDR1": empty, "IDA14": empty, "Dist": nan, "IDCW": empty,
        "RA_icrs": coords.ra.deg.round(5), "DE_icrs": coords.dec.deg.round(5),
    }
    out = Table(columns)
    out["kind"] = kind
    out["clear"] = kind == "clear"
    out["clear8"] = clear8
    return out


def _latitude_share(region: Region, scale: float) -> float:
    """Fraction of an exp(-|b|/scale) distribution (normalised over |b| <= 1) in the region."""
    def cdf(b):
        return np.sign(b) * (1 - np.exp(-abs(b) / scale)) / 2

    total = 2 * cdf(1.0)
    return float((cdf(region.b_max) - cdf(region.b_min)) / total / (region.b_max - region.b_min) * 2)


def _draw_latitudes(region: Region, scale: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Latitudes from exp(-|b|/scale), truncated to the region (inverse-CDF sampling)."""
    def cdf(b):
        return 0.5 + np.sign(b) * (1 - np.exp(-np.abs(b) / scale)) / 2

    p = rng.uniform(cdf(region.b_min), cdf(region.b_max), n)
    q = np.abs(2 * p - 1)
    return np.sign(p - 0.5) * -scale * np.log1p(-np.clip(q, 0, 1 - 1e-12))


def _confusers(region: Region, rng: np.random.Generator, density: dict | None = None) -> Table:
    """Look-alikes of each kind at `density` per deg² (`CONFUSER_DENSITY` by default)."""
    rows = []
    for kind, per_deg2 in (CONFUSER_DENSITY if density is None else density).items():
        n = rng.poisson(per_deg2 * region.area_deg2)
        glon = rng.uniform(region.l_min, region.l_max, n)
        glat = _draw_latitudes(region, 0.4, n, rng)
        sizes = {"yso": (0.1, 0.35), "hii_blob": (0.25, 1.5), "cluster": (0.3, 1.0)}[kind]
        size = np.exp(rng.uniform(math.log(sizes[0]), math.log(sizes[1]), n))
        rows += [(kind, lo, la, s) for lo, la, s in zip(glon, glat, size)]
    table = Table(rows=rows or None, names=("kind", "glon", "glat", "size_arcmin"),
                  dtype=("U8", float, float, float))
    table["glon"].unit = table["glat"].unit = u.deg
    table["size_arcmin"].unit = u.arcmin
    return table


def power_law(n: int, lo: float, hi: float, index: float, rng: np.random.Generator) -> np.ndarray:
    """Samples of dN/dS ∝ S^-index between lo and hi (index != 1)."""
    a = 1 - index
    p = rng.uniform(0, 1, n)
    return (lo**a + p * (hi**a - lo**a)) ** (1 / a)


def _stars(region: Region, rng: np.random.Generator, confusers: Table) -> tuple[Table, Table]:
    """8 µm and 24 µm point sources, with clusters and YSO cores from `confusers`.

    Differential counts dN/dS ∝ S^-1.8 (8 µm), S^-1.9 (24 µm) between the surveys' faint limits and
    beyond saturation (about 0.5 mJy to 3 Jy at 8 µm, 2 mJy to 5 Jy at 24 µm).
    Most 24 µm sources are the red tail of the 8 µm ones (evolved stars,
    YSOs); the rest are deeply embedded objects seen only at 24 µm.
    """
    area = region.area_deg2
    n8 = rng.poisson(STAR_DENSITY_8UM * area)
    lon8 = rng.uniform(region.l_min, region.l_max, n8)
    lat8 = rng.uniform(region.b_min, region.b_max, n8)
    flux8 = power_law(n8, *STAR_FLUX_8UM, rng)

    n24 = rng.poisson(STAR_DENSITY_24UM * area)
    n_counterpart = min(int(0.7 * n24), n8)
    brightest = np.argsort(flux8)[::-1][: 3 * n_counterpart]
    pick = rng.choice(brightest, n_counterpart, replace=False) if n_counterpart else np.zeros(0, int)
    n_only = n24 - n_counterpart
    lon24 = np.concatenate([lon8[pick], rng.uniform(region.l_min, region.l_max, n_only)])
    lat24 = np.concatenate([lat8[pick], rng.uniform(region.b_min, region.b_max, n_only)])
    ratio = np.exp(rng.normal(math.log(1.5), 0.8, n_counterpart))  # S24/S8 of red stars
    flux24 = np.concatenate([flux8[pick] * ratio, power_law(n_only, 2.0, 5000.0, 1.9, rng)])

    # Star clusters: a few dozen stars packed in an arcminute.
    extra8, extra24 = [], []
    for row in confusers[confusers["kind"] == "cluster"]:
        m = rng.integers(20, 80)
        sigma = row["size_arcmin"] / u.deg.to(u.arcmin) / 2  # deg
        lo = row["glon"] + rng.normal(0, sigma, m)
        la = row["glat"] + rng.normal(0, sigma, m)
        f = power_law(m, 2.0, 500.0, 1.7, rng)
        extra8.append((lo, la, f))
        red = rng.uniform(size=m) < 0.3
        extra24.append((lo[red], la[red], f[red] * rng.uniform(0.5, 3, red.sum())))
    # Young stellar objects: bright at 24 µm, fainter at 8 µm.
    for row in confusers[confusers["kind"] == "yso"]:
        f24 = power_law(1, 50.0, 3000.0, 1.5, rng)
        extra24.append(([row["glon"]], [row["glat"]], f24))
        extra8.append(([row["glon"]], [row["glat"]], f24 * rng.uniform(0.02, 0.2)))

    def table(lon, lat, flux, extra):
        for lo, la, f in extra:
            lon, lat, flux = np.append(lon, lo), np.append(lat, la), np.append(flux, f)
        return Table({"glon": lon, "glat": lat, "flux_mjy": flux})

    return table(lon8, lat8, flux8, extra8), table(lon24, lat24, flux24, extra24)


def unwrap(table: Table, region: Region, column: str = "GLON") -> np.ndarray:
    """Longitudes of a table made continuous around the region's centre."""
    return unwrap_longitude(np.asarray(table[column], float), (region.l_min + region.l_max) / 2)
