"""Pictures of sky tiles: 24 µm in red, 8 µm in green, WCS axes, catalogue ellipses.

The colours follow the Milky Way Project images (red = MIPSGAL 24 µm,
green = GLIMPSE 8 µm) so that bubbles look as volunteers and papers show
them: green rims around red interiors.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from astropy.coordinates import SkyCoord  # noqa: E402
from astropy import units as u  # noqa: E402
from astropy.table import Table  # noqa: E402
from astropy.visualization import AsinhStretch, ManualInterval  # noqa: E402
from astropy.wcs import WCS  # noqa: E402

from PIL import Image, ImageDraw  # noqa: E402

from bubblenet.conventions import CHANNEL_8UM, CHANNEL_24UM, CHANNELS  # noqa: E402
from bubblenet.outputs import atomic_path  # noqa: E402

__all__ = ["rgb_composite", "ellipses_in_pixels", "plot_sky", "save_figure", "preview_tile", "preview_survey"]

log = logging.getLogger(__name__)


def _channel(data: np.ndarray | None, shape, percentiles=(1.0, 99.7)) -> np.ndarray:
    """One colour channel in [0, 1]: percentile interval, then asinh stretch."""
    if data is None:
        return np.zeros(shape, dtype=np.float32)
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return np.zeros(shape, dtype=np.float32)
    lo, hi = np.percentile(finite, percentiles)
    scaled = AsinhStretch(0.1)(ManualInterval(lo, hi if hi > lo else lo + 1)(np.nan_to_num(data, nan=lo)))
    return np.clip(scaled, 0, 1).astype(np.float32)


def rgb_composite(data24: np.ndarray | None, data8: np.ndarray | None) -> np.ndarray:
    """An RGB image with 24 µm in red and 8 µm in green (blue empty).

    Each band is scaled between its 1st and 99.7th percentiles and
    asinh-stretched; a missing band (None) stays black. NaN is shown black.

    Returns
    -------
    numpy.ndarray
        ``(ny, nx, 3)`` float32 in [0, 1].
    """
    ref = data24 if data24 is not None else data8
    rgb = np.zeros(ref.shape + (3,), dtype=np.float32)
    rgb[..., 0] = _channel(data24, ref.shape)
    rgb[..., 1] = _channel(data8, ref.shape)
    missing = np.ones(ref.shape, bool)
    for data in (data24, data8):
        if data is not None:
            missing &= ~np.isfinite(data)
    rgb[missing] = 0
    return rgb


def ellipses_in_pixels(table: Table, wcs: WCS) -> tuple[np.ndarray, ...]:
    """Pixel centre, semi-axes and major-axis angle of catalogue ellipses.

    The catalogue's ``theta`` is taken as the direction of the major axis
    measured from the +longitude axis towards +latitude (the convention of
    `bubblenet.synth`); its pixel direction is found from the local
    directions of those axes in `wcs`, so Galactic and equatorial grids,
    flipped or rotated, all work.

    Returns
    -------
    x, y, a, b, angle : numpy.ndarray
        Pixels, pixels, pixels, pixels, radians counter-clockwise from +x.
    """
    coords = SkyCoord(l=np.asarray(table["glon"], float) * u.deg, b=np.asarray(table["glat"], float) * u.deg,
                      frame="galactic")
    x, y = wcs.world_to_pixel(coords)
    delta = u.arcsec.to(u.deg)  # one arcsec along each Galactic axis, deg
    cosb = np.cos(np.radians(coords.b.deg))
    xl, yl = wcs.world_to_pixel(SkyCoord(l=coords.l + delta * u.deg / cosb, b=coords.b, frame="galactic"))
    xb, yb = wcs.world_to_pixel(SkyCoord(l=coords.l, b=coords.b + delta * u.deg, frame="galactic"))
    theta = np.radians(np.nan_to_num(np.asarray(table["theta"], float)))
    dx = np.cos(theta) * (xl - x) + np.sin(theta) * (xb - x)
    dy = np.cos(theta) * (yl - y) + np.sin(theta) * (yb - y)
    px_per_arcmin = u.arcmin.to(u.arcsec) * np.hypot(xb - x, yb - y)  # the offsets are one arcsec
    a = np.asarray(table["maj_axis"], float) * px_per_arcmin
    b = np.asarray(table["min_axis"], float) * px_per_arcmin
    return x, y, a, b, np.arctan2(dy, dx)


def plot_sky(data: np.ndarray, wcs: WCS, *, catalogue: Table | None = None, selected: np.ndarray | None = None,
             title: str | None = None, figsize_in: float = 12.0):
    """A figure of a two-band image with WCS axes and catalogue ellipses.

    Parameters
    ----------
    data : numpy.ndarray
        ``(ny, nx, 2)`` with channels in `bubblenet.conventions.CHANNELS`
        order; a channel that is all NaN is treated as missing.
    wcs : astropy.wcs.WCS
        Celestial WCS of `data`.
    catalogue : astropy.table.Table, optional
        Bubbles with the standard columns of `bubblenet.catalogues.tables`
        (``glon``, ``glat``, ``maj_axis``, ``min_axis``, ``theta``).
    selected : numpy.ndarray of bool, optional
        Which catalogue rows to highlight (e.g. the clear bubbles).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.patches import Ellipse

    bands = [data[..., c] if np.isfinite(data[..., c]).any() else None for c in range(len(CHANNELS))]
    rgb = rgb_composite(bands[CHANNEL_24UM], bands[CHANNEL_8UM])
    ny, nx = rgb.shape[:2]
    aspect = ny / nx
    fig = plt.figure(figsize=(figsize_in, figsize_in * aspect + 1.2))
    ax = fig.add_subplot(projection=wcs)
    ax.imshow(rgb, origin="lower", interpolation="nearest")
    frame = wcs.pixel_to_world(0, 0).frame.name
    names = ("Galactic longitude", "Galactic latitude") if frame == "galactic" else ("Right ascension", "Declination")
    ax.coords[0].set_axislabel(names[0])
    ax.coords[1].set_axislabel(names[1])
    ax.coords[0].set_major_formatter("d.dd")
    ax.coords[1].set_major_formatter("d.dd")
    if catalogue is not None and len(catalogue):
        x, y, a, b, angle = ellipses_in_pixels(catalogue, wcs)
        chosen = np.zeros(len(catalogue), bool) if selected is None else np.asarray(selected, bool)
        inside = (x > -a) & (x < nx + a) & (y > -a) & (y < ny + a)
        for i in np.flatnonzero(inside):
            ax.add_patch(Ellipse((x[i], y[i]), 2 * a[i], 2 * b[i], angle=math.degrees(angle[i]), fill=False,
                                 edgecolor="white" if chosen[i] else "cyan", linewidth=1.4 if chosen[i] else 0.7,
                                 linestyle="-" if chosen[i] else "--"))
        n_sel = int(chosen[inside].sum())
        ax.text(0.01, 0.99, f"{int(inside.sum())} catalogue bubbles (dashed cyan), {n_sel} selected (white)",
                transform=ax.transAxes, va="top", color="white", fontsize=9)
    if title:
        ax.set_title(title)
    return fig


