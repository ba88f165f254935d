"""Exporting a trained SSD: a TF SavedModel with a detection signature, plus the ``.keras`` file.

The SavedModel's ``serve`` endpoint (also ``serving_default``) takes a batch
of normalised 2-channel images ``(B, H, W, 2)`` of any size (channel 0 =
24 µm, 1 = 8 µm, values in [0, 1] as `bubblenet.cutouts.process` makes
them), resizes them to the network's input, and returns ``boxes`` ``(B, K, 4)``
relative ``xyxy``, ``scores`` ``(B, K)`` and ``counts`` ``(B,)`` after
non-maximum suppression, at the confidence threshold chosen on validation.
It loads with plain ``tf.saved_model.load`` — no bubblenet needed.

``model_info.json`` beside it records the preset, default boxes, threshold
and software versions; loading the ``.keras`` file runs no code from the
file (Keras ``safe_mode``).
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import tensorflow as tf

from bubblenet.anchors import AnchorSpec
from bubblenet.outputs import package_versions, write_json
from bubblenet.postprocess import NMS_IOU, Decoder

__all__ = ["export_savedmodel", "serving_function"]


def serving_function(model: keras.Model, spec: AnchorSpec, *, threshold: float, nms_iou: float = NMS_IOU,
                     max_detections: int = 100):
    """The detection function the SavedModel serves (also usable directly)."""
    decoder = Decoder(spec, max_detections=max_detections)
    size = spec.image_size

    def serve(images):
        resized = tf.image.resize(images, (size, size), method="bilinear", antialias=True)
        boxes, scores, counts = decoder(model(resized, training=False), confidence=threshold, iou=nms_iou)
        return {"boxes": boxes, "scores": scores, "counts": counts}

    return serve


def export_savedmodel(model: keras.Model, spec: AnchorSpec, path: str | os.PathLike, *, threshold: float,
                      preset: str, nms_iou: float = NMS_IOU, max_detections: int = 100) -> Path:
    """Write ``path`` (a SavedModel folder) and ``path/model_info.json``.

    The folder is written under a temporary name and renamed when complete.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    serve = serving_function(model, spec, threshold=threshold, nms_iou=nms_iou, max_detections=max_detections)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=[tf.TensorSpec([None, None, None, 2], tf.float32)])
    archive.write_out(str(tmp), verbose=False)
    write_json(tmp / "model_info.json", {"preset": preset, "anchors": spec.to_dict(), "threshold": threshold,
                                         "nms_iou": nms_iou, "max_detections": max_detections,
                                         "input": "normalised (B, H, W, 2) float32, channel 0 = 24 um, 1 = 8 um",
                                         "versions": package_versions()})
    if path.exists():
        import shutil

        shutil.rmtree(path)
    os.replace(tmp, path)
    return path
