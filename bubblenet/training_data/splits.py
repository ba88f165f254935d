"""Train / validation / test split of survey tiles by Galactic longitude.

Nishimoto et al. (2025) keep whole tiles apart: the test tiles are those
centred at l = 12°, 15°, 18°, 21°; the others are shuffled with a fixed seed
into training and validation (their split 0 validates on l = 33°, 39°, 48°,
54°). Here the test longitudes and the number (or explicit list) of
validation tiles are options, and the split is written beside every run.

Survey tiles overlap (GLIMPSE tiles are 3.1° wide every 3°), so a tile's
split alone does not keep a test bubble out of training: `forbidden_boxes`
gives, for each tile, the pixel areas that other splits' tiles cover, and
the data pipeline never cuts a training sample that touches them.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Sequence

import numpy as np

from bubblenet.conventions import image_box
from bubblenet.errors import ConfigError
from bubblenet.outputs import write_json

__all__ = ["Split", "PAPER_TEST_LONGITUDES", "tile_longitude", "split_tiles", "forbidden_boxes", "SPLITS"]

#: Test tiles of the reference paper (centre longitudes, deg).
PAPER_TEST_LONGITUDES = (12.0, 15.0, 18.0, 21.0)
SPLITS = ("train", "val", "test")


def tile_longitude(tile) -> float:
    """Galactic longitude of a tile's centre, in (-180, 180] (continuous across l = 0)."""
    ny, nx = tile.shape
    lon = tile.pixel_to_world((nx - 1) / 2, (ny - 1) / 2).galactic.l.deg
    return float((lon + 180.0) % 360.0 - 180.0) if lon > 180 else float(lon)


@dataclasses.dataclass(frozen=True)
class Split:
    """Which tiles (by name) go where, and how that was decided."""

    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]
    seed: int
    test_longitudes: tuple[float, ...]

    def of(self, name: str) -> str:
        """The split (``"train"``, ``"val"``, ``"test"``) of a tile name."""
        for split in SPLITS:
            if name in getattr(self, split):
                return split
        raise KeyError(name)

    def to_json(self, path) -> None:
        """Write the split (atomically) so a run can be reproduced and audited."""
        write_json(path, dataclasses.asdict(self))

    @classmethod
    def from_json(cls, path) -> "Split":
        data = json.loads(open(path).read())
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def split_tiles(tiles: Sequence, *, test_longitudes: Sequence[float] = PAPER_TEST_LONGITUDES,
                val: int | Sequence[float] = 4, seed: int = 0, tolerance: float = 0.75) -> Split:
    """Split tiles into train, validation and test sets by their centre longitude.

    Parameters
    ----------
    tiles : sequence of bubblenet.sky.mosaics.SkyTile
    test_longitudes : sequence of float
        Centres (deg) of the test tiles; a tile is a test tile if its centre is
        within `tolerance` of one of them.
    val : int or sequence of float
        Number of validation tiles drawn by a seeded shuffle of the
        non-test tiles, or their centre longitudes.
    seed : int
        Seed of the shuffle.
    tolerance : float
        Degrees; tiles cropped to a region have off-grid centres.

    Raises
    ------
    ConfigError
        If no tile is left for training, or listed validation longitudes
        match no tile.
    """
    names = [t.name for t in tiles]
    lons = np.array([tile_longitude(t) for t in tiles])

    def near(targets) -> np.ndarray:
        targets = np.asarray(list(targets), float).reshape(-1, 1)
        if targets.size == 0:
            return np.zeros(len(lons), bool)
        return (np.abs(((lons[None, :] - targets) + 180) % 360 - 180) <= tolerance).any(axis=0)

    is_test = near(test_longitudes)
    rest = [i for i in range(len(tiles)) if not is_test[i]]
    if isinstance(val, (int, np.integer)):
        order = np.random.default_rng(seed).permutation(len(rest))
        val_idx = sorted(rest[k] for k in order[: min(int(val), max(len(rest) - 1, 0))])
    else:
        chosen = near(val)
        if val and not chosen.any():
            raise ConfigError(f"no tile is centred near the validation longitudes {list(val)}")
        val_idx = [i for i in rest if chosen[i]]
    train_idx = [i for i in rest if i not in val_idx]
    if not train_idx:
        raise ConfigError(f"no tile left for training among {names} (test longitudes {list(test_longitudes)})")
    return Split(tuple(names[i] for i in train_idx), tuple(names[i] for i in val_idx),
                 tuple(names[i] for i in np.flatnonzero(is_test)), int(seed), tuple(float(x) for x in test_longitudes))


def forbidden_boxes(tiles: Sequence, split: Split, name: str) -> np.ndarray:
    """Pixel boxes (xyxy, in tile `name`'s frame) covered by tiles of *other* splits.

    A sample cut from tile `name` that touches one of these boxes could hold
    sky (and bubbles) of another split, so it is not used.
    """
    by_name = {t.name: t for t in tiles}
    tile = by_name[name]
    own = split.of(name)
    boxes = []
    for other in tiles:
        if other.name == name or split.of(other.name) == own:
            continue
        bounds = tile.image8.pixel_bounds_of(other.image8.footprint(16))
        if bounds is None:
            continue
        lo_x, lo_y, hi_x, hi_y = image_box(tile.shape)
        x0, y0, x1, y1 = bounds
        if x1 < lo_x or x0 > hi_x or y1 < lo_y or y0 > hi_y:
            continue
        boxes.append(bounds)
    return np.array(boxes, dtype=float).reshape(-1, 4)
