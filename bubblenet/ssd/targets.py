"""Matching labelled boxes to default boxes, and the box coder.

The coder is Keras core's (`keras.utils.bounding_boxes.encode_box_to_deltas`
and `decode_deltas_to_boxes`): offsets of centres in units of the prior's
size and log size ratios, in ``(y, x, h, w)`` order, divided by the SSD
variances (0.1 for centres, 0.2 for sizes).

Matching follows SSD (Liu et al. 2016) as Nishimoto et al. (2025) use it:
every prior whose IoU with a box is at least 0.5 is matched to its best box,
and every box also takes its single best prior, whatever the IoU, so that
small or odd boxes are never left without a prior.

All functions here are TensorFlow graph code for `tf.data` maps; boxes are
relative ``xyxy`` (see `bubblenet.conventions`), padding boxes have label -1.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from keras.utils import bounding_boxes

from bubblenet.ssd.anchors import AnchorSpec, cxcywh_to_xyxy, default_boxes

__all__ = ["BoxCoder", "pairwise_iou", "match", "TargetEncoder", "MATCH_THRESHOLD"]

#: IoU from which a prior is matched to a box (SSD and the reference paper).
MATCH_THRESHOLD = 0.5


class BoxCoder:
    """Encode boxes against priors and decode predicted offsets.

    Parameters
    ----------
    priors_xyxy : array_like
        ``(N, 4)`` relative corner boxes.
    variances : tuple of float
        Centre and size variances.
    """

    def __init__(self, priors_xyxy, variances=(0.1, 0.2)):
        self.priors = tf.constant(np.asarray(priors_xyxy, np.float32))
        self.variance = [variances[0], variances[0], variances[1], variances[1]]

    def encode(self, boxes):
        """``(..., N, 4)`` xyxy boxes (one per prior) -> offsets."""
        return bounding_boxes.encode_box_to_deltas(self.priors, boxes, anchor_format="xyxy", box_format="xyxy",
                                                   variance=self.variance)

    def decode(self, offsets):
        """``(..., N, 4)`` offsets -> xyxy boxes."""
        return bounding_boxes.decode_deltas_to_boxes(self.priors, offsets, anchor_format="xyxy", box_format="xyxy",
                                                     variance=self.variance)


def pairwise_iou(a, b):
    """IoU of every box in ``a`` ``(M, 4)`` with every box in ``b`` ``(N, 4)``, xyxy -> ``(M, N)``."""
    lo = tf.maximum(a[:, None, :2], b[None, :, :2])
    hi = tf.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = tf.reduce_prod(tf.maximum(hi - lo, 0.0), axis=-1)
    area_a = tf.reduce_prod(tf.maximum(a[:, 2:] - a[:, :2], 0.0), axis=-1)
    area_b = tf.reduce_prod(tf.maximum(b[:, 2:] - b[:, :2], 0.0), axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return tf.math.divide_no_nan(inter, union)


def match(boxes, labels, priors_xyxy, threshold: float = MATCH_THRESHOLD):
    """Assign boxes to priors.

    Parameters
    ----------
    boxes : tf.Tensor
        ``(M, 4)`` relative xyxy boxes (padding rows allowed).
    labels : tf.Tensor
        ``(M,)`` int32 class per box; -1 marks padding.
    priors_xyxy : tf.Tensor
        ``(N, 4)``.
    threshold : float

    Returns
    -------
    matched : tf.Tensor
        ``(N,)`` int32 index of the box each prior is matched to (meaningful where `classes` > 0).
    classes : tf.Tensor
        ``(N,)`` int32 target class per prior: 0 background, else the box's label.

    Notes
    -----
    Invariants: every real box is matched by at least its best prior;
    padding boxes match nothing; inputs are not modified.
    """
    valid = labels >= 0
    iou = pairwise_iou(tf.cast(boxes, tf.float32), priors_xyxy)  # (M, N)
    iou = tf.where(valid[:, None], iou, -1.0)
    best_box = tf.argmax(iou, axis=0, output_type=tf.int32)  # (N,)
    best_iou = tf.reduce_max(iou, axis=0)  # (N,)
    # Each real box claims its best prior (overriding the threshold).
    best_prior = tf.argmax(iou, axis=1, output_type=tf.int32)  # (M,)
    box_ids = tf.range(tf.shape(boxes)[0], dtype=tf.int32)
    claims = tf.boolean_mask(tf.stack([best_prior, box_ids], axis=1), valid)
    best_box = tf.tensor_scatter_nd_update(best_box, claims[:, :1], claims[:, 1])
    best_iou = tf.tensor_scatter_nd_update(best_iou, claims[:, :1], tf.fill([tf.shape(claims)[0]], 2.0))
    classes = tf.where(best_iou >= threshold, tf.gather(labels, best_box), 0)
    return best_box, tf.cast(classes, tf.int32)


class TargetEncoder:
    """Turn ``(boxes, labels)`` of one image into SSD training targets.

    Parameters
    ----------
    spec : AnchorSpec
        The model's default boxes (the single source of truth).
    """

    def __init__(self, spec: AnchorSpec):
        self.spec = spec
        self.priors_xyxy = tf.constant(cxcywh_to_xyxy(default_boxes(spec)))
        self.coder = BoxCoder(self.priors_xyxy, spec.variances)

    def __call__(self, boxes, labels):
        """``(M, 4)``, ``(M,)`` -> offsets ``(N, 4)`` float32 and classes ``(N,)`` int32."""
        matched, classes = match(boxes, labels, self.priors_xyxy)
        target_boxes = tf.gather(tf.cast(boxes, tf.float32), matched)
        offsets = self.coder.encode(target_boxes)
        offsets = tf.where(classes[:, None] > 0, offsets, 0.0)
        return tf.cast(offsets, tf.float32), classes

    def batch(self, boxes, labels):
        """The same for a batch: ``(B, M, 4)``, ``(B, M)`` -> ``(B, N, 4)``, ``(B, N)``."""
        return tf.map_fn(lambda args: self(*args), (boxes, labels),
                         fn_output_signature=(tf.TensorSpec([self.spec.num_priors, 4], tf.float32),
                                              tf.TensorSpec([self.spec.num_priors], tf.int32)))
