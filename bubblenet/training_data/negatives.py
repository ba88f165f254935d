"""Negative clustering: group bubble-free crops so that bubble-like ones can be dropped.

Nishimoto et al. (2025) embedded their negatives with a first trained SSD,
clustered them with k-means (k = 10), looked at each cluster, dropped the
ones that looked like bubbles (two of ten) and sampled the rest evenly. Here:

* `ProfileEmbedder` is the fixed feature extractor used before any detector
  exists: radial profiles of both bands around the crop centre, plus their
  spread — the quantities that make a crop look like a bubble or not;
* `KerasEmbedder` uses a trained model's layer (the detector's backbone)
  once one exists;
* `cluster_negatives` runs scikit-learn's `KMeans`, writes one montage PNG
  per cluster for a person to judge, and returns sampling weights in which
  dropped clusters get zero.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
from bubblenet.outputs import atomic_path, ensure_dir, write_json
from bubblenet.plotting import montage

__all__ = ["ProfileEmbedder", "KerasEmbedder", "Clusters", "cluster_negatives", "cluster_weights",
           "montage"]

log = logging.getLogger(__name__)


class ProfileEmbedder:
    """Fixed features of a normalised ``(S, S, 2)`` crop: ring means and spreads of both bands.

    Parameters
    ----------
    rings : int
        Number of rings from the centre to the crop's inscribed circle.
    """

    def __init__(self, rings: int = 8):
        self.rings = rings

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """``(N, S, S, 2)`` images -> ``(N, 2 * rings + 4)`` features."""
        images = np.asarray(images, np.float32)
        n, size = images.shape[0], images.shape[1]
        yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
        ring = np.minimum((np.hypot(xx, yy) / (size / 2) * self.rings).astype(int), self.rings)  # outside -> last
        onehot = np.stack([ring == r for r in range(self.rings)], axis=0).reshape(self.rings, -1).astype(np.float32)
        onehot /= onehot.sum(axis=1, keepdims=True)
        flat = images.reshape(n, -1, 2)
        profiles = np.einsum("rp,npc->ncr", onehot, flat).reshape(n, -1)  # (N, 2 * rings)
        spread = np.concatenate([flat.mean(axis=1), flat.std(axis=1)], axis=1)  # (N, 4)
        return np.concatenate([profiles, spread], axis=1)


class KerasEmbedder:
    """Features from a layer of a Keras model, globally average-pooled.

    Parameters
    ----------
    model : keras.Model
        E.g. the trained detector.
    layer : str, optional
        Layer name; the model's output when omitted.
    batch_size : int
    """

    def __init__(self, model, layer: str | None = None, batch_size: int = 32):
        import keras

        output = model.get_layer(layer).output if layer else model.output
        self.model = keras.Model(model.inputs, output)
        self.batch_size = batch_size

    def __call__(self, images: np.ndarray) -> np.ndarray:
        features = np.asarray(self.model.predict(np.asarray(images, np.float32), batch_size=self.batch_size,
                                                 verbose=0))
        return features.reshape(len(features), -1, features.shape[-1]).mean(axis=1) if features.ndim > 2 else features


@dataclasses.dataclass
class Clusters:
    """Result of clustering the negative pool."""

    labels: np.ndarray  # (N,) cluster of each pool entry
    weights: np.ndarray  # (k,) sampling weight per cluster, sum 1
    montages: list[Path]
    counts: list[int]

    def members(self, cluster: int) -> np.ndarray:
        """Pool indices of one cluster."""
        return np.flatnonzero(self.labels == cluster)


def cluster_weights(k: int, *, drop: Sequence[int] = (), weights: Sequence[float] | None = None,
                    counts: Sequence[int] | None = None) -> np.ndarray:
    """Sampling weight per cluster: equal (or as given), zero for dropped and empty ones, sum 1.

    Raises
    ------
    ValueError
        If the weights do not match `k`, a dropped cluster does not exist, or
        nothing is left to sample.
    """
    w = np.ones(k) if weights is None else np.asarray(weights, float)
    if w.shape != (k,) or (w < 0).any():
        raise ValueError(f"cluster weights must be {k} non-negative numbers, got {list(np.atleast_1d(w))}")
    for c in drop:
        if not 0 <= int(c) < k:
            raise ValueError(f"cannot drop cluster {c}: clusters are numbered 0..{k - 1}")
        w[int(c)] = 0
    if counts is not None:
        w[np.asarray(counts) == 0] = 0
    if w.sum() <= 0:
        raise ValueError("every negative cluster is dropped or empty: nothing left to sample")
    return w / w.sum()


def cluster_negatives(images: np.ndarray, *, k: int = 10, embedder=None, seed: int = 0, drop: Sequence[int] = (),
                      weights: Sequence[float] | None = None, out_dir=None, per_montage: int = 48) -> Clusters:
    """Cluster negative crops with k-means and write a montage per cluster.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, S, S, 2)`` normalised negative crops (the pool, one symmetry each).
    k : int
        Number of clusters (the paper: 10); at most N.
    embedder : callable, optional
        Images -> features; `ProfileEmbedder` by default.
    seed : int
    drop, weights :
        See `cluster_weights`.
    out_dir : path-like, optional
        Where ``negatives_cluster_<c>.png`` and ``negatives_clusters.json`` go.
    per_montage : int
        Crops shown per cluster.
    """
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import StandardScaler

    embedder = embedder or ProfileEmbedder()
    features = StandardScaler().fit_transform(embedder(images))
    k = min(k, len(images))
    labels = KMeans(n_clusters=k, random_state=seed, n_init=10).fit_predict(features)
    counts = [int((labels == c).sum()) for c in range(k)]
    w = cluster_weights(k, drop=drop, weights=weights, counts=counts)
    montages = []
    if out_dir is not None:
        out_dir = ensure_dir(out_dir)
        for c in range(k):
            members = np.flatnonzero(labels == c)[:per_montage]
            sheet = montage(images[members], columns=8, scale=1)
            path = out_dir / f"negatives_cluster_{c}.png"
            with atomic_path(path) as tmp:
                sheet.save(tmp, format="PNG")
            montages.append(path)
        write_json(out_dir / "negatives_clusters.json",
                   {"k": k, "seed": seed, "counts": counts, "weights": [round(float(x), 6) for x in w],
                    "dropped": [int(c) for c in drop], "montages": [p.name for p in montages]})
    log.info("negative clusters (sizes %s), weights %s", counts, np.round(w, 3).tolist())
    return Clusters(labels, w, montages, counts)
