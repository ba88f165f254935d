"""Measure bubblenet's departures from the original code one at a time: ``experiments/ablation.yaml``.

For each seed and each variant (bubblenet's recipe when the table was measured, the original's, and the
baseline with one switch flipped), train the fit demo's detector, keep its test-tile scores (on the sky, each bubble once), and run
it on the real MWP field at l = 41.3° scored one-to-one against every MWP DR2 bubble there. Finished runs
are skipped, so running the same command again resumes. Writes ``OUT/results.jsonl`` (one line per run)
and ``OUT/ablation.md`` (the table: mean ± standard deviation over the seeds run); ``--docs FILE`` puts
the tables into FILE too, between its marker lines (`MARKERS`).

    python experiments/ablation.py --config experiments/ablation.yaml [--seeds 0 1] [--variants baseline paper]
    python experiments/ablation.py --config experiments/ablation.yaml --table-only --docs docs/ablation.md
    python experiments/ablation.py --config experiments/ablation.yaml --rescore baseline --seeds 0

``--rescore VARIANT`` scores that variant's trained detectors again with each search of the config's
``search_variants`` (and with the original's threshold step of 0.01 and survey cut at 0.95), without
training: ``OUT/rescore.jsonl``, and its table ``OUT/rescore.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import yaml


def options(section: dict) -> dict:
    """YAML option names (``val-sizes``) as `FitConfig` field names (``val_sizes``).

    ``label-all-bubbles: true`` is ``label_selected_only: false``, as on the command line.
    """
    out = {key.replace("-", "_"): value for key, value in section.items()}
    if "label_all_bubbles" in out:
        out["label_selected_only"] = not out.pop("label_all_bubbles")
    return out


def variant_configs(spec: dict) -> dict:
    """The `FitConfig` of each variant of an ablation config (checks every option)."""
    from bubblenet.training.config import FitConfig

    base = options(spec["base"])
    base.pop("demo_sky", None)
    return {name: FitConfig.from_options({**base, **options(changes or {})})
            for name, changes in spec["variants"].items()}


def real_field_scores(folder: Path, i8: Path, m24: Path) -> dict:
    """The detector in `folder` on the real field: one-to-one (strict rule) against all DR2 bubbles and the clear ones."""
    import bubblenet

    return real_field_table_scores(bubblenet.find_bubbles(i8, m24, detector=folder), i8)


def real_field_table_scores(found, i8: Path) -> dict:
    """`real_field_scores` of detections already made (`bubblenet.find_bubbles`' table)."""
    import bubblenet

    return bubblenet.score_field(found, i8)


def run_one(name: str, seed: int, config, out: Path, cache: Path, demo_sky: Path, real: dict) -> dict:
    """Train one variant with one seed (or find it trained) and score it."""
    from bubblenet.training.run import fit

    folder = out / f"{name}_s{seed}"
    start = time.perf_counter()
    result = fit(config.replace(seed=seed), folder, demo_sky=demo_sky, cache=cache, verbose=False)
    seconds = time.perf_counter() - start
    test = result.test
    row = {"variant": name, "seed": seed, "seconds": round(seconds, 1), "threshold": result.validation["threshold"],
           "val_f2": result.validation["f2"], "test_recall": test["recall"], "test_precision": test["precision"],
           "test_f2": test["f2"], "test_strict_precision": test["strict"]["precision"],
           "test_strict_recall": test["strict"]["recall"], "test_strict_f2": test["strict"]["f2"],
           "test_clear": test["tp"] + test["fn"]}
    row["real"] = real_field_scores(folder, Path(real["i8"]), Path(real["m24"]))
    return row


def rescore(name: str, seed: int, config, search_changes: dict, out: Path, demo_sky: Path, real: dict) -> list[dict]:
    """Rows for one trained detector searched with its own search and with each of `search_changes`.

    For each search: the validation tile's sweep picks the threshold (steps of 0.05, and the original's
    0.01), the test tiles are scored at it and at the original's survey cut (0.95), and the real field is
    searched at the chosen threshold.
    """
    import bubblenet
    from bubblenet.detection.detector import load_detector
    from bubblenet.evaluation.metrics import thresholds
    from bubblenet.training.run import open_training_survey, prepare_demo
    from bubblenet.training.validation import SurveyValidation, ValidationTile

    folder = out / f"{name}_s{seed}"
    detector = load_detector(folder)
    config = prepare_demo(config.replace(seed=seed), demo_sky)
    survey = open_training_survey(config)
    split = {"train": list(survey.split.train), "val": list(survey.split.val), "test": list(survey.split.test)}
    if detector.info.get("split") not in (None, split):
        raise RuntimeError(f"{folder}: the detector was trained on another split than {split}")
    rows = []
    for label, changes in {"own": {}, **search_changes}.items():
        search_config = config.replace(**options(changes))
        search = search_config.search
        tiles = {which: [ValidationTile.from_tile(survey.by_name[n], survey.catalogue, survey.selection,
                                                  out / "cache", missing=search.missing, zeros=search.zeros)
                         for n in names]
                 for which, names in (("val", survey.split.val), ("test", survey.split.test))}
        fine = thresholds(0.01)
        scored = {}
        for which in ("val", "test"):
            run = SurveyValidation(tiles[which], survey.catalogue, detector.spec, search,
                                   norm=detector.normalisation, bands=detector.bands, thresholds=fine)
            run.set_model(detector.model)
            start = time.perf_counter()
            _, sweep = run.evaluate()
            scored[which] = ({round(r["threshold"], 2): r for r in sweep}, time.perf_counter() - start)
        val, _ = scored["val"]
        test, test_seconds = scored["test"]
        for step in (0.05, 0.01):
            grid = [round(t, 2) for t in thresholds(step)]
            chosen = max(grid, key=lambda t: (val[t]["f2"], -t))
            for cut, threshold in (("validation", chosen), ("0.95", 0.95)):
                r = test[threshold]
                row = {"variant": name, "seed": seed, "search": label, "step": step, "cut": cut,
                       "threshold": threshold, "test_recall": r["recall"], "test_precision": r["precision"],
                       "test_f2": r["f2"], "test_strict_precision": r["strict"]["precision"],
                       "test_strict_f2": r["strict"]["f2"], "test_search_seconds": round(test_seconds, 1)}
                if cut == "validation":
                    found = bubblenet.find_bubbles(Path(real["i8"]), Path(real["m24"]), detector=detector,
                                                   search=search, threshold=threshold)
                    row["real"] = real_field_table_scores(found, Path(real["i8"]))
                rows.append(row)
    return rows


COLUMNS = (("test recall", lambda r: r["test_recall"]), ("strict precision", lambda r: r["test_strict_precision"]),
           ("test F2", lambda r: r["test_f2"]), ("strict F2", lambda r: r["test_strict_f2"]),
           ("real DR2 recall", lambda r: r["real"]["dr2_recall"]),
           ("real clear found", lambda r: r["real"]["clear_found"]),
           ("real unmatched / deg²", lambda r: r["real"]["unmatched_per_deg2"]))

RESCORE_COLUMNS = (("test recall", lambda r: r["test_recall"]), ("precision", lambda r: r["test_precision"]),
                   ("strict precision", lambda r: r["test_strict_precision"]),
                   ("strict F2", lambda r: r["test_strict_f2"]),
                   ("real DR2 found", lambda r: r["real"]["dr2_found"]),
                   ("real clear found", lambda r: r["real"]["clear_found"]),
                   ("real unmatched / deg²", lambda r: r["real"]["unmatched_per_deg2"]))

#: Where `--docs FILE` puts each table: between these two lines of the file.
MARKERS = {"table": ("<!-- the table of runs/ablation/ablation.md -->", "<!-- end of the table -->"),
           "rescore": ("<!-- the table of runs/ablation/rescore.md -->", "<!-- end of the rescore table -->")}


def mean_spread(values) -> str:
    """``mean ± sd`` (ddof 1) of a table cell, or the value alone for one seed."""
    values = np.asarray(values, float)
    spread = f" ± {values.std(ddof=1):.2f}" if len(values) > 1 else ""
    return f"{values.mean():.2f}{spread}"


def seed_list(rows: list[dict]) -> str:
    """The seeds of `rows`, in order: ``0,1,2``."""
    return ",".join(str(r["seed"]) for r in sorted(rows, key=lambda r: r["seed"]))


def table(rows: list[dict], variants: list[str]) -> str:
    """The Markdown table: per variant, mean ± standard deviation (ddof 1) over the seeds run."""
    lines = ["| variant | seeds | " + " | ".join(c for c, _ in COLUMNS) + " |",
             "|---" * (len(COLUMNS) + 2) + "|"]
    for name in variants:
        mine = [r for r in rows if r["variant"] == name]
        if mine:
            cells = [mean_spread([get(r) for r in mine]) for _, get in COLUMNS]
            lines.append(f"| {name} | {seed_list(mine)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def rescore_table(rows: list[dict]) -> str:
    """The Markdown table of `--rescore` rows: per variant, search and threshold step, mean ± sd over seeds.

    The threshold chosen on validation (one per seed), the scores at it, and the test search's time over
    that of the detector's own search for the same seed. The original's survey cut at 0.95 does not
    depend on the step: one row per search.
    """
    rows = list({(r["variant"], r["seed"], r["search"], r["step"], r["cut"]): r for r in rows}.values())
    own = {(r["variant"], r["seed"]): r["test_search_seconds"] for r in rows if r["search"] == "own"}
    lines = ["| detectors | search | threshold | seeds | chosen | " + " | ".join(c for c, _ in RESCORE_COLUMNS)
             + " | test search time |", "|---" * (len(RESCORE_COLUMNS) + 6) + "|"]
    groups = {}
    for r in sorted(rows, key=lambda r: (r["cut"] != "validation", -r["step"])):
        if r["cut"] == "validation" or r["step"] == 0.05:
            how = f"validation, steps of {r['step']}" if r["cut"] == "validation" else "0.95 (the original's cut)"
            groups.setdefault((r["variant"], r["search"]), {}).setdefault(how, []).append(r)
    for (variant, search), hows in groups.items():
        for how, mine in hows.items():
            lines.append(_rescore_line(variant, search, how, mine, own))
    return "\n".join(lines) + "\n"


def _rescore_line(variant: str, search: str, how: str, mine: list[dict], own: dict) -> str:
    """One row of `rescore_table`: the seeds' rows `mine` of one detector variant, search and threshold rule."""
    mine = sorted(mine, key=lambda r: r["seed"])
    chosen = ", ".join(f"{r['threshold']:.2f}" for r in mine)
    scored_on_real = all("real" in r for r in mine)  # the 0.95 cut is not run on the real field
    cells = [mean_spread([get(r) for r in mine]) if scored_on_real or not name.startswith("real") else ""
             for name, get in RESCORE_COLUMNS]
    ratio = "1" if search == "own" else mean_spread([r["test_search_seconds"] / own[(variant, r["seed"])]
                                                      for r in mine])
    return f"| {variant} | {search} | {how} | {seed_list(mine)} | {chosen} | " + " | ".join(cells) + f" | {ratio}× |"


def fill_between_markers(text: str, markers: tuple[str, str], table_text: str, name: str) -> str:
    """`text` with what lies between the two `markers` lines replaced by `table_text`."""
    start, end = markers
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise SystemExit(f"{name}: needs one line {start!r} and, after it, one line {end!r}")
    head, rest = text.split(start, 1)
    return head + start + "\n" + table_text + end + rest.split(end, 1)[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("experiments/ablation.yaml"))
    parser.add_argument("--seeds", type=int, nargs="*", help="default: the config's")
    parser.add_argument("--variants", nargs="*", help="default: all of the config's")
    parser.add_argument("--table-only", action="store_true", help="only write the tables of the runs done")
    parser.add_argument("--docs", type=Path, metavar="FILE",
                        help="also put the tables into FILE (docs/ablation.md) between its marker lines")
    parser.add_argument("--rescore", metavar="VARIANT",
                        help="score VARIANT's trained detectors again with the config's search_variants")
    args = parser.parse_args(argv)

    from bubblenet.outputs import atomic_path, ensure_dir

    spec = yaml.safe_load(args.config.read_text())
    out = ensure_dir(Path(spec.get("out", "runs/ablation")))
    base = options(spec["base"])
    demo_sky = Path(base.pop("demo_sky", "demo_fit_sky"))
    variants = list(spec["variants"])
    chosen = args.variants or variants
    unknown = sorted(set(chosen) - set(variants))
    if unknown:
        parser.error(f"--variants: not in {args.config}: {', '.join(unknown)}")
    configs = variant_configs(spec)
    results = out / "results.jsonl"
    rows = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    done = {(r["variant"], r["seed"]) for r in rows}
    if args.rescore:
        for seed in args.seeds if args.seeds is not None else spec["seeds"]:
            new = rescore(args.rescore, seed, configs[args.rescore], spec.get("search_variants", {}), out,
                          demo_sky, spec["real_field"])
            with open(out / "rescore.jsonl", "a") as stream:
                stream.writelines(json.dumps(r) + "\n" for r in new)
            for r in new:
                print(json.dumps(r), flush=True)
        return 0
    if not args.table_only:
        for seed in args.seeds if args.seeds is not None else spec["seeds"]:
            for name in chosen:
                if (name, seed) in done:
                    continue
                row = run_one(name, seed, configs[name], out, out / "cache", demo_sky, spec["real_field"])
                rows.append(row)
                with open(results, "a") as stream:
                    stream.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
    tables = {"table": table(rows, variants)}
    with atomic_path(out / "ablation.md") as tmp:
        Path(tmp).write_text(tables["table"])
    rescored = out / "rescore.jsonl"
    if rescored.exists():
        tables["rescore"] = rescore_table([json.loads(line) for line in rescored.read_text().splitlines()])
        with atomic_path(out / "rescore.md") as tmp:
            Path(tmp).write_text(tables["rescore"])
    if args.docs:
        text = args.docs.read_text()
        for key, table_text in tables.items():
            text = fill_between_markers(text, MARKERS[key], table_text, str(args.docs))
        with atomic_path(args.docs) as tmp:
            Path(tmp).write_text(text)
    print("\n".join(tables.values()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
