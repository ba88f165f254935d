"""Running a detector over a whole tile: windows in, merged tile-pixel detections out.

Steps, each a small function: cut and normalise the planned windows
(`bubblenet.windows`, `bubblenet.cutouts.process`) in batches, run the
network, decode and suppress per window (`bubblenet.postprocess.Decoder`),
map the boxes from window-relative to tile pixels, and merge all windows'
detections with non-maximum suppression (IoU 0.3, as the reference method).
Windows that touch missing data are skipped, as the reference method does.
Cutting and normalising run in a thread pool beside the network (numpy,
scipy and photutils release the GIL for most of that work).
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Iterable, Iterator

import numpy as np
import tensorflow as tf

from bubblenet.cutouts import Crop, process
from bubblenet.postprocess import Decoder
from bubblenet.tilecache import TileCache

__all__ = ["detect_tile", "window_to_tile", "merge", "MERGE_IOU"]

#: IoU above which detections from different windows are merged (the paper: 0.3).
MERGE_IOU = 0.3


def window_to_tile(boxes: np.ndarray, crop: Crop) -> np.ndarray:
    """Relative ``xyxy`` boxes of a window -> tile pixel ``xyxy`` (inverse of `Crop.relative`)."""
    origin = np.array([crop.x0, crop.y0, crop.x0, crop.y0], float) - 0.5
    return np.asarray(boxes, float).reshape(-1, 4) * crop.side + origin


def merge(boxes: np.ndarray, scores: np.ndarray, *, iou: float = MERGE_IOU, max_output: int = 100_000):
    """Non-maximum suppression over one tile's detections (`tf.image.non_max_suppression`)."""
    if len(boxes) == 0:
        return np.zeros((0, 4)), np.zeros(0)
    keep = tf.image.non_max_suppression(np.asarray(boxes, np.float32), np.asarray(scores, np.float32),
                                        max_output, iou_threshold=iou).numpy()
    return np.asarray(boxes)[keep], np.asarray(scores)[keep]


def prepared_windows(cache: TileCache, windows: Iterable[Crop], size: int, *, pixscale_arcsec: float,
                     workers: int | None = None, chunk: int = 256) -> Iterator[tuple[Crop, np.ndarray]]:
    """``(crop, network input)`` for each window without missing data, in order.

    Windows are processed `chunk` at a time by `workers` threads (default:
    one per CPU), so memory stays bounded however many windows there are.
    """
    def one(crop):
        window = cache.window(crop.x0, crop.y0, crop.side)
        if window is None or not np.isfinite(window).all():
            return crop, None
        return crop, process(window, size, pixscale_arcsec=pixscale_arcsec,
                             stars=cache.stars_window(crop.x0, crop.y0, crop.side))

    windows = iter(windows)
    with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
        while batch := list(itertools.islice(windows, chunk)):
            for crop, image in pool.map(one, batch):
                if image is not None:
                    yield crop, image


def detect_tile(model, cache: TileCache, windows: Iterable[Crop], *, pixscale_arcsec: float,
                decoder: Decoder, batch_size: int = 32, confidence: float = 0.5, nms_iou: float = 0.45,
                merge_iou: float = MERGE_IOU, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Detect bubbles over a tile.

    Parameters
    ----------
    model : keras.Model
        An SSD (`bubblenet.model.build_ssd`).
    cache : TileCache
        The tile's two bands.
    windows : iterable of Crop
        From `bubblenet.windows.plan_windows`.
    pixscale_arcsec : float
        The tile's pixel side.
    decoder : Decoder
        For the model's default boxes.
    confidence, nms_iou, merge_iou : float
        Per-window score threshold and NMS IoU; cross-window merge IoU.
    progress : callable, optional
        A `tqdm.tqdm`-like wrapper over batches.

    Returns
    -------
    boxes : numpy.ndarray
        ``(K, 4)`` tile-pixel ``xyxy``.
    scores : numpy.ndarray
        ``(K,)``.
    """
    size = model.input_shape[1]
    all_boxes, all_scores = [], []

    def flush(images, crops):
        outputs = model.predict_on_batch(np.stack(images))
        boxes, scores, counts = decoder(outputs, confidence=confidence, iou=nms_iou)
        for b, s, n, crop in zip(boxes.numpy(), scores.numpy(), counts.numpy(), crops):
            all_boxes.append(window_to_tile(b[:n], crop))
            all_scores.append(s[:n])

    images, crops = [], []
    windows = progress(windows) if progress is not None else windows
    for crop, image in prepared_windows(cache, windows, size, pixscale_arcsec=pixscale_arcsec):
        images.append(image)
        crops.append(crop)
        if len(images) == batch_size:
            flush(images, crops)
            images, crops = [], []
    if images:
        flush(images, crops)
    if not all_boxes:
        return np.zeros((0, 4)), np.zeros(0)
    return merge(np.concatenate(all_boxes), np.concatenate(all_scores), iou=merge_iou)
