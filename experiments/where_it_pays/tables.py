"""The tables and figure of "Where EPBT pays", rebuilt from the committed records alone.

    python -m experiments.where_it_pays.tables            # writes experiments/where_it_pays/tables/

Records made at another commit than the pinned one (``PINNED``), or from a dirty tree,
are refused. Per setting: each method's final test accuracy (mean ± sample std over
seeds), NLL, ECE, training accuracy and memorisation; EPBT against each control, on the seeds both have, by the
declared bar; the epochs EPBT's mean curve needs to pass each control; compute (``model_epochs``: the
reported model's own training; ``with_tuning``: every run behind it, the tuning runs that chose its lr and
ε included, and for ``replay`` the EPBT run it replays) and wall time; and what the
declared early-stop rule says on the screening seed (the first declared, so the lowest, seed). The figure
draws each method's reported curve (b1 and ce_ls: the tuned run) as a mean over seeds.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from epbt_deap.report.tables import format_table, write_csv
from experiments.where_it_pays.study import RECORDS, b1_methods, ce_ls_methods, final_validation

HERE = Path(__file__).resolve().parent
PINNED = HERE / "PINNED"
CONTROLS = ("b1_es", "ce_ls", "gce", "bestof8", "pbt_ce")
SHOWN = ("b1", "b1_es", "ce_ls", "gce", "bestof8", "pbt_ce", "epbt", "replay")
DEPENDS = {"b1_es": "b1", "ce_ls": "b1", "gce": "b1", "bestof8": "ce_ls", "epbt": "b1", "replay": "epbt"}
MEASURES = ("test", "test_nll", "test_ece", "train_accuracy", "memorised")
PERCENT = ("test", "train_accuracy", "memorised")
EARLY_STOP_POINTS = 3.0  # declared: the screening seed more than this far below the best control may stop a setting
COLUMNS = ("method", "seeds", *(column for measure in MEASURES for column in (measure, f"{measure}_std")),
           "model_epochs", "with_tuning", "wall_minutes")


class RecordError(Exception):
    """Records the tables may not use; the message is one line."""


def load_records(records: Path, setting: str, pinned: str) -> list[dict[str, Any]]:
    """The records of ``setting``; a RecordError for any made at another commit or from a dirty tree."""
    paths = sorted(path for path in (records / setting).glob("*.json") if path.name != "decision.json")
    loaded = [json.loads(path.read_text()) for path in paths]
    foreign = [f"{record['method']}-seed{record['seed']}" for record in loaded if record["commits"] != [[pinned, False]]]
    if foreign:
        raise RecordError(f"{setting}: {', '.join(foreign)} were not made at the pinned commit {pinned[:12]} "
                          "from a clean tree; rerun them from the pinned worktree")
    return loaded


class Outcome(NamedTuple):
    """One method on one seed: the reported curve row, the runs it took, the curve it is reported from,
    and the runs that trained the reported model (for a tuned method, the chosen one; none for b1_es)."""

    row: dict[str, Any]
    runs: list[dict[str, Any]]
    curve: list[dict[str, Any]]
    model: list[dict[str, Any]]


def outcomes(runs: dict[str, dict[str, Any]]) -> dict[str, Outcome]:
    """One seed's methods, the tuned ones resolved.

    ``b1`` and ``ce_ls`` are their runs with the best final validation accuracy; ``b1_es`` is
    ``b1``'s run at its best validation epoch (the first, on a tie), at no extra cost.
    """
    result: dict[str, Outcome] = {}
    for method, candidates in (("b1", b1_methods()), ("ce_ls", ce_ls_methods())):
        tried = [runs[name] for name in candidates if name in runs]
        if len(tried) == len(candidates):
            chosen = max(tried, key=final_validation)
            result[method] = Outcome(chosen["curve"][-1], tried, chosen["curve"], [chosen])
    if "b1" in result:
        curve = result["b1"].curve
        result["b1_es"] = Outcome(max(curve, key=lambda row: row["val"]), [], curve, [])
    for method in ("gce", "bestof8", "pbt_ce", "epbt", "replay"):
        if method in runs:
            result[method] = Outcome(runs[method]["curve"][-1], [runs[method]], runs[method]["curve"], [runs[method]])
    return result


def compute(method: str, by_method: dict[str, Outcome], key: str) -> float:
    """``key`` (model_epochs or wall_seconds) summed over the method's own runs and those it was tuned with."""
    own = sum(run[key] for run in by_method[method].runs)
    return own + (compute(DEPENDS[method], by_method, key) if method in DEPENDS and DEPENDS[method] in by_method
                  else 0)


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    values = [value for value in values if value is not None]
    if not values:
        return None, None
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else None


def scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def setting_table(seeds: dict[int, dict[str, Outcome]]) -> list[dict[str, Any]]:
    """One row per method: each measure's mean and sample std over seeds (as declared), compute per seed."""
    rows = []
    for method in SHOWN:
        present = [by_method for by_method in seeds.values() if method in by_method]
        if not present:
            continue
        row: dict[str, Any] = {"method": method, "seeds": len(present)}
        for measure in MEASURES:
            mean, std = mean_std([by_method[method].row.get(measure) for by_method in present])
            factor = 100.0 if measure in PERCENT else 1.0
            row[measure], row[f"{measure}_std"] = scaled(mean, factor), scaled(std, factor)
        row["model_epochs"] = float(np.mean([sum(run["model_epochs"] for run in by_method[method].model)
                                             for by_method in present]))
        row["with_tuning"] = float(np.mean([compute(method, by_method, "model_epochs") for by_method in present]))
        row["wall_minutes"] = float(np.mean([compute(method, by_method, "wall_seconds") for by_method in present])) / 60
        rows.append(row)
    return rows


def by_method_of(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["method"]: row for row in rows}


def verdict(difference: float, bar: float) -> str:
    return "wins" if difference > bar else "loses" if difference < -bar else "ties"


def bar_table(seeds: dict[int, dict[str, Outcome]]) -> list[dict[str, Any]]:
    """EPBT against each control on the seeds both have: difference of means, the bar, the verdict, epochs to pass.

    Pairing the seeds keeps a partly swept seed (its controls recorded, its EPBT not yet) out of the comparison;
    once every seed is complete it is the declared bar over all of them.
    """
    result = []
    for control in CONTROLS:
        shared = {seed: by_method for seed, by_method in seeds.items() if "epbt" in by_method and control in by_method}
        if not shared:
            continue
        by_method = by_method_of(setting_table(shared))
        epbt, other = by_method["epbt"], by_method[control]
        difference = epbt["test"] - other["test"]
        stds = [std for std in (epbt["test_std"], other["test_std"]) if std is not None]
        bar = max(stds) if len(stds) == 2 else None
        epochs, mean = mean_curve(curves_of("epbt", shared))
        above = np.flatnonzero(mean * 100 > other["test"])
        result.append({"control": control, "seeds": len(shared), "control_test": other["test"],
                       "epbt_test": epbt["test"], "difference": difference, "bar": bar,
                       "verdict": verdict(difference, bar) if bar is not None else "n/a (one seed)",
                       "epbt_epochs_to_pass": int(epochs[above[0]]) if above.size else None})
    return result


def curves_of(method: str, seeds: dict[int, dict[str, Outcome]]) -> list[list[dict[str, Any]]]:
    """The reported curve of ``method`` on each seed that has it."""
    return [by_method[method].curve for by_method in seeds.values() if method in by_method]


def mean_curve(curves: list[list[dict[str, Any]]]) -> tuple[np.ndarray, np.ndarray]:
    """Epochs and the mean test accuracy over ``curves`` at each epoch all of them recorded."""
    by_epoch = defaultdict(list)
    for curve in curves:
        for row in curve:
            by_epoch[row["epochs"]].append(row["test"])
    shared = sorted(epoch for epoch, values in by_epoch.items() if len(values) == len(curves))
    return np.array(shared), np.array([np.mean(by_epoch[epoch]) for epoch in shared])


