"""SSD default boxes (priors), generated once from a preset and shared by head, encoder and decoder.

Conventions: priors are *relative* boxes on the unit square of the network
input, in ``(cx, cy, w, h)`` (centre-size) order, with x along image columns
and y along rows (row 0 at the bottom, as FITS; see `bubblenet.conventions`). The
order of priors is the order in which the SSD head reshapes its outputs:
feature map by feature map, then row, column, and box within the cell.

For each cell of a ``f x f`` feature map with step ``s`` pixels, on an image
of side ``S``, the centre is ``((j + 0.5) s / S, (i + 0.5) s / S)`` and the
boxes are (Liu et al. 2016, ECCV, "SSD"; Nishimoto et al. 2025 use the same):

* a square of side ``min_size / S``;
* a square of side ``sqrt(min_size * max_size) / S``;
* for each aspect ratio ``a``, boxes ``(m sqrt(a), m / sqrt(a))`` and
  ``(m / sqrt(a), m sqrt(a))`` with ``m = min_size / S``.

Priors are clipped to the unit square, as the reference SSD300 does.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

__all__ = ["AnchorSpec", "default_boxes", "boxes_per_cell", "cxcywh_to_xyxy", "xyxy_to_cxcywh"]


@dataclasses.dataclass(frozen=True)
class AnchorSpec:
    """The geometry of an SSD's default boxes.

    Attributes
    ----------
    image_size : int
        Network input side, pixels.
    feature_maps : tuple of int
        Side of each source feature map.
    steps : tuple of float
        Pixels per feature-map cell, per map.
    min_sizes, max_sizes : tuple of float
        Box sizes in input pixels, per map.
    aspect_ratios : tuple of tuple of float
        Extra aspect ratios per map (each gives two boxes).
    variances : tuple of float
        Centre and size variances of the box coder.
    clip : bool
        Clip priors to the unit square.
    """

    image_size: int
    feature_maps: tuple[int, ...]
    steps: tuple[float, ...]
    min_sizes: tuple[float, ...]
    max_sizes: tuple[float, ...]
    aspect_ratios: tuple[tuple[float, ...], ...]
    variances: tuple[float, float] = (0.1, 0.2)
    clip: bool = True

    def __post_init__(self):
        n = len(self.feature_maps)
        for name in ("steps", "min_sizes", "max_sizes", "aspect_ratios"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} needs one entry per feature map ({n}), got {getattr(self, name)}")

    @property
    def boxes_per_cell(self) -> tuple[int, ...]:
        """Default boxes per cell of each feature map."""
        return tuple(boxes_per_cell(ar) for ar in self.aspect_ratios)

    @property
    def num_priors(self) -> int:
        """Total number of default boxes."""
        return sum(f * f * b for f, b in zip(self.feature_maps, self.boxes_per_cell))

    def scaled(self, factor: float) -> "AnchorSpec":
        """The same grid with every box size multiplied by `factor` (a tunable of `bubblenet.tune`)."""
        if not factor > 0:
            raise ValueError(f"anchor scale must be positive, got {factor}")
        return dataclasses.replace(self, min_sizes=tuple(float(s) * factor for s in self.min_sizes),
                                   max_sizes=tuple(float(s) * factor for s in self.max_sizes))

    def to_dict(self) -> dict:
        """A JSON-able dict (`from_dict` inverts it)."""
        return {k: (list(map(list, v)) if k == "aspect_ratios" else list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "AnchorSpec":
        d = dict(d)
        d["aspect_ratios"] = tuple(tuple(a) for a in d["aspect_ratios"])
        for key in ("feature_maps", "steps", "min_sizes", "max_sizes", "variances"):
            d[key] = tuple(d[key])
        return cls(**d)


def boxes_per_cell(aspect_ratios: Sequence[float]) -> int:
    """Two squares plus two boxes per extra aspect ratio."""
    return 2 + 2 * len(aspect_ratios)


def default_boxes(spec: AnchorSpec) -> np.ndarray:
    """All default boxes of `spec`, ``(num_priors, 4)`` float32 ``(cx, cy, w, h)``, head order."""
    out = []
    size = float(spec.image_size)
    for f, step, lo, hi, ratios in zip(spec.feature_maps, spec.steps, spec.min_sizes, spec.max_sizes,
                                       spec.aspect_ratios):
        m, big = lo / size, math.sqrt(lo * hi) / size
        shapes = [(m, m), (big, big)]
        for a in ratios:
            r = math.sqrt(a)
            shapes += [(m * r, m / r), (m / r, m * r)]
        centres = (np.arange(f) + 0.5) * step / size
        cy, cx = np.meshgrid(centres, centres, indexing="ij")  # rows (y) outer, columns (x) inner
        cells = np.stack([cx.ravel(), cy.ravel()], axis=-1)  # (f*f, 2)
        wh = np.array(shapes)  # (B, 2)
        boxes = np.concatenate([np.repeat(cells, len(shapes), axis=0), np.tile(wh, (f * f, 1))], axis=1)
        out.append(boxes)
    priors = np.concatenate(out).astype(np.float32)
    if spec.clip:
        priors = np.clip(priors, 0.0, 1.0)
    return priors


def cxcywh_to_xyxy(boxes):
    """``(..., 4)`` centre-size boxes to corner boxes (numpy or any array with slicing)."""
    boxes = np.asarray(boxes, np.float32)
    half = boxes[..., 2:] / 2
    return np.concatenate([boxes[..., :2] - half, boxes[..., :2] + half], axis=-1)


def xyxy_to_cxcywh(boxes):
    """``(..., 4)`` corner boxes to centre-size boxes."""
    boxes = np.asarray(boxes, np.float32)
    return np.concatenate([(boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]], axis=-1)
