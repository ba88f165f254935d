"""Cut-outs of the real MWP field's small DR2 bubbles beside the same bubbles on its hardened JPEG twin.

Each row is one DR2 bubble of the real field at l = 41.3° (through the
registered copies of its planes, as `benchmarks/bench_transfer.py` searches
it) and of its hardened twin in the real planes' display stretch and JPEG
(`bubblenet.synth.realism.mwp_field_twin`, seed `--seed`), drawn with
small bubbles as compact HII regions (`bubblenet.synth.hardening.HARD`) and
as rings (``compact_bubbles=0``, the look they had before; every other draw
of the sky the same): the 8 and 24 µm
planes, ±3 MajAxis (at least ±12 px) around the catalogue position, each
stretched between its own 1st and 99.5th percentiles, the catalogue's
MajAxis drawn as a circle. The docs' picture:

    python experiments/small_bubble_cutouts.py --out docs/small_bubbles_real_vs_twin.png
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

#: Six of the real field's nine DR2 bubbles of MajAxis up to 1.34′: the four clear ones, and the two that the
#: hardened recipe's detectors find on its hardened twins but not on the real field (docs/measurements.md).
NAMES = ("MWP2G0412322-0019869", "MWP2G0412281+0016933", "MWP2G0417315-0000245", "MWP2G0418007+0009156",
         "MWP2G0411287+0012006", "MWP2G0411228-0023746")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--seed", type=int, default=0, help="twin seed")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.coordinates import SkyCoord
    from astropy.io import fits
    from astropy.wcs import WCS

    import bench_transfer
    from bubblenet.evaluation.scoring import reference_catalogue
    from bubblenet.plotting import save_figure
    from bubblenet.synth.hardening import HARD
    from bubblenet.synth.realism import MWP_FIELD, mwp_field_twin

    dr2 = reference_catalogue("mwp_dr2")
    pixel_arcmin = MWP_FIELD["pixscale"] / 60.0
    with tempfile.TemporaryDirectory() as tmp:
        _, real = bench_transfer.register(Path(tmp) / "registered")
        fields = {"real": real}
        for label, hardening in (("hardened JPEG twin", HARD),
                                 ("the same, rings only", dataclasses.replace(HARD, compact_bubbles=0.0))):
            fields[f"{label}, seed {args.seed}"] = mwp_field_twin(
                Path(tmp) / label, seed=args.seed, hardening=hardening, jpeg=True,
                display_like=(bench_transfer.REAL_I8, bench_transfer.REAL_M24))[:2]
        planes = {label: [(fits.getdata(path).astype(float), WCS(fits.getheader(path))) for path in pair]
                  for label, pair in fields.items()}
    fig, axes = plt.subplots(len(NAMES), 2 * len(fields), figsize=(4 * len(fields), 2.2 * len(NAMES)))
    for row, name in enumerate(NAMES):
        bubble = dr2[dr2["name"] == name][0]
        centre = SkyCoord(bubble["glon"], bubble["glat"], unit="deg", frame="galactic")
        radius = float(bubble["maj_axis"]) / pixel_arcmin  # px
        half = max(12, int(3 * radius))
        for column, (label, band, (data, wcs)) in enumerate(
                (label, band, plane) for label, pair in planes.items() for band, plane in zip(("8", "24"), pair)):
            x, y = (int(round(float(v))) for v in wcs.world_to_pixel(centre))
            x0, y0 = max(0, x - half), max(0, y - half)
            cut = data[y0:y + half + 1, x0:x + half + 1]  # centred on the catalogue pixel
            ax = axes[row, column]
            ax.imshow(cut, origin="lower", cmap="gray", vmin=np.nanpercentile(cut, 1),
                      vmax=np.nanpercentile(cut, 99.5))
            ax.add_patch(plt.Circle((x - x0, y - y0), radius, fill=False, color="cyan", lw=0.8))
            ax.set_title(f"{label}, {band} µm\n{name} ({float(bubble['maj_axis']):.2f}′)", fontsize=6)
            ax.axis("off")
    fig.tight_layout()
    save_figure(fig, args.out, dpi=80)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
