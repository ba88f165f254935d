"""The shared search mode: the backbone run once over each pyramid level, its features shared by the windows.

The fast mode (`bubblenet.detection.pyramid`) makes each window from a pyramid
level and runs the whole network on it; at stride 1/2 every level pixel goes
through the backbone in four windows. Here each level is normalised once
(`bubblenet.detection.local_norm`: each pixel as the window centred on it),
the network's trunk (`bubblenet.ssd.sharing.split_ssd`: the VGG blocks and the
first source's heads, about three quarters of the lite preset's work) runs
over the level in blocks, and each window takes its cells of the trunk's maps
and runs only the tail. The windows are those of the fast mode with their
starts moved onto the trunk's 16-pixel grid (`bubblenet.detection.pyramid.aligned_starts`).
Their outputs then go through the same decoding, per-window suppression and
merge as every mode's (`bubblenet.detection.inference.detect_outputs`).

A window's outputs differ from the fast mode's in two ways, both measured in
``docs/measurements.md`` ("The shared search"): its pixels are scaled by
their own centred windows' statistics rather than all by the window's, and
the trunk's cells near the window's edge see the level beyond it rather than
the network's zero padding.

Blocks are read with at least half the trunk's receptive field of context on
each side (`bubblenet.ssd.sharing.SplitSSD.margin`), so that they give the
whole level's maps exactly, and with half a window more for the statistics.
The trunk's memory is bounded by the strip and block sizes; the
normalisation works on whole strips of the level, so its memory grows with
the level's width (about 10 float arrays of (`STRIP_ROWS` + 400) x width
per strip being made, `MAX_WORKERS` strips at a time, and the ones waiting
for the network).
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Iterator, Sequence

import numpy as np

from bubblenet.detection.local_norm import block_reduce, local_normalise, stats_grid, window_sums
from bubblenet.detection.pyramid import Level, LevelStrips, plan_levels
from bubblenet.errors import ConfigError
from bubblenet.ssd.sharing import SplitSSD, split_of
from bubblenet.sky.tilecache import BadMap, TileCache
from bubblenet.training_data.cutouts import Crop, Normalisation, keep_bands

__all__ = ["shared_search", "shared_outputs", "Strip", "plan_strips", "normalised_strip", "normalised_strips", "STRIP_ROWS",
           "BLOCK_COLUMNS", "BATCH", "MAX_WORKERS"]

#: Level rows of window starts handled at once, and trunk columns run at once (memory: the lite
#: preset's first convolution holds 16 channels of about (STRIP_ROWS + 300) x (BLOCK_COLUMNS + 300) floats).
STRIP_ROWS = 1024
BLOCK_COLUMNS = 1024
#: Windows per call of the tail.
BATCH = 128
#: Most threads making strips by default (memory: each holds one strip's work, about 60 bytes a pixel).
MAX_WORKERS = 2


def _floor_to(value: int, step: int) -> int:
    return value // step * step


@dataclasses.dataclass(frozen=True)
class Strip:
    """Window rows of one level handled at once, and the level pixels they need.

    Attributes
    ----------
    level : Level
    origin : (int, int)
        Level row and column of the trunk input's first pixel (the first
        windows' start less the margin; on the trunk's grid).
    end : (int, int)
        ... and one past its last (the last windows' end plus the margin).
    read : (int, int, int, int)
        ``(row0, row1, col0, col1)`` of the level pixels read: the trunk input
        within the level, with half a window more each way for the statistics.
    rows : tuple
        ``(ly, column starts)`` of the windows, as in `Level.rows`.
    step : int
        The trunk's grid (level pixels per cell of its last map): window
        starts, `origin` and the first two of `read` are multiples of it.
    """

    level: Level
    origin: tuple[int, int]
    end: tuple[int, int]
    read: tuple[int, int, int, int]
    rows: tuple
    step: int


def plan_strips(level: Level, split: SplitSSD, *, strip_rows: int = STRIP_ROWS) -> Iterator[Strip]:
    """The strips of a level: `strip_rows` rows of window starts each (rounded to the trunk's grid)."""
    size, margin = level.size, split.margin
    align = math.lcm(stats_grid(size), split.step)
    rows, cols = level.shape
    strip_rows = max(split.step, _floor_to(strip_rows, split.step))
    pending = list(level.rows)
    while pending:
        batch = [(ly, xs) for ly, xs in pending if ly < pending[0][0] + strip_rows]
        pending = pending[len(batch):]
        y0, y1 = batch[0][0] - margin, batch[-1][0] + size + margin
        x0 = min(xs[0] for _, xs in batch) - margin
        x1 = max(xs[-1] for _, xs in batch) + size + margin
        r0, c0 = max(0, _floor_to(y0 - size // 2, align)), max(0, _floor_to(x0 - size // 2, align))
        r1, c1 = min(rows, y1 + size // 2), min(cols, x1 + size // 2)
        yield Strip(level, (y0, x0), (y1, x1), (r0, r1, c0, c1), tuple(batch), split.step)


def normalised_strip(cache: TileCache, strip: Strip, *, norm: Normalisation, bands: str
                     ) -> tuple[int, int, np.ndarray, list]:
    """``(row, column, trunk input, windows)`` of one strip.

    The trunk input is the level from the strip's origin (level pixels, on the
    trunk's grid; the margin included, zero outside the level) to its end,
    normalised (`local_normalise`); ``windows`` are the ``(ly, lx)`` starts of
    the strip's windows without missing data.
    """
    level, size = strip.level, strip.level.size
    (y0, x0), (y1, x1), (r0, r1, c0, c1) = strip.origin, strip.end, strip.read
    image, stars = LevelStrips(cache, level).block(r0, r1, c0, c1)
    # The part of the level inside both the read piece and the trunk's input: only it is scaled.
    ty0, ty1, tx0, tx1 = max(y0, r0), min(y1, r1), max(x0, c0), min(x1, c1)
    scaled = keep_bands(local_normalise(image, stars, size, offset=(r0, c0), level_shape=level.shape, norm=norm,
                                        grid=stats_grid(size), region=(ty0 - r0, ty1 - r0, tx0 - c0, tx1 - c0)),
                        bands)
    trunk_input = np.zeros((y1 - y0, x1 - x0, scaled.shape[-1]), np.float32)
    trunk_input[ty0 - y0:ty1 - y0, tx0 - x0:tx1 - x0] = scaled
    missing = ~np.isfinite(image).all(axis=-1)
    if missing.any():
        # Windows over missing data are left out. Their starts lie on the trunk's grid, as does the read
        # piece's origin, so whole cells of missing pixels and a summed-area table of them answer for each.
        step = strip.step  # divides the window side (`split_ssd` cuts only such networks)
        n, m = -(-missing.shape[0] // step), -(-missing.shape[1] // step)
        cells = np.zeros((n * step, m * step), bool)
        cells[:missing.shape[0], :missing.shape[1]] = missing
        # Missing cells in the window at each cell origin.
        count = window_sums(block_reduce(cells, step, np.logical_or).astype(np.float64), size // step)

        def clear(ly, lx):
            return count[(ly - r0) // step, (lx - c0) // step] == 0
    else:
        def clear(ly, lx):
            return True
    windows = [(ly, lx) for ly, xs in strip.rows for lx in xs if clear(ly, lx)]
    return y0, x0, trunk_input, windows


def normalised_strips(cache: TileCache, level: Level, split: SplitSSD, *, norm: Normalisation, bands: str,
                      strip_rows: int = STRIP_ROWS) -> Iterator[tuple[int, int, np.ndarray, list]]:
    """One level, strip by strip (`plan_strips`, `normalised_strip`), in this thread."""
    for strip in plan_strips(level, split, strip_rows=strip_rows):
        yield normalised_strip(cache, strip, norm=norm, bands=bands)


def _trunk_maps(split: SplitSSD, trunk_input: np.ndarray, block_columns: int) -> list[np.ndarray]:
    """The trunk's three maps over a strip's input, margin cropped, run in column blocks and stitched."""
    margin, width = split.margin, trunk_input.shape[1] - 2 * split.margin
    block_columns = max(split.step, _floor_to(block_columns, split.step))
    pieces = []
    for x in range(0, width, block_columns):
        bw = min(block_columns, width - x)
        out = []
        for a in split.trunk_maps(trunk_input[:, x:x + bw + 2 * margin]):
            per = trunk_input.shape[0] // a.shape[0]  # input pixels per cell of this map
            m = margin // per
            out.append(a[m:a.shape[0] - m, m:m + bw // per])
        pieces.append(out)
    return [np.concatenate(parts, axis=1) for parts in zip(*pieces)]


def shared_outputs(cache: TileCache, levels: Sequence[Level], split: SplitSSD, *, norm: Normalisation,
                   bands: str = "24+8", tile: int = 0, strip_rows: int = STRIP_ROWS,
                   block_columns: int = BLOCK_COLUMNS, batch: int = BATCH, workers: int | None = None
                   ) -> Iterator[tuple[list[Crop], np.ndarray]]:
    """``(crops, outputs)`` batches of the windows of each level, the trunk's work shared.

    Parameters
    ----------
    cache : TileCache
        The tile's bands and 8 µm point-source mask.
    levels : sequence of Level
        From `bubblenet.detection.pyramid.plan_levels` with ``step=split.step``.
    split : bubblenet.ssd.sharing.SplitSSD
        The model, cut in two.
    norm : bubblenet.training_data.cutouts.Normalisation
        The model's normalisation.
    bands : {"24+8", "8"}
        What the model sees.
    tile : int
        Tile index put in each `Crop`.
    strip_rows, block_columns, batch : int
        Memory and batching (`STRIP_ROWS`, `BLOCK_COLUMNS`, `BATCH`).
    workers : int, optional
        Threads making strips ahead of the network (default: the CPU count, at most `MAX_WORKERS`).

    Yields
    ------
    crops : list of Crop
    outputs : numpy.ndarray
        ``(len(crops), N, 4 + C)``, what the whole model gives for a window.
    """
    from bubblenet.detection.inference import in_parallel

    cells, head = split.cells, split.head_cells
    for level in levels:
        if level.size != split.size:
            raise ValueError(f"level of {level.size}-px windows for a {split.size}-px network")
        if any(ly % split.step or lx % split.step for ly, xs in level.rows for lx in xs):
            raise ValueError(f"window starts off the trunk's {split.step}-px grid: plan the levels with "
                             f"plan_levels(..., step={split.step})")
    strips = (strip for level in levels for strip in plan_strips(level, split, strip_rows=strip_rows))
    workers = workers or max(1, min(os.cpu_count() or 1, MAX_WORKERS))

    def made(strip: Strip):
        return strip.level, normalised_strip(cache, strip, norm=norm, bands=bands)

    # Strips are made in threads (numpy and scipy release the GIL) while the trunk and tail run.
    for level, (y0, x0, trunk_input, windows) in in_parallel(made, strips, workers=workers):
        if not windows:
            continue
        conv5, loc0, conf0 = _trunk_maps(split, trunk_input, block_columns)
        # Cells of the maps from (y0, x0) + margin, the first window row's start.
        oy, ox = y0 + split.margin, x0 + split.margin
        for i in range(0, len(windows), batch):
            chunk = windows[i:i + batch]
            at5 = [((ly - oy) // split.step, (lx - ox) // split.step) for ly, lx in chunk]
            at0 = [((ly - oy) // split.head_step, (lx - ox) // split.head_step) for ly, lx in chunk]
            outputs = split.window_outputs(
                np.stack([conv5[r:r + cells, c:c + cells] for r, c in at5]),
                np.stack([loc0[r:r + head, c:c + head] for r, c in at0]),
                np.stack([conf0[r:r + head, c:c + head] for r, c in at0]))
            yield [level.crop(ly, lx, tile) for ly, lx in chunk], outputs


def shared_search(model, cache: TileCache, sides: Sequence[int], *, stride_fraction: float,
                  norm: Normalisation = Normalisation(), bands: str = "24+8", origin: str = "edge",
                  tile: int = 0) -> tuple[int, Iterator[tuple[list[Crop], np.ndarray]]]:
    """Plan a tile's shared search and run it: ``(windows planned, (crops, outputs) batches)``.

    Parameters
    ----------
    model : keras.Model
        An SSD of `bubblenet.ssd.model.build_ssd`.
    cache : TileCache
    sides : sequence of int
        Window sides, native pixels.
    stride_fraction : float
        Stride over window side (rounded to whole trunk cells).
    norm, bands, tile
        As in `shared_outputs`.
    origin : {"edge", "paper"}
        Where rows of windows start, before they move onto the trunk's grid.
    """
    try:
        split = split_of(model)
    except ValueError as err:
        raise ConfigError(f"the shared search mode cannot run this network: {err} (it needs a network whose "
                          f"input side is a whole number of 16-px cells, as the lite preset's)") from None
    levels = plan_levels(cache.shape, sides, split.size, stride_fraction=stride_fraction, bad=BadMap(cache),
                         origin=origin, step=split.step)
    return sum(map(len, levels)), shared_outputs(cache, levels, split, norm=norm, bands=bands, tile=tile)
