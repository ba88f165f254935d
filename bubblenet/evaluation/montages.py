"""Pictures for a person to check a scored catalogue: cut-outs of true and false positives and misses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy import units as u

__all__ = ["write_montages", "evaluation_montages"]


def write_montages(table, tp, fp, fn, folder: Path, *, per_montage: int = 48) -> list[Path]:
    """Cut-outs (2.5 radii a side, 24 µm red, 8 µm green) of true positives, false positives and misses.

    `tp`, `fp`: ``(glon, glat, radius_arcmin, caption)`` rows of detections;
    `fn`: the same for missed bubbles. Uses the input images named in the
    detection table's metadata; returns the PNGs written (none when the
    images are gone).
    """
    from astropy.coordinates import SkyCoord

    from bubblenet.training_data.cutouts import process
    from bubblenet.outputs import atomic_path, ensure_dir
    from bubblenet.plotting import montage
    from bubblenet.sky.mosaics import Window, open_survey

    files8, files24 = table.meta.get("inputs8", []), table.meta.get("inputs24", [])
    if not files8 or not all(Path(p).exists() for p in [*files8, *files24]):
        return []
    tiles = open_survey(files8, files24)
    written = []
    for name, rows in (("tp", tp), ("fp", fp), ("fn", fn)):
        images, captions = [], []
        for glon, glat, radius, caption in rows[:per_montage]:
            centre = SkyCoord(glon, glat, unit="deg", frame="galactic")
            for tile in tiles:
                x, y = (float(v) for v in tile.world_to_pixel(centre))
                if not np.isfinite([x, y]).all():
                    continue
                half = int(np.ceil(2.5 * u.Quantity(radius, u.arcmin).to_value(u.arcsec)
                                   / float(tile.pixel_scale.to_value(u.arcsec))))
                window = Window.centred(x, y, half)
                ny, nx = tile.shape
                if window.x0 < 0 or window.y0 < 0 or window.x0 + window.nx > nx or window.y0 + window.ny > ny:
                    continue
                data = tile.read(window)
                if np.isfinite(data).all():
                    images.append(process(data, 96, pixscale_arcsec=float(tile.pixel_scale.to_value(u.arcsec))))
                    captions.append(caption)
                    break
        if images:
            path = ensure_dir(folder) / f"{name}.png"
            with atomic_path(path) as tmp:
                montage(np.stack(images), captions=captions).save(tmp, format="PNG")
            written.append(path)
    return written


def evaluation_montages(evaluation, table, folder: Path, *, per_montage: int = 48) -> list[Path]:
    """``tp.png``, ``fp.png``, ``fn.png`` in `folder` for an `bubblenet.evaluation.scoring.Evaluation` (paper rule).

    `table` is the whole detection table (its metadata names the input images).
    """
    hits = evaluation.hits[:, evaluation.selected]
    rows = [(float(d["glon"]), float(d["glat"]), float(d["radius_arcmin"]), f"{d['score']:.2f}")
            for d in evaluation.detections]
    missed = evaluation.reference[evaluation.selected][~hits.any(axis=0)]
    found = hits.any(axis=1)
    return write_montages(table, [r for r, f in zip(rows, found) if f], [r for r, f in zip(rows, found) if not f],
                          [(float(b["glon"]), float(b["glat"]), float(b["maj_axis"]), str(b["name"]))
                           for b in missed], folder, per_montage=per_montage)
