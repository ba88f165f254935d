"""Running a detector over a whole tile: windows in, merged tile-pixel detections out.

Steps, each a small function: cut and normalise the planned windows, each
on its own (`bubblenet.detection.windows`, `bubblenet.training_data.cutouts.process`; the paper mode)
or from an image pyramid (`bubblenet.detection.pyramid`; the fast mode), run the
network, decode and suppress per window (`bubblenet.ssd.decoder.Decoder`),
map the boxes from window-relative to tile pixels, and merge all windows'
detections with non-maximum suppression (IoU 0.3, as the reference method).
Windows that touch missing data are skipped, as the reference method does.
Cutting and normalising run in a thread pool beside the network (numpy,
scipy and photutils release the GIL for most of that work).
"""

from __future__ import annotations

import itertools
import os
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from queue import Empty, Queue
from typing import Iterable, Iterator, Sequence

import numpy as np
import tensorflow as tf

from bubblenet.conventions import from_relative
from bubblenet.training_data.cutouts import Crop, Normalisation, keep_bands, process
from bubblenet.ssd.decoder import Decoder
from bubblenet.detection.pyramid import plan_levels, pyramid_windows
from bubblenet.sky.tilecache import BadMap, TileCache
from bubblenet.detection.windows import plan_windows

__all__ = ["search_inputs", "model_outputs", "detect_inputs", "detect_outputs", "prepared_windows",
           "window_to_tile", "merge", "MERGE_IOU"]


#: IoU above which detections from different windows are merged (the paper: 0.3).
MERGE_IOU = 0.3


def window_to_tile(boxes: np.ndarray, crop: Crop) -> np.ndarray:
    """Relative ``xyxy`` boxes of a window -> tile pixel ``xyxy`` (`bubblenet.conventions.from_relative`)."""
    return from_relative(boxes, crop.x0, crop.y0, crop.side)


def merge(boxes: np.ndarray, scores: np.ndarray, *, iou: float = MERGE_IOU, max_output: int = 100_000):
    """Non-maximum suppression over one tile's detections (`tf.image.non_max_suppression`)."""
    if len(boxes) == 0:
        return np.zeros((0, 4)), np.zeros(0)
    keep = tf.image.non_max_suppression(np.asarray(boxes, np.float32), np.asarray(scores, np.float32),
                                        max_output, iou_threshold=iou).numpy()
    return np.asarray(boxes)[keep], np.asarray(scores)[keep]


def prepared_windows(cache: TileCache, windows: Iterable[Crop], size: int, *, pixscale_arcsec: float,
                     workers: int | None = None, chunk: int = 256,
                     norm: Normalisation = Normalisation()) -> Iterator[tuple[Crop, np.ndarray]]:
    """``(crop, network input)`` for each window without missing data, in order.

    Windows are processed `chunk` at a time by `workers` threads (default:
    one per CPU), so memory stays bounded however many windows there are.
    `norm` is the normalisation the model was trained with
    (`bubblenet.training_data.cutouts.Normalisation`).
    """
    def one(crop):
        window = cache.window(crop.x0, crop.y0, crop.side)
        if window is None or not np.isfinite(window).all():
            return crop, None
        return crop, process(window, size, pixscale_arcsec=pixscale_arcsec,
                             stars=cache.stars_window(crop.x0, crop.y0, crop.side), norm=norm)

    windows = iter(windows)
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        while batch := list(itertools.islice(windows, chunk)):
            for crop, image in pool.map(one, batch):
                if image is not None:
                    yield crop, image


def search_inputs(cache: TileCache, sides: Sequence[int], size: int, *, stride_fraction: float,
                  pixscale_arcsec: float, norm: Normalisation = Normalisation(), mode: str = "fast",
                  tile: int = 0, origin: str = "edge") -> tuple[int, Iterator[tuple[Crop, np.ndarray]]]:
    """The network inputs of a multi-scale sliding-window search of a tile.

    Parameters
    ----------
    cache : TileCache
    sides : sequence of int
        Window sides, native pixels (`bubblenet.detection.windows.window_sizes`).
    size : int
        Network input side.
    stride_fraction : float
        Stride over window side.
    pixscale_arcsec : float
        Native pixel side.
    norm : bubblenet.training_data.cutouts.Normalisation
        The model's normalisation.
    mode : {"fast", "paper"}
        ``"paper"``: every window cut and processed on its own
        (`bubblenet.training_data.cutouts.process`), as the reference method does;
        ``"fast"``: the same windows cut from an image pyramid
        (`bubblenet.detection.pyramid`), each level resampled once.
    origin : {"edge", "paper"}
        Where rows of windows start (`bubblenet.detection.windows.window_starts`).

    Returns
    -------
    count : int
        Windows planned (the paper mode's count includes windows over missing data, skipped later;
        with a zero-edge map, ``zeros="edge"``, windows mostly zero are left out of it).
    inputs : iterator of (Crop, numpy.ndarray)
    """
    if mode == "paper":
        windows = list(plan_windows(cache.shape, sides, stride_fraction=stride_fraction, tile=tile, origin=origin))
        if cache.zeros is not None:  # zero coverage edges are not NaN: leave out the windows mostly zero
            bad = BadMap(cache)
            windows = [w for w in windows if not bad.touches(w.x0, w.y0, w.side)]
        return len(windows), prepared_windows(cache, windows, size, pixscale_arcsec=pixscale_arcsec, norm=norm)
    if mode == "fast":
        levels = plan_levels(cache.shape, sides, size, stride_fraction=stride_fraction, bad=BadMap(cache),
                             origin=origin)
        inputs = pyramid_windows(cache, levels, pixscale_arcsec=pixscale_arcsec, norm=norm, tile=tile)
        return sum(map(len, levels)), in_background(inputs)
    raise ValueError(f"search_inputs makes the inputs of the fast and paper modes, not {mode!r} "
                     f"(the shared mode: bubblenet.detection.shared.shared_search)")


