"""Join synthetic surveys of separate longitude strips into one survey folder that `bubblenet fit --survey` reads.

`bubblenet synth` draws one region on one master grid, and a strip longer
than about 27° at 2.4″/px does not fit in memory; a training sky that skips
a field (the real MWP field at l = 41.3°, which `benchmarks/bench_transfer.py`
compares with its twins) is two strips anyway. This links every FITS tile of
each strip into `--out` (relative symbolic links: no pixels are copied) and
writes the strips' catalogues and name lists, row after row, into the
folder's own files, with a record of where each came from.

    python experiments/merge_skies.py runs/hard_west runs/hard_east --out runs/hard_sky
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

#: Catalogue tables a synthetic survey writes (`bubblenet.synth.survey`), joined row after row.
TABLES = ("bubbles_mwp_dr2.csv", "bubbles_truth.csv", "confusers.ecsv", "hii_regions.ecsv")
#: Name lists, one name a line, joined in order.
NAME_LISTS = ("clear_bubbles.txt", "clear_bubbles_truth.txt", "shells_8um.txt")


def merge(strips: list[Path], out: Path) -> dict:
    """Link the strips' tiles into `out` and join their tables; returns the record written to ``merged.json``.

    The joined survey is built in a temporary folder next to `out` and renamed onto it when complete, so a
    failure leaves no half-written `out`.

    Raises
    ------
    ValueError
        When a strip is no synthetic survey, the strips differ in pixel scale, latitude range, mode or
        hardening, two strips hold a tile of the same name, a table is in some strips only or its columns
        differ between them, or `out` already exists.
    """
    import shutil
    import tempfile

    from astropy.table import Table, vstack

    if out.exists():
        raise ValueError(f"{out}: already exists; give a new --out")
    runs = []
    for strip in strips:
        if not (strip / "synth_run.json").is_file():
            raise ValueError(f"{strip}: no synth_run.json: not a survey written by bubblenet synth")
        runs.append(json.loads((strip / "synth_run.json").read_text()))
    for key in ("pixscale", "mode", "hardening"):
        values = {json.dumps(run["options"].get(key), sort_keys=True) for run in runs}
        if len(values) > 1:
            raise ValueError(f"the strips differ in {key}: {sorted(values)}")
    if len({(run["options"]["region"]["b_min"], run["options"]["region"]["b_max"]) for run in runs}) > 1:
        raise ValueError("the strips differ in latitude range")
    tiles: dict[str, Path] = {}
    for strip in strips:
        for tile in sorted(strip.glob("*.fits")):
            if tile.name in tiles:
                raise ValueError(f"tile {tile.name} is in both {tiles[tile.name].parent} and {strip}")
            tiles[tile.name] = tile
    for name in (*TABLES, *NAME_LISTS):
        present = [strip for strip in strips if (strip / name).is_file()]
        if present and len(present) != len(strips):
            raise ValueError(f"{name} is in {', '.join(map(str, present))} only")
    out.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, tile in tiles.items():  # relative links: the folders can move together
            os.symlink(os.path.relpath(tile.resolve(), out.resolve()), build / name)
        for name in TABLES:
            parts = [Table.read(strip / name) for strip in strips if (strip / name).is_file()]
            if not parts:
                continue
            if any(part.colnames != parts[0].colnames for part in parts):
                raise ValueError(f"{name}: the strips' columns differ")
            vstack(parts, metadata_conflicts="silent").write(build / name)
        for name in NAME_LISTS:
            if not (strips[0] / name).is_file():
                continue
            lines = [line for strip in strips for line in (strip / name).read_text().splitlines() if line.strip()]
            (build / name).write_text("".join(line + "\n" for line in lines))
        record = {"made_by": "experiments/merge_skies.py", "strips": [str(strip) for strip in strips],
                  "runs": runs, "tiles": len(tiles)}
        (build / "merged.json").write_text(json.dumps(record, indent=2) + "\n")
        build.rename(out)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return record


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("strips", nargs="+", type=Path, help="survey folders written by bubblenet synth")
    parser.add_argument("--out", type=Path, required=True, help="new folder for the joined survey")
    args = parser.parse_args(argv)
    try:
        record = merge(args.strips, args.out)
    except (OSError, ValueError) as error:
        print(f"merge_skies: {error}", file=sys.stderr)
        return 2
    print(f"{record['tiles']} tiles of {len(args.strips)} strips joined in {args.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
