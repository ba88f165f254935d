"""A trained detector as a TensorFlow SavedModel with a detection signature.

The SavedModel's ``serve`` endpoint (also ``serving_default``) takes a batch
of normalised 2-channel images ``(B, H, W, 2)`` of any size (channel 0 =
24 µm, 1 = 8 µm, values in [0, 1] as `bubblenet.training_data.cutouts.process` makes
them), resizes them to the network's input, and returns ``boxes`` ``(B, K, 4)``
relative ``xyxy``, ``scores`` ``(B, K)`` and ``counts`` ``(B,)`` after
non-maximum suppression, at the confidence threshold chosen on validation.
It loads with plain ``tf.saved_model.load`` — no bubblenet needed.

``model_info.json`` beside it records the preset, default boxes, threshold
and software versions.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import keras
import tensorflow as tf

from bubblenet.detection.detector import INFO_FILE, model_info
from bubblenet.outputs import write_json
from bubblenet.ssd.anchors import AnchorSpec
from bubblenet.ssd.decoder import NMS_IOU, Decoder

__all__ = ["export_savedmodel", "serving_function"]


def serving_function(model: keras.Model, spec: AnchorSpec, *, threshold: float, nms_iou: float = NMS_IOU,
                     max_detections: int = 100, bands: str = "24+8"):
    """The detection function the SavedModel serves (also usable directly); an 8 µm-only one ignores channel 0."""
    decoder = Decoder(spec, max_detections=max_detections)
    size = spec.image_size
    keep = tf.constant([0.0 if bands == "8" else 1.0, 1.0])

    def serve(images):
        images = images * keep
        resized = tf.image.resize(images, (size, size), method="bilinear", antialias=True)
        boxes, scores, counts = decoder(model(resized, training=False), confidence=threshold, iou=nms_iou)
        return {"boxes": boxes, "scores": scores, "counts": counts}

    return serve


def export_savedmodel(model: keras.Model, spec: AnchorSpec, path: str | os.PathLike, *, threshold: float,
                      preset: str, nms_iou: float = NMS_IOU, max_detections: int = 100, info: dict | None = None
                      ) -> Path:
    """Write ``path`` (a SavedModel folder) and ``path/model_info.json``.

    The folder is written under a temporary name and renamed when complete.
    `info` adds entries (provenance, scores) to ``model_info.json``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    if tmp.exists():
        shutil.rmtree(tmp)
    serve = serving_function(model, spec, threshold=threshold, nms_iou=nms_iou, max_detections=max_detections,
                             bands=(info or {}).get("bands", "24+8"))
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=[tf.TensorSpec([None, None, None, 2], tf.float32)])
    archive.write_out(str(tmp), verbose=False)
    # The SavedModel is the per-window network: the shared-search network (and its record) stays behind.
    extra = {k: v for k, v in (info or {}).items()
             if k not in ("preset", "anchors", "threshold", "versions", "shared_model")}
    write_json(tmp / INFO_FILE, model_info(preset, spec, threshold, **extra, nms_iou=nms_iou,
                                           max_detections=max_detections))
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    return path