def in_background(items: Iterable, depth: int = 256) -> Iterator:
    """Iterate `items` in a thread, `depth` ahead, so that making inputs overlaps running the network.

    Exceptions in the thread are raised in the caller; dropping the iterator stops the thread.
    """
    queue: Queue = Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce():
        try:
            for item in items:
                if stop.is_set():
                    return
                queue.put(item)
            queue.put(done)
        except BaseException as err:  # handed to the consumer
            queue.put(err)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while (item := queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                queue.get_nowait()
            except Empty:
                thread.join(0.01)


def in_parallel(function, items: Iterable, *, workers: int, ahead: int | None = None) -> Iterator:
    """``function(item)`` for each of `items`, in order, computed by `workers` threads up to `ahead` items
    (default: `workers`) beyond the one the caller is using, so that making them overlaps the network.

    Exceptions are raised in the caller when their item is reached; dropping the iterator cancels the
    items not yet started.
    """
    ahead = max(1, ahead or workers)
    pool = ThreadPoolExecutor(max(1, workers))
    pending: deque = deque()
    try:
        for item in items:
            pending.append(pool.submit(function, item))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def model_outputs(model, inputs: Iterable[tuple[Crop, np.ndarray]], *, batch_size: int = 32,
                  bands: str = "24+8") -> Iterator[tuple[list[Crop], np.ndarray]]:
    """``(crops, outputs)``: the network run over ``(crop, input)`` pairs, `batch_size` at a time.

    `bands` is what the detector sees (`bubblenet.training_data.cutouts.keep_bands`).
    """
    inputs = iter(inputs)
    while chunk := list(itertools.islice(inputs, batch_size)):
        crops, images = zip(*chunk)
        yield list(crops), np.asarray(model.predict_on_batch(keep_bands(np.stack(images), bands)))


def detect_inputs(model, inputs: Iterable[tuple[Crop, np.ndarray]], *, decoder: Decoder, batch_size: int = 32,
                  confidence: float = 0.5, nms_iou: float = 0.45, merge_iou: float = MERGE_IOU,
                  bands: str = "24+8") -> tuple[np.ndarray, np.ndarray]:
    """Run the network over ``(crop, input)`` pairs in batches and merge the tile's detections.

    Parameters
    ----------
    model : keras.Model
        An SSD (`bubblenet.ssd.model.build_ssd`).
    inputs : iterable of (Crop, numpy.ndarray)
        From `search_inputs` or `prepared_windows`.
    decoder : Decoder
        For the model's default boxes.
    confidence, nms_iou, merge_iou : float
        Per-window score threshold and NMS IoU; cross-window merge IoU.
    bands : {"24+8", "8"}
        What the detector sees (`bubblenet.training_data.cutouts.keep_bands`).

    Returns
    -------
    boxes : numpy.ndarray
        ``(K, 4)`` tile-pixel ``xyxy``, by decreasing score.
    scores : numpy.ndarray
        ``(K,)``.
    """
    return detect_outputs(model_outputs(model, inputs, batch_size=batch_size, bands=bands), decoder=decoder,
                          confidence=confidence, nms_iou=nms_iou, merge_iou=merge_iou)


def detect_outputs(batches: Iterable[tuple[Sequence[Crop], np.ndarray]], *, decoder: Decoder,
                   confidence: float = 0.5, nms_iou: float = 0.45,
                   merge_iou: float = MERGE_IOU) -> tuple[np.ndarray, np.ndarray]:
    """Decode windows' network outputs, map them to the tile and merge: the end of every search mode.

    Parameters
    ----------
    batches : iterable of (sequence of Crop, numpy.ndarray)
        Windows and their ``(B, N, 4 + C)`` outputs (`model_outputs`, or
        `bubblenet.detection.shared.shared_outputs`).
    decoder, confidence, nms_iou, merge_iou
        As in `detect_inputs`.

    Returns
    -------
    boxes, scores : numpy.ndarray
        As in `detect_inputs`.
    """
    all_boxes, all_scores = [], []
    for crops, outputs in batches:
        boxes, scores, counts = decoder(outputs, confidence=confidence, iou=nms_iou)
        for b, s, n, crop in zip(boxes.numpy(), scores.numpy(), counts.numpy(), crops):
            all_boxes.append(window_to_tile(b[:n], crop))
            all_scores.append(s[:n])
    if not all_boxes:
        return np.zeros((0, 4)), np.zeros(0)
    return merge(np.concatenate(all_boxes), np.concatenate(all_scores), iou=merge_iou)
