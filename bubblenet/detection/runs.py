"""Searching a survey tile by tile: resumable, in one process or on a Dask cluster.

A survey run is a list of independent tasks, one per 8 µm tile (with the
24 µm images that overlap it). Each task's result, the tile's detections
before the merge across tiles (`TileResult`), is written atomically to a
partial-results folder as soon as it arrives; a ``manifest.json`` there
records what the results depend on (the detector, threshold, search and the
input files). Run again after an interruption with the same command, a
survey loads the tiles already done and searches only the rest, so the merged
catalogue is exactly that of an uninterrupted run: the merge
(`bubblenet.detection.merging.merge_sky`) always sees the tiles in the survey's order,
whichever order they finished in.

With ``scheduler`` (an address) or ``workers`` (a `dask.distributed.LocalCluster`
of that many processes) the tasks run on Dask workers, each loading the
detector once (`worker_detector`). Dask re-runs a task whose worker died;
only the driver writes results, so a task that ran twice is stored once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from astropy import units as u

from bubblenet.detection.search import SearchConfig
from bubblenet.errors import ConfigError, InputError
from bubblenet.outputs import atomic_path, ensure_dir, write_json

__all__ = ["TileResult", "Manifest", "tile_result", "sky_boxes", "tile_task", "run_tiles", "run_key", "worker_detector",
           "peak_rss_mb"]

log = logging.getLogger("bubblenet.detection.runs")

MANIFEST = "manifest.json"


@dataclass
class TileResult:
    """One tile's detections, before the merge across tiles.

    Attributes
    ----------
    tile : str
        The tile's name (its 8 µm file name).
    centres : numpy.ndarray
        ``(N, 2)`` Galactic longitude and latitude of box centres, deg.
    half : numpy.ndarray
        ``(N,)`` box half-sizes, arcsec.
    scores : numpy.ndarray
        ``(N,)`` confidences.
    boxes : numpy.ndarray
        ``(N, 4)`` tile-pixel ``xyxy`` boxes.
    windows : int
        Windows planned over the tile.
    """

    tile: str
    centres: np.ndarray
    half: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    windows: int

    def save(self, path: Path) -> None:
        """Write as ``.npz`` (no pickle), atomically."""
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as stream:
                np.savez(stream, tile=np.array(self.tile), centres=self.centres, half=self.half,
                         scores=self.scores, boxes=self.boxes, windows=np.array(self.windows))

    @classmethod
    def load(cls, path: Path) -> "TileResult":
        with np.load(path, allow_pickle=False) as data:
            return cls(str(data["tile"]), data["centres"], data["half"], data["scores"], data["boxes"],
                       int(data["windows"]))


def run_key(detector_path: str | None, threshold: float, search: SearchConfig, tiles: Sequence) -> str:
    """A digest of everything a survey's per-tile results depend on.

    The detector (its files' contents), the threshold, the search, and each
    tile's inputs (`bubblenet.sky.mosaics.SkyImage.fingerprint`).
    """
    from bubblenet.detection.detector import resolve_detector_files

    digest = hashlib.sha256()
    for path in resolve_detector_files(detector_path):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(json.dumps({"threshold": float(threshold), "search": search.to_dict()}, sort_keys=True).encode())
    for tile in tiles:
        for image in (tile.image8, *tile.images24):
            digest.update(image.fingerprint().encode())
    return digest.hexdigest()[:20]


class Manifest:
    """The partial results of a survey run: one ``.npz`` per finished tile.

    Parameters
    ----------
    folder : path-like
        Where the partial results live (created).
    key : str
        `run_key` of this run. Results left by a run with another key (other
        model, threshold, search or inputs) are discarded, with a log message.
    """

    def __init__(self, folder: str | Path, key: str):
        self.folder = ensure_dir(folder)
        self.key = key
        path = self.folder / MANIFEST
        old = self._read_key(path)
        if old is not None and old != key:
            log.warning("%s: partial results of a different run (other model, search or inputs); starting over",
                        self.folder)
            for stale in self.folder.glob("*.npz"):
                stale.unlink()
        write_json(path, {"key": key, "format": 1})

    @staticmethod
    def _read_key(path: Path) -> str | None:
        try:
            return json.loads(path.read_text()).get("key")
        except (OSError, ValueError, AttributeError):
            return None

    def _path(self, tile: str) -> Path:
        return self.folder / f"{tile}.npz"

    def done(self, tile: str) -> TileResult | None:
        """The stored result of `tile`, or None (also for an unreadable file, which is removed)."""
        path = self._path(tile)
        if not path.exists():
            return None
        try:
            result = TileResult.load(path)
        except (OSError, ValueError, KeyError) as err:
            log.warning("%s: unreadable partial result (%s); searching the tile again", path, err)
            path.unlink(missing_ok=True)
            return None
        return result if result.tile == tile else None

    def add(self, result: TileResult) -> None:
        """Store a finished tile (atomically)."""
        result.save(self._path(result.tile))

    def remove(self) -> None:
        """Delete the partial results (once the catalogue is written)."""
        shutil.rmtree(self.folder, ignore_errors=True)


def tile_result(detector, tile, cache_dir, search: SearchConfig, threshold: float, *,
                progress: bool = False) -> TileResult:
    """Detections of one tile (`bubblenet.detection.search.search_tile`), in sky coordinates.

    Parameters
    ----------
    detector : bubblenet.detection.detector.Detector
    tile : bubblenet.sky.mosaics.SkyTile
    cache_dir : path-like or None
        Folder for the tile's memory-mapped cache (`bubblenet.sky.tilecache.TileCache`); None: in memory.
    search : bubblenet.detection.search.SearchConfig
    threshold : float
        Confidence threshold.
    progress : bool
        Show a windows progress bar.
    """
    from bubblenet.detection.search import search_tile
    from bubblenet.sky.tilecache import TileCache

    pixscale = float(tile.pixel_scale.to_value(u.arcsec))
    cache = TileCache(tile, cache_dir, missing=search.missing, zeros=search.zeros)
    found = search_tile(detector.model_for(search.mode), detector.spec, cache, search, pixscale_arcsec=pixscale,
                        norm=detector.normalisation, bands=detector.bands, confidence=threshold,
                        progress=tile.name if progress else None)
    boxes = found.boxes
    centres, half = sky_boxes(tile, boxes, pixscale)
    return TileResult(tile.name, centres, half, found.scores, boxes, found.windows)


def sky_boxes(tile, boxes, pixscale: float) -> tuple[np.ndarray, np.ndarray]:
    """Tile-pixel ``xyxy`` boxes on the sky: ``(N, 2)`` Galactic centres (deg) and half-sides (arcsec)."""
    boxes = np.asarray(boxes, float).reshape(-1, 4)
    gal = tile.pixel_to_world((boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2).galactic
    centres = np.stack([np.atleast_1d(gal.l.deg), np.atleast_1d(gal.b.deg)], axis=-1).reshape(-1, 2)
    return centres, (boxes[:, 2] - boxes[:, 0] + boxes[:, 3] - boxes[:, 1]) / 4 * pixscale


_WORKER_DETECTORS: dict[str, object] = {}


def worker_detector(model: str | None):
    """The detector at `model` (None: the shipped one), loaded once per process."""
    from bubblenet.detection.detector import load_detector

    key = str(model)
    if key not in _WORKER_DETECTORS:
        _WORKER_DETECTORS[key] = load_detector(model)
    return _WORKER_DETECTORS[key]


def tile_task(model: str | None, tile, cache_dir: str, search: SearchConfig, threshold: float) -> TileResult:
    """One survey task, as a Dask worker runs it: `tile_result` with the process's detector."""
    try:
        return tile_result(worker_detector(model), tile, cache_dir, search, threshold)
    finally:  # a long-lived worker should not keep every tile's files open
        for image in (tile.image8, *tile.images24):
            image.close()


def run_tiles(tiles: Sequence, manifest: Manifest | None, *, detector, model: str | None, cache_dir: str | None,
              search: SearchConfig,
              threshold: float, scheduler: str | None = None, workers: int | None = None, progress: bool = False,
              stats: dict | None = None) -> list[TileResult]:
    """Search every tile not yet in `manifest`; the results of all tiles, in the order of `tiles`.

    Parameters
    ----------
    tiles : sequence of bubblenet.sky.mosaics.SkyTile
    manifest : Manifest or None
        Finished tiles are read from it and new ones written to it as they
        finish; None: nothing is stored (no resuming).
    detector : bubblenet.detection.detector.Detector
        The loaded detector, for the in-process run.
    model : str or None
        Where it was loaded from (absolute; None: the shipped one), for Dask
        workers, which load it themselves (`worker_detector`).
    cache_dir : str or None
        Folder of the tile caches (absolute, and seen by every worker); None
        keeps each tile's cache in memory (not with Dask).
    search : bubblenet.detection.search.SearchConfig
    threshold : float
        Confidence threshold.
    scheduler, workers
        A Dask scheduler address, or a number of local worker processes: the
        tiles then run as `tile_task` on Dask workers, else one by one here.
    progress : bool
        Show a progress bar over tiles (and over windows, in-process).
    stats : dict, optional
        Filled with facts about the run: ``resumed_tiles``, and with Dask
        ``workers`` (``dashboard`` link and each worker's ``peak_rss_mb``).
    """
    stats = {} if stats is None else stats
    results = {} if manifest is None else {t.name: r for t in tiles if (r := manifest.done(t.name)) is not None}
    if results:
        log.info("resuming: %d of %d tiles already searched (%s)", len(results), len(tiles), manifest.folder)
    stats["resumed_tiles"] = len(results)
    todo = [t for t in tiles if t.name not in results]
    bar = _tile_bar(len(tiles), len(results), progress)
    try:
        if scheduler is None and not workers:
            for tile in todo:
                bar.set_postfix_str(tile.name)
                _finish(tile_result(detector, tile, cache_dir, search, threshold, progress=progress), manifest,
                        results, bar)
        else:
            task = (model, cache_dir, search, threshold)
            stats["workers"] = _run_on_dask(todo, manifest, results, bar, task, scheduler=scheduler,
                                            workers=workers)
    finally:
        bar.close()
    return [results[t.name] for t in tiles]


def _finish(result: TileResult, manifest: Manifest | None, results: dict, bar) -> None:
    if manifest is not None:
        manifest.add(result)
    results[result.tile] = result
    log.info("%s: %d windows, %d detections", result.tile, result.windows, len(result.scores))
    bar.update(1)


def _tile_bar(total: int, done: int, show: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc="survey", unit="tile", disable=not show or total < 2)


def peak_rss_mb() -> float:
    """This process's peak resident memory, MB (Linux reports kB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_on_dask(todo: Iterable, manifest: Manifest, results: dict, bar, task: tuple, *, scheduler,
                 workers) -> dict:
    """Submit one task per tile to a Dask cluster, store results as they complete; the workers' dashboard and memory."""
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as err:  # pragma: no cover - distributed is an install requirement
        raise ConfigError(f"--scheduler/--workers need dask.distributed ({err})") from None
    # distributed sets its loggers to INFO when imported: every worker start and stop would be printed.
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("distributed").setLevel(max(logging.getLogger().getEffectiveLevel(), logging.WARNING))
    todo = list(todo)
    cluster = None
    try:
        if scheduler is not None:
            client = Client(scheduler, timeout="10s")
        else:
            # One thread per worker: each task already uses every core the worker's TensorFlow sees.
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=":0")
            client = Client(cluster)
    except (OSError, TimeoutError) as err:
        raise InputError(f"cannot reach the Dask scheduler ({err})", scheduler or "LocalCluster") from None
    try:
        log.info("Dask dashboard: %s", client.dashboard_link)
        model, cache_dir, search, threshold = task
        futures = {client.submit(tile_task, model, tile, cache_dir, search, threshold,
                                 key=f"bubblenet-{manifest.key}-{tile.name}", retries=2): tile.name for tile in todo}
        for future in as_completed(futures):
            _finish(future.result(), manifest, results, bar)
            bar.set_postfix_str(f"{futures[future]} done")
        return {"dashboard": client.dashboard_link, "peak_rss_mb": client.run(peak_rss_mb)}
    finally:
        client.close()
        if cluster is not None:
            # Our own cluster: its nannies kill workers slow to stop (a busy machine), and say so; expected here.
            logging.getLogger("distributed.nanny").setLevel(logging.ERROR)
            cluster.close()
