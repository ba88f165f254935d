"""How the real MWP field's small and large DR2 bubbles look, beside the same bubbles on its hardened twins.

For each of the 14 DR2 bubbles inside the real field at l = 41.3° (through
the registered copies of its planes, as `benchmarks/bench_transfer.py`
searches it) and on its hardened JPEG twins (`bubblenet.synth.realism.mwp_field_twin`,
one per seed), with and without the compact look of small bubbles
(`bubblenet.synth.hardening.Hardening.compact_bubbles`):

* the correlation of the 8 and 24 µm planes within 1.5 MajAxis
  (`bubblenet.synth.realism.bubble_band_correlations`);
* each plane's mean rank inside 0.5 MajAxis and in the ring 0.75-1.25
  MajAxis, ranks taken within the ±2.5 MajAxis cut-out (any monotonic
  stretch drops out; a bubble-free position gives 0.5 everywhere).

Prints one JSON line: per field and size class (MajAxis under or over
`REAL_SMALL_BUBBLE_CORRELATION["max_maj_axis"]`) the median correlation
and the mean ranks, and per kind of twin their mean and spread over the seeds.

    python experiments/small_bubble_looks.py [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def with_cutouts_inside(bubbles, path: Path, pixel_arcmin: float):
    """The rows of `bubbles` whose ±2.5 MajAxis cut-out lies inside the image at `path`."""
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.wcs import WCS

    ny, nx = fits.getdata(path).shape
    x, y = WCS(fits.getheader(path)).world_to_pixel(SkyCoord(bubbles["glon"], bubbles["glat"], unit="deg",
                                                             frame="galactic"))
    h = np.ceil(2.5 * np.asarray(bubbles["maj_axis"], float) / pixel_arcmin)
    return bubbles[(np.round(x) - h >= 0) & (np.round(y) - h >= 0) & (np.round(x) + h < nx) & (np.round(y) + h < ny)]


def looks(pair, bubbles, pixel_arcmin: float) -> dict:
    """Per bubble of `bubbles` (DR2 rows), its band correlation and the planes' centre and rim ranks."""
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.wcs import WCS
    from scipy.stats import rankdata

    from bubblenet.synth.realism import bubble_band_correlations

    (i8, wcs), (m24, _) = [(fits.getdata(path).astype(float), WCS(fits.getheader(path))) for path in pair]
    x, y = wcs.world_to_pixel(SkyCoord(bubbles["glon"], bubbles["glat"], unit="deg", frame="galactic"))
    radius = np.asarray(bubbles["maj_axis"], float) / pixel_arcmin
    out = {"correlation": bubble_band_correlations(i8, m24, x, y, radius), "centre8": [], "rim8": [],
           "centre24": [], "rim24": []}
    for xk, yk, rk in zip(x, y, radius):
        h = int(np.ceil(2.5 * rk))
        cx, cy = int(round(float(xk))), int(round(float(yk)))
        yy, xx = np.mgrid[cy - h:cy + h + 1, cx - h:cx + h + 1]
        rho = np.hypot(xx - xk, yy - yk) / rk
        for band, plane in (("8", i8), ("24", m24)):
            cut = plane[cy - h:cy + h + 1, cx - h:cx + h + 1]
            rank = rankdata(cut, nan_policy="omit").reshape(cut.shape) / np.isfinite(cut).sum()
            out[f"centre{band}"].append(float(np.nanmean(rank[rho < 0.5])))
            out[f"rim{band}"].append(float(np.nanmean(rank[(rho > 0.75) & (rho < 1.25)])))
    return {key: np.asarray(value, float) for key, value in out.items()}


def by_size(measured: dict, maj_axis: np.ndarray, limit: float) -> dict:
    """Median correlation and mean ranks of the bubbles under and over `limit` arcmin."""
    out = {}
    for label, pick in (("small", maj_axis < limit), ("large", maj_axis >= limit)):
        median = float(np.nanmedian(measured["correlation"][pick]))
        out[label] = {"n": int(pick.sum()), "median_correlation": round(median, 3)}
        out[label].update({f"mean_{key}": round(float(np.nanmean(measured[key][pick])), 3)
                           for key in ("centre8", "rim8", "centre24", "rim24")})
    return out


def spread(rows: list[dict]) -> dict:
    """Mean and standard deviation over seeds of each number of `by_size`'s output."""
    return {label: {key: [round(float(np.mean([r[label][key] for r in rows])), 3),
                          round(float(np.std([r[label][key] for r in rows])), 3)] for key in rows[0][label]}
            for label in rows[0]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="twin seeds")
    args = parser.parse_args(argv)

    import bench_transfer
    from bubblenet.evaluation.scoring import reference_catalogue
    from bubblenet.synth.hardening import HARD
    from bubblenet.synth.realism import MWP_FIELD, REAL_SMALL_BUBBLE_CORRELATION, mwp_field_twin

    pixel_arcmin = MWP_FIELD["pixscale"] / 60.0
    limit = REAL_SMALL_BUBBLE_CORRELATION["max_maj_axis"]
    kinds = {"hard_jpeg": HARD, "hard_jpeg_rings_only": dataclasses.replace(HARD, compact_bubbles=0.0)}
    with tempfile.TemporaryDirectory() as tmp:
        _, real = bench_transfer.register(Path(tmp) / "registered")
        bubbles = with_cutouts_inside(reference_catalogue("mwp_dr2"), real[0], pixel_arcmin)
        maj_axis = np.asarray(bubbles["maj_axis"], float)
        result = {"bubbles": len(bubbles), "max_maj_axis": limit,
                  "real": by_size(looks(real, bubbles, pixel_arcmin), maj_axis, limit)}
        for kind, hardening in kinds.items():
            rows = []
            for seed in args.seeds:
                twin = mwp_field_twin(Path(tmp) / f"{kind}_{seed}", seed=seed, hardening=hardening, jpeg=True,
                                      display_like=(bench_transfer.REAL_I8, bench_transfer.REAL_M24))[:2]
                rows.append(by_size(looks(twin, bubbles, pixel_arcmin), maj_axis, limit))
            result[kind] = {"seeds": args.seeds, "mean_sd": spread(rows)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