def early_stop(seed: int, screening: dict[str, Outcome]) -> str:
    """The declared early-stop rule, read on the screening seed alone (its EPBT against its best control)."""
    by_method = by_method_of(setting_table({seed: screening}))
    epbt = by_method.get("epbt")
    controls = [by_method[control] for control in CONTROLS if control in by_method]
    if epbt is None or not controls:
        return ""
    best = max(controls, key=lambda row: row["test"])
    difference = epbt["test"] - best["test"]
    applies = difference < -EARLY_STOP_POINTS
    return (f"Early-stop rule (screening seed {seed}): EPBT {epbt['test']:.2f} % is {difference:+.2f} points against "
            f"that seed's best control so far, {best['method']} {best['test']:.2f} %: "
            + (f"more than {EARLY_STOP_POINTS:g} points below, so the setting may stop after screening." if applies
               else f"not more than {EARLY_STOP_POINTS:g} points below, so the setting goes on to the other seeds."))


def plot(setting: str, seeds: dict[int, dict[str, Outcome]], path: Path) -> None:
    """Mean test accuracy over seeds of each method's reported curve (no figure before any method completes)."""
    curves = {method: found for method in SHOWN if method != "b1_es" and (found := curves_of(method, seeds))}
    if not curves:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for method, found in curves.items():
        epochs, mean = mean_curve(found)
        axes.plot(epochs, mean * 100, label=f"{method} ({len(found)} seed{'' if len(found) == 1 else 's'})")
    axes.set(xlabel="epochs per lineage", ylabel="test accuracy of the reported model (%)", title=f"setting {setting}")
    axes.legend()
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)


def write_setting(setting: str, records_dir: Path, out: Path, pinned: str) -> str:
    """Write the setting's tables (.md, .csv) and figure; returns the Markdown."""
    records = load_records(records_dir, setting, pinned)
    if not records:
        return ""
    seeds: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for record in records:
        seeds[record["seed"]][record["method"]] = record
    resolved = {seed: outcomes(runs) for seed, runs in sorted(seeds.items())}
    rows = setting_table(resolved)
    comparisons = bar_table(resolved)
    failed = sum(record["failed"] for record in records)
    text = "\n\n".join([
        f"### Setting {setting}: seeds {', '.join(map(str, sorted(seeds)))}",
        "```\n" + format_table(rows) + "\n```" if rows else
        "(no method complete yet: b1 and ce_ls wait for all their candidates, the others for b1)",
        "```\n" + format_table(comparisons) + "\n```" if comparisons else "(no EPBT run yet)",
        *filter(None, [early_stop(min(resolved), resolved[min(resolved)])]),
        f"{len(records)} runs recorded, {failed} failed or diverged evaluations among them.",
    ])
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{setting}.md").write_text(text + "\n")
    write_csv(rows, COLUMNS, out / f"{setting}.csv")
    if comparisons:
        write_csv(comparisons, list(comparisons[0]), out / f"{setting}_bar.csv")
    plot(setting, resolved, out / f"{setting}.png")
    return text


def pilot_table(records_dir: Path, pinned: str) -> str:
    """The pilot's rungs and its decision, its runs checked against the pinned commit."""
    decision_path = records_dir / "pilot" / "decision.json"
    if not decision_path.exists():
        return ""
    load_records(records_dir, "pilot", pinned)
    decision = json.loads(decision_path.read_text())
    return "### Pilot\n\n```\n" + format_table(decision["rungs"]) + "\n```\n\n" + (
        f"Chosen: E = {decision['epochs']} on {decision['train_subset']} images "
        f"({'passed' if decision['passed'] else 'no rung passed; the closest'}).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=Path, default=RECORDS)
    parser.add_argument("--out", type=Path, default=HERE / "tables")
    args = parser.parse_args()
    if not PINNED.exists():
        sys.exit(f"error: {PINNED} names no commit yet")
    pinned = PINNED.read_text().strip()
    try:
        parts = [pilot_table(args.records, pinned), *(write_setting(setting, args.records, args.out, pinned)
                                              for setting in ("noisy", "converged"))]
    except RecordError as error:
        sys.exit(f"error: {error}")
    print("\n\n".join(part for part in parts if part))


if __name__ == "__main__":
    main()
