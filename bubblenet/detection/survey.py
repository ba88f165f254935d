"""A whole survey searched into one sky catalogue: what ``bubblenet detect`` and `bubblenet.find_bubbles` do.

`detect_survey` searches every 8 µm tile (`bubblenet.detection.runs.run_tiles`:
resumable, in one process or on Dask), converts the detections to sky
coordinates, merges them across scales and overlapping tiles
(`bubblenet.detection.merging.merge_sky`), keeps those inside the region
and returns the catalogue table (`bubblenet.detection.results.detections_table`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

from bubblenet.conventions import image_box
from bubblenet.detection.search import SearchConfig
from bubblenet.errors import ConfigError, InputError

__all__ = ["SurveyDetections", "tiles_in_region", "check_tile_names", "detect_survey", "CACHE_DIR", "PARTIAL_DIR"]

#: Sub-folders of a detection run's work folder: tile caches and per-tile results (named for bubblenet, so
#: that cleaning them up never touches a user's own ``.cache``).
CACHE_DIR = ".bubblenet-cache"
PARTIAL_DIR = ".bubblenet-partial"


def tiles_in_region(tiles: Sequence, l_range=None, b_range=None) -> list:
    """The tiles with any part in the Galactic region (deg ranges; None: no limit).

    A tile is kept when a point of a 25 x 25 grid over its extent
    (`bubblenet.conventions.image_box`), or the region's centre, falls in both.
    """
    from astropy.coordinates import SkyCoord

    from bubblenet.conventions import inside_sky
    from bubblenet.detection.results import in_region

    if l_range is None and b_range is None:
        return list(tiles)
    kept = []
    for tile in tiles:
        x0, y0, x1, y1 = image_box(tile.shape)
        yy, xx = np.meshgrid(np.linspace(y0, y1, 25), np.linspace(x0, x1, 25), indexing="ij")
        gal = tile.pixel_to_world(xx.ravel(), yy.ravel()).galactic
        inside = bool(in_region(gal.l.deg, gal.b.deg, l_range, b_range).any())
        if not inside and l_range is not None and b_range is not None:
            # A region smaller than the grid's spacing can fall between its points.
            centre = SkyCoord((l_range[0] + l_range[1]) / 2, (b_range[0] + b_range[1]) / 2, unit="deg",
                              frame="galactic")
            inside = bool(inside_sky(centre, tile.wcs, tile.shape).any())
        if inside:
            kept.append(tile)
    return kept


def check_tile_names(tiles: Sequence) -> None:
    """Tile names must be unique: they key a survey run's partial results.

    Raises
    ------
    InputError
        Naming the second file of a shared name.
    """
    seen = {}
    for tile in tiles:
        if tile.name in seen:
            raise InputError(f"two 8 µm images share the name {tile.name!r} ({seen[tile.name]}); rename one",
                             tile.image8.path)
        seen[tile.name] = tile.image8.path


@dataclasses.dataclass
class SurveyDetections:
    """A survey's merged detections.

    Attributes
    ----------
    table : astropy.table.Table
        The catalogue (`bubblenet.detection.results.detections_table`), brightest first.
    windows : int
        Windows planned over all tiles.
    stats : dict
        Facts about the run (`bubblenet.detection.runs.run_tiles`: ``resumed_tiles``, Dask ``workers``).
    """

    table: object
    windows: int
    stats: dict


def detect_survey(tiles: Sequence, detector, *, search: SearchConfig, threshold: float, l_range=None, b_range=None,
                  work_dir: Path | None = None, model_path: str | Path | None = None, scheduler: str | None = None,
                  workers: int | None = None, progress: bool = False, meta: dict | None = None) -> SurveyDetections:
    """Search survey tiles and merge their detections into one sky catalogue.

    Parameters
    ----------
    tiles : sequence of bubblenet.sky.mosaics.SkyTile
        Already restricted to the region (`tiles_in_region`).
    detector : bubblenet.detection.detector.Detector
    search : SearchConfig
    threshold : float
        Confidence threshold, in [0, 1].
    l_range, b_range : (float, float), optional
        Galactic region, degrees: detections outside it are dropped.
    work_dir : path-like, optional
        Where tile caches (`CACHE_DIR`) and per-tile results (`PARTIAL_DIR`)
        go, so that an interrupted run resumes (the caller removes them once
        the catalogue is written); None keeps everything in memory (no
        resuming, no Dask).
    model_path : path-like, optional
        Where `detector` was loaded from (None: the shipped one): Dask
        workers load it themselves, and it keys the partial results.
    scheduler, workers
        A Dask scheduler address or a number of local worker processes
        (`bubblenet.detection.runs.run_tiles`); need `work_dir`.
    progress : bool
        Progress bars.
    meta : dict, optional
        More metadata for the table.

    Raises
    ------
    ConfigError
        On a threshold outside [0, 1], or Dask options without `work_dir`.
    """
    from astropy.coordinates import SkyCoord

    from bubblenet.detection.detector import check_threshold
    from bubblenet.detection.merging import merge_sky
    from bubblenet.detection.results import detections_table, in_region
    from bubblenet.detection.runs import Manifest, run_key, run_tiles

    check_threshold(threshold, "the confidence threshold")
    if not tiles:
        raise ConfigError("no tile to search")
    if work_dir is None and (scheduler or workers):
        raise ConfigError("a Dask run needs a work folder that every worker sees")
    check_tile_names(tiles)
    model = None if model_path is None else str(Path(model_path).resolve())
    if work_dir is None:
        manifest, cache_dir = None, None
    else:
        work_dir = Path(work_dir)
        manifest = Manifest(work_dir / PARTIAL_DIR, run_key(model_path, threshold, search, tiles))
        cache_dir = str((work_dir / CACHE_DIR).resolve())
    stats: dict = {}
    results = run_tiles(tiles, manifest, detector=detector, model=model, cache_dir=cache_dir, search=search,
                        threshold=threshold, scheduler=scheduler, workers=workers, progress=progress, stats=stats)
    windows = sum(r.windows for r in results)
    lonlat, half, scores, boxes = (np.concatenate([getattr(r, k) for r in results])
                                   for k in ("centres", "half", "scores", "boxes"))
    lonlat = lonlat.reshape(-1, 2)
    coords = SkyCoord(lonlat[:, 0], lonlat[:, 1], unit="deg", frame="galactic")
    names = np.concatenate([np.full(len(r.scores), r.tile) for r in results]).astype(str)
    keep = merge_sky(coords, half, scores) if len(scores) else np.zeros(0, int)
    keep = keep[in_region(lonlat[keep, 0], lonlat[keep, 1], l_range, b_range)] if len(keep) else keep
    info = {"preset": detector.preset, "trained_on": detector.info.get("trained_on", "unknown"),
            "bands": detector.bands, "threshold": threshold, "search": search.to_dict(),
            "region": {"l": None if l_range is None else list(l_range), "b": None if b_range is None else list(b_range)},
            "inputs8": [str(t.image8.path) for t in tiles],
            "inputs24": list(dict.fromkeys(str(i.path) for t in tiles for i in t.images24)),
            "tiles": [t.name for t in tiles], "windows": windows, **(meta or {})}
    table = detections_table(coords[keep], half[keep], scores[keep], boxes[keep], names[keep],
                             box_scale=detector.box_scale, frame=tiles[0].image8.frame, meta=info)
    return SurveyDetections(table, windows, stats)
