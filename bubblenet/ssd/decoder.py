"""From SSD outputs to detections: decode boxes, score, non-maximum suppression.

Uses `tf.image.combined_non_max_suppression`, which works on batches and
returns fixed-size padded results plus a count per image — the shape a
serving signature needs.
"""

from __future__ import annotations

import tensorflow as tf

from bubblenet.ssd.anchors import AnchorSpec, cxcywh_to_xyxy, default_boxes
from bubblenet.ssd.targets import BoxCoder

__all__ = ["Decoder", "CONFIDENCE", "NMS_IOU"]

#: Per-window defaults of the reference method: confidence >= 0.5, NMS IoU 0.45.
CONFIDENCE = 0.5
NMS_IOU = 0.45


class Decoder:
    """Decode ``(B, N, 4 + C)`` SSD outputs into boxes, scores and counts.

    Parameters
    ----------
    spec : AnchorSpec
        The model's default boxes.
    max_detections : int
        Detections kept per image.
    """

    def __init__(self, spec: AnchorSpec, *, max_detections: int = 100):
        self.coder = BoxCoder(cxcywh_to_xyxy(default_boxes(spec)), spec.variances)
        self.max_detections = max_detections
        # Traced once for batches of any size: run eagerly, decoding a batch is some 40 small operations,
        # a tenth of a search's time on the CPU.
        self._decode = tf.function(self._detections, input_signature=[
            tf.TensorSpec((None, None, None), tf.float32), tf.TensorSpec((), tf.float32),
            tf.TensorSpec((), tf.float32)])

    def __call__(self, outputs, *, confidence: float = CONFIDENCE, iou: float = NMS_IOU):
        """Detections of a batch.

        Returns
        -------
        boxes : tf.Tensor
            ``(B, K, 4)`` relative ``xyxy``, clipped to [0, 1].
        scores : tf.Tensor
            ``(B, K)`` bubble probability, 0 for padding.
        counts : tf.Tensor
            ``(B,)`` int32 valid detections per image.
        """
        return self._decode(tf.cast(outputs, tf.float32), tf.cast(confidence, tf.float32), tf.cast(iou, tf.float32))

    def _detections(self, outputs, confidence, iou):
        boxes = tf.clip_by_value(self.coder.decode(outputs[..., :4]), 0.0, 1.0)  # (B, N, 4) xyxy
        scores = tf.nn.softmax(outputs[..., 4:], axis=-1)[..., 1:]  # (B, N, C-1): foreground classes
        # combined_non_max_suppression wants (y1, x1, y2, x2); the order does not change IoU.
        nms_boxes, nms_scores, _, counts = tf.image.combined_non_max_suppression(
            boxes[:, :, None, :], scores, max_output_size_per_class=self.max_detections,
            max_total_size=self.max_detections, iou_threshold=iou, score_threshold=confidence, clip_boxes=False)
        return nms_boxes, nms_scores, tf.cast(counts, tf.int32)
