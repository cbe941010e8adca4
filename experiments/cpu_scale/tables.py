"""Tables and figure of the CPU-scale ablation, rebuilt from its committed records alone.

    python -m experiments.cpu_scale.tables --records docs/results/records --stage screen --out docs/results
    python -m experiments.cpu_scale.tables --stage confirm --seeds 1000,1001,1002   # those seeds only

Prints a Markdown table (final test accuracy, mean and standard deviation over seeds; the
mean final validation accuracy that chose the model; generation-0 learners; model-epochs;
evaluation and wall time, summed over seeds; epochs to pass Baseline 1; the verdict
against Baseline 1) and writes it as ``<stage>_table.csv`` with ``<stage>_accuracy.png``
(``<stage>_seeds<a>_<b>_..._table.csv`` and ``..._accuracy.png`` when ``--seeds`` picks some).
Baseline 1 is tuned per seed: of the ``b1_lr*`` runs, the one with the best final
validation accuracy counts, as ``b1_tuned``, charged with the compute of all of them; a
seed that has not yet run every learning rate has no ``b1_tuned``.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path
from typing import Any

from epbt_deap.report.tables import write_csv

TUNED = "b1_tuned"
COLUMNS = ["method", "seeds", "test_mean", "test_std", "val_mean", "vs_b1", "gen0_learners", "model_epochs", "eval_hours",
           "wall_hours", "epochs_to_pass_b1", "failed"]


def load_records(folder: Path, seeds: Collection[int] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Records by method (of ``seeds`` only, when given), each method's sorted by seed, with
    the tuned Baseline 1 added."""
    by_method: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text())
        if seeds is None or record["seed"] in seeds:
            by_method[record["method"]].append(record)
    learning_rates = {method for method in by_method if method.startswith("b1_lr")}
    by_seed: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for method in learning_rates:
        for record in by_method[method]:
            by_seed[record["seed"]].append(record)
    complete = [records for _, records in sorted(by_seed.items()) if len(records) == len(learning_rates)]
    if complete:  # a seed is tuned once every learning rate of the sweep has run on it
        by_method[TUNED] = [tuned(records) for records in complete]
    return {method: sorted(records, key=lambda r: r["seed"]) for method, records in sorted(by_method.items())}


def tuned(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One seed's tuned Baseline 1: the run with the best final validation accuracy, charged
    with the compute of every learning rate tried."""
    best = max(runs, key=lambda r: r["final_val"])
    cost = {key: sum(run[key] for run in runs) for key in ("model_epochs", "eval_seconds", "wall_seconds")}
    return {**best, **cost, "method": TUNED}


def mean_curve(records: list[dict[str, Any]]) -> tuple[list[int], list[float], list[float]]:
    """Epochs, mean and standard deviation over seeds of the best individual's test accuracy."""
    by_epoch: dict[int, list[float]] = defaultdict(list)
    for record in records:
        for point in record["curve"]:
            if point["best_test"] is not None:
                by_epoch[point["epochs"]].append(point["best_test"])
    epochs = sorted(by_epoch)
    return (epochs, [statistics.fmean(by_epoch[e]) for e in epochs],
            [statistics.stdev(by_epoch[e]) if len(by_epoch[e]) > 1 else 0.0 for e in epochs])


def summarize(method: str, records: list[dict[str, Any]], baseline: list[dict[str, Any]] | None) -> dict[str, Any]:
    finals = [100 * record["final_test"] for record in records]
    mean = statistics.fmean(finals)
    std = statistics.stdev(finals) if len(finals) > 1 else math.nan
    row = {"method": method, "seeds": len(records), "test_mean": round(mean, 2),
           "test_std": "" if math.isnan(std) else round(std, 2),
           "val_mean": round(100 * statistics.fmean(r["final_val"] for r in records), 2),
           "gen0_learners": f"{statistics.fmean(r['gen0_learners'] for r in records):.1f}/"
                            f"{records[0]['gen0_population']}",
           "model_epochs": round(statistics.fmean(r["model_epochs"] for r in records)),
           "eval_hours": round(sum(r["eval_seconds"] for r in records) / 3600, 2),
           "wall_hours": round(sum(r["wall_seconds"] for r in records) / 3600, 2),
           "failed": sum(r["failed"] for r in records), "vs_b1": "", "epochs_to_pass_b1": ""}
    seeds = {record["seed"] for record in records}
    baseline = [record for record in baseline or [] if record["seed"] in seeds]  # the same seeds only
    if baseline and method != TUNED:
        base = [100 * record["final_test"] for record in baseline]
        base_std = statistics.stdev(base) if len(base) > 1 else math.nan
        difference = mean - statistics.fmean(base)
        bar = max(std, base_std)
        verdict = "wins" if difference > bar else "loses" if difference < -bar else "tie"
        row["vs_b1"] = f"{difference:+.2f} ({verdict})" if not math.isnan(bar) else f"{difference:+.2f}"
        epochs, curve, _ = mean_curve(records)
        target = statistics.fmean(base) / 100
        passed = [epoch for epoch, value in zip(epochs, curve) if value > target]
        row["epochs_to_pass_b1"] = passed[0] if passed else "never"
    return row


def plot(groups: dict[str, list[dict[str, Any]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(8, 5))
    for method, records in groups.items():
        if method.startswith("b1_lr"):
            continue
        epochs, mean, std = mean_curve(records)
        ax.errorbar(epochs, [100 * m for m in mean], yerr=[100 * s for s in std], label=f"{method} (n={len(records)})",
                    capsize=2, marker="o", markersize=3)
    ax.set_xlabel("epochs of training per lineage")
    ax.set_ylabel("test accuracy of the best individual by validation (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def markdown(rows: list[dict[str, Any]], columns: list[str] = COLUMNS) -> str:
    """``rows`` as a Markdown table of ``columns``."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[column]) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"1001,1000"`` as ``(1000, 1001)``."""
    try:
        return tuple(sorted({int(seed) for seed in text.split(",")}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds must be comma-separated integers, got {text!r}") from None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=Path, default=Path("docs/results/records"))
    parser.add_argument("--stage", default="screen")
    parser.add_argument("--out", type=Path, default=Path("docs/results"))
    parser.add_argument("--seeds", type=parse_seeds, help="comma-separated seeds to count (default: every seed)")
    args = parser.parse_args()
    listed = ", ".join(map(str, args.seeds or ()))
    groups = load_records(args.records / args.stage, args.seeds)
    if not groups:
        parser.error(f"no records in {args.records / args.stage}" + (f" for seeds {listed}" if listed else ""))
    baseline = groups.get(TUNED)
    rows = [summarize(method, records, baseline) for method, records in groups.items()]
    rows.sort(key=lambda row: -row["test_mean"])
    stem = f"{args.stage}_seeds{listed.replace(', ', '_')}" if listed else args.stage
    write_csv(rows, COLUMNS, args.out / f"{stem}_table.csv")
    plot(groups, args.out / f"{stem}_accuracy.png",
         f"CPU-scale CIFAR-10, ResNet-8, {args.stage} stage" + (f", seeds {listed}" if listed else ""))
    print(markdown(rows))


if __name__ == "__main__":
    main()
