"""The training stream: positives and clustered negatives mixed per step in `tf.data`.

Each step concatenates a batch of positives and a batch of negatives (the
paper: 8 + 8). Samples are drawn straight from the memory-mapped tile caches
by `TrainingData` inside ``tf.numpy_function`` calls that run in parallel;
negatives come from per-cluster streams mixed by the cluster weights with
``tf.data.Dataset.sample_from_datasets``. Every element is a pure function of
(seed, element index), and maps keep their order (``deterministic=True``),
so a seeded stream is the same on every run whatever the thread count.

Elements: ``(images, boxes, classes)`` with shapes ``(B, S, S, 2)`` float32
in [0, 1] (channels in `bubblenet.conventions.CHANNELS` order), ``(B, M, 4)`` float32 relative
``xyxy`` boxes (see `bubblenet.conventions`), ``(B, M)`` int32 classes (1 = bubble,
-1 = padding), with B = positives + negatives and M = ``max_boxes``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from bubblenet.conventions import CHANNELS
from bubblenet.training_data.samples import TrainingData
from bubblenet.training_data.negatives import Clusters

__all__ = ["training_stream", "element_spec"]


def element_spec(size: int, max_boxes: int):
    """Shapes and dtypes of one sample (without the batch axis)."""
    return (tf.TensorSpec((size, size, len(CHANNELS)), tf.float32), tf.TensorSpec((max_boxes, 4), tf.float32),
            tf.TensorSpec((max_boxes,), tf.int32))


def _mapped(fn, size: int, max_boxes: int, parallel):
    """A counter stream mapped through a numpy sample function, shapes restored."""
    def call(k):
        image, boxes, labels = tf.numpy_function(fn, [k], (tf.float32, tf.float32, tf.int32), stateful=False)
        image.set_shape((size, size, len(CHANNELS)))
        boxes.set_shape((max_boxes, 4))
        labels.set_shape((max_boxes,))
        return image, boxes, labels

    return tf.data.Dataset.counter().map(call, num_parallel_calls=parallel, deterministic=True)


def training_stream(data: TrainingData, clusters: Clusters | None = None, *, positives: int = 8,
                    negatives: int = 8, parallel: int | None = None) -> tf.data.Dataset:
    """An endless, seeded stream of mixed batches.

    Parameters
    ----------
    data : TrainingData
    clusters : Clusters, optional
        Negative clusters and weights; the whole pool evenly when omitted.
    positives, negatives : int
        Samples of each kind per step (the paper: 8 and 8).
    parallel : int, optional
        Parallel sample calls; ``tf.data.AUTOTUNE`` by default.

    Returns
    -------
    tf.data.Dataset
        Of ``(images, boxes, classes)``; one epoch is
        ``ceil(data.positives_per_epoch / positives)`` steps.
    """
    if positives < 1 or negatives < 0:
        raise ValueError(f"need positives >= 1 and negatives >= 0 per step, got {positives} and {negatives}")
    size, m = data.config.size, data.config.max_boxes
    parallel = tf.data.AUTOTUNE if parallel is None else parallel
    seed = data.config.seed

    def positive(k):
        s = data.positive(int(k))
        return s.image, s.boxes, s.labels

    stream = _mapped(positive, size, m, parallel).batch(positives, drop_remainder=True)
    if negatives == 0:
        return stream.prefetch(tf.data.AUTOTUNE)

    if clusters is None:
        groups, weights = [np.arange(len(data.negatives))], [1.0]
    else:
        groups = [clusters.members(c) for c in range(len(clusters.weights)) if clusters.weights[c] > 0]
        weights = [float(w) for w in clusters.weights if w > 0]

    def negative_from(members, group):
        def negative(k):
            rng = np.random.default_rng([seed, 5, group, int(k)])
            s = data.negative(int(members[rng.integers(len(members))]), int(k))
            return s.image, s.boxes, s.labels

        return negative

    streams = [_mapped(negative_from(members, g), size, m, parallel) for g, members in enumerate(groups)]
    mixed = streams[0] if len(streams) == 1 else tf.data.Dataset.sample_from_datasets(streams, weights, seed=seed)
    negative_batches = mixed.batch(negatives, drop_remainder=True)

    def concat(pos, neg):
        return tuple(tf.concat([a, b], axis=0) for a, b in zip(pos, neg))

    return tf.data.Dataset.zip(stream, negative_batches).map(concat).prefetch(tf.data.AUTOTUNE)