def save_figure(fig, path: str | os.PathLike, *, dpi: int = 100) -> Path:
    """Save a figure as PNG atomically and close it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def preview_tile(tile, path: str | os.PathLike, *, catalogue: Table | None = None,
                 selection: frozenset | set | None = None, max_pixels: int = 1600) -> Path:
    """Write a PNG of a whole `bubblenet.sky.mosaics.SkyTile`, binned to at most `max_pixels` a side.

    Parameters
    ----------
    tile : bubblenet.sky.mosaics.SkyTile
    path : str or path-like
        PNG to write (atomically).
    catalogue : astropy.table.Table, optional
        Bubbles to draw.
    selection : set of str, optional
        Names of the bubbles to highlight.
    max_pixels : int
        Longest side of the picture, in image pixels.
    """
    factor = max(1, math.ceil(max(tile.shape) / max_pixels))
    data, wcs = tile.read_binned(factor)
    from bubblenet.catalogues.tables import select

    selected = select(catalogue, selection) if catalogue is not None and selection is not None else None
    title = f"{tile.name}  ({tile.pixel_scale.to_value(u.arcsec) * factor:.3g}″/px shown)"
    return save_figure(plot_sky(data, wcs, catalogue=catalogue, selected=selected, title=title), path)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """A normalised ``(S, S, 2)`` crop as 8-bit RGB (24 µm red, 8 µm green), row 0 at the bottom."""
    rgb = np.zeros(image.shape[:2] + (3,), np.uint8)
    rgb[..., 0] = np.clip(image[..., CHANNEL_24UM] * 255, 0, 255)
    rgb[..., 1] = np.clip(image[..., CHANNEL_8UM] * 255, 0, 255)
    return rgb[::-1]  # FITS row 0 is at the bottom; PNG row 0 at the top


def montage(images: np.ndarray, *, boxes: Sequence[np.ndarray] | None = None, columns: int = 8,
            captions: Sequence[str] | None = None, scale: int = 1) -> Image.Image:
    """A grid of crops with their relative ``xyxy`` boxes drawn in white.

    Parameters
    ----------
    images : numpy.ndarray
        ``(N, S, S, 2)`` normalised crops.
    boxes : sequence of numpy.ndarray, optional
        Per image, ``(M, 4)`` relative boxes (rows of -1 or zero area skipped).
    columns : int
    captions : sequence of str, optional
        A short text under each tile.
    scale : int
        Integer enlargement of each crop.
    """
    n, size = len(images), images.shape[1] * scale
    rows = max(1, math.ceil(n / columns))
    gap, text_h = 4, 12 if captions else 0
    sheet = Image.new("RGB", (columns * (size + gap) + gap, rows * (size + gap + text_h) + gap), (40, 40, 40))
    draw = ImageDraw.Draw(sheet)
    for i, image in enumerate(images):
        x0 = gap + (i % columns) * (size + gap)
        y0 = gap + (i // columns) * (size + gap + text_h)
        tile = Image.fromarray(to_rgb(image))
        if scale > 1:
            tile = tile.resize((size, size), Image.NEAREST)
        sheet.paste(tile, (x0, y0))
        for box in (boxes[i] if boxes is not None else []):
            bx0, by0, bx1, by1 = box
            if bx1 <= bx0 or by1 <= by0:
                continue
            # relative y runs up from the bottom; the PNG's runs down from the top
            draw.rectangle([x0 + bx0 * size, y0 + (1 - by1) * size, x0 + bx1 * size, y0 + (1 - by0) * size],
                           outline=(255, 255, 255))
        if captions:
            draw.text((x0, y0 + size), captions[i][:24], fill=(220, 220, 220))
    return sheet


def preview_detections(tile, table: Table, path: str | os.PathLike, *, threshold: float = 0.5,
                       max_pixels: int = 1600) -> Path:
    """Write a PNG of a tile with detected bubbles circled, coloured by score.

    Parameters
    ----------
    tile : bubblenet.sky.mosaics.SkyTile
    table : astropy.table.Table
        Detections (`bubblenet.detection.results.detections_table`): ``glon``,
        ``glat``, ``radius_arcmin``, ``score``.
    path : str or path-like
        PNG to write (atomically).
    threshold : float
        Lower end of the colour scale.
    max_pixels : int
        Longest side of the picture, in image pixels.
    """
    from matplotlib.patches import Circle

    factor = max(1, math.ceil(max(tile.shape) / max_pixels))
    data, wcs = tile.read_binned(factor)
    fig = plot_sky(data, wcs, title=f"{tile.name}: {len(table)} bubbles detected")
    ax = fig.axes[0]
    if len(table):
        coords = SkyCoord(np.asarray(table["glon"], float) * u.deg, np.asarray(table["glat"], float) * u.deg,
                          frame="galactic")
        x, y = wcs.world_to_pixel(coords)
        radius_arcsec = u.Quantity(table["radius_arcmin"], u.arcmin, dtype=float).to_value(u.arcsec)
        radius = radius_arcsec / (float(tile.pixel_scale.to_value(u.arcsec)) * factor)  # binned pixels
        cmap = plt.get_cmap("plasma")
        norm = plt.Normalize(threshold, 1.0)
        for xi, yi, ri, score in zip(x, y, radius, np.asarray(table["score"], float)):
            ax.add_patch(Circle((xi, yi), ri, fill=False, edgecolor=cmap(norm(score)), linewidth=1.2))
        fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.6, pad=0.01, label="score")
    return save_figure(fig, path)


def preview_survey(folder: str | os.PathLike, *, catalogue: str | os.PathLike | None = None,
                   selection: str | os.PathLike | None = None, out: str | os.PathLike | None = None,
                   progress=None) -> list[Path]:
    """Write one PNG per 8 µm tile of a survey folder (``<folder>/previews/<tile>.png``).

    Parameters
    ----------
    folder : str or path-like
        A survey folder (`bubblenet.sky.mosaics.find_survey_files` names).
    catalogue, selection : str or path-like, optional
        Bubbles to draw and names to highlight.
    out : str or path-like, optional
        Folder for the PNGs; ``<folder>/previews`` by default.
    progress : callable, optional
        A `tqdm.tqdm`-like wrapper for the loop over tiles.

    Returns
    -------
    list of pathlib.Path
        The PNG files.
    """
    from bubblenet.catalogues.tables import read_catalogue, read_selection
    from bubblenet.sky.mosaics import find_survey_files, open_survey

    tiles = open_survey(*find_survey_files(folder))
    table = read_catalogue(catalogue) if catalogue is not None else None
    chosen = read_selection(selection) if selection is not None else None
    out = Path(out) if out is not None else Path(folder) / "previews"
    if progress is not None:
        tiles = progress(tiles, desc="previews", unit="tile")
    return [preview_tile(t, out / f"{t.name}.png", catalogue=table, selection=chosen) for t in tiles]


def plot_astrometry(images, offset, path: str | os.PathLike, *, labels: Sequence[str] | None = None,
                    half: int = 12, columns: int = 6, max_panels: int = 60) -> Path:
    """Write a PNG of the sources a WCS offset was measured on: one panel per source and band.

    Each panel is a cut-out (asinh-stretched between its 1st and 99.7th
    percentiles) centred where the WCS puts the catalogued source, marked
    ``+``; the measured centroid is marked ``x`` (white where the source was
    used, red where it was rejected); a source not used has its ``status``
    under its name.

    Parameters
    ----------
    images : sequence of bubblenet.sky.mosaics.SkyImage
        The images `offset` was measured on.
    offset : bubblenet.sky.astrometry.AstrometricOffset
    path : str or path-like
        PNG to write (atomically).
    labels : sequence of str, optional
        A short name per image for the panels' titles (``"8 µm"``); the
        image names by default.
    half : int
        Half-size of each cut-out, pixels.
    columns : int
        Panels per row.
    max_panels : int
        Most panels drawn (used sources first), so a survey-sized mosaic
        with hundreds of sources still gives a readable picture; the title
        says how many were left out.

    Raises
    ------
    ValueError
        If `labels` does not give one name per image.
    """
    from bubblenet.sky.mosaics import Window

    by_name = {image.name: image for image in images}
    if labels is not None and len(labels) != len(by_name):
        raise ValueError(f"give one label per image: {len(labels)} label(s) for {len(by_name)} image(s)")
    label = dict(zip(by_name, labels or by_name))
    rows = sorted((row for row in offset.sources if row["band"] in by_name), key=lambda row: not row["used"])
    left_out = max(0, len(rows) - max_panels)
    rows = rows[:max_panels]
    nrows = max(1, math.ceil(len(rows) / columns))
    fig, axes = plt.subplots(nrows, columns, figsize=(1.9 * columns, 2.1 * nrows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, row in zip(axes.ravel(), rows):
        x0, y0 = int(round(row["x_wcs"])) - half, int(round(row["y_wcs"])) - half
        cut = by_name[row["band"]].read(Window(x0, y0, 2 * half + 1, 2 * half + 1))
        ax.imshow(_channel(cut, cut.shape), origin="lower", cmap="gray", vmin=0, vmax=1,
                  extent=(x0 - 0.5, x0 + 2 * half + 0.5, y0 - 0.5, y0 + 2 * half + 0.5))
        ax.plot(row["x_wcs"], row["y_wcs"], "+", color="cyan", ms=10, mew=1.5)
        if np.isfinite(row["x"]):
            ax.plot(row["x"], row["y"], "x", color="white" if row["used"] else "red", ms=8, mew=1.5)
        note = "" if row["used"] else f"\n{row['status']}"
        ax.set_title(f"{row['name']} {label[row['band']]}{note}", fontsize=6)
    more = f"; {left_out} more panels not drawn" if left_out else ""
    fig.suptitle(f"WCS offset (dx, dy) = ({offset.dx:+.2f} ± {offset.dx_err:.2f}, {offset.dy:+.2f} ± "
                 f"{offset.dy_err:.2f}) px over {offset.n_sources} sources: + catalogue through the WCS, "
                 f"x measured{more}", fontsize=8)
    return save_figure(fig, path)
