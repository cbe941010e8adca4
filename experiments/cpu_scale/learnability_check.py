"""Does the learnability check predict which random TaylorGLO losses train a network?

Draws ``--samples`` theta uniformly from [-10, 10]^8 (the paper's initialisation),
trains one ResNet-8 per theta for one CPU-scale generation (2 epochs on 5,000 CIFAR-10
JPEGs, as configs/cpu_cifar10_epbt.yaml), and compares who learned (validation accuracy
at least 10 points above chance) with what ``epbt_deap.evolution.learnability.check`` predicted,
for several end points of the check's path (``confident``). The hypothesis is refuted if
passing the check does not raise the share of learners.

    python -m experiments.cpu_scale.learnability_check --data-dir /tmp/cifar10-jpeg --samples 64 --seed 1 \
        --out docs/results/learnability_check_seed1.csv

A CSV that exists already is read instead of trained again (delete it to measure anew),
so the summary can be rebuilt from the committed CSV alone.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
from pathlib import Path

from epbt_deap.config import load_config
from epbt_deap.evolution.learnability import check
from epbt_deap.evolution.space import PARAMETER_NAMES
from epbt_deap.report.tables import write_csv
from epbt_deap.run import run
from epbt_deap.rundir.logs import read_run_logs

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "cpu_cifar10_epbt.yaml"
CHANCE = 1 / 10
END_POINTS = (0.5, 0.6, 0.7, 0.75, 0.8, 0.9)


def measure(data_dir: Path, samples: int, seed: int) -> list[dict]:
    """Train one model per uniform theta draw; one row of theta and validation accuracy each."""
    config = load_config(CONFIG, {"data.dir": str(data_dir), "data.test_subset": 500, "seed": seed,
                                  "evolution.algorithm": "none", "evolution.population": samples,
                                  "evolution.generations": 1, "name": "learnability_check"})
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = Path(scratch) / "run"
        run(config, run_dir)
        lineage = read_run_logs(run_dir).lineage
    return [{**{name: row["genes"][name] for name in PARAMETER_NAMES}, "val_accuracy": row["fitness"]}
            for row in lineage]


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as stream:
        return [{key: float(value) for key, value in row.items() if key in (*PARAMETER_NAMES, "val_accuracy")}
                for row in csv.DictReader(stream)]


def with_verdicts(row: dict) -> dict:
    """The row with who learned and the check's two conditions at the default end point."""
    verdict = check([row[name] for name in PARAMETER_NAMES], 10)
    return {**row, "learned": row["val_accuracy"] >= CHANCE + 0.1, "pushes_right_way": verdict.pushes_right_way,
            "no_wrong_class_reward": verdict.no_wrong_class_reward, "learnable": verdict.learnable}


def summary(rows: list[dict], passed: list[bool]) -> str:
    """'learners/total (percent), mean validation accuracy' among the rows that passed."""
    chosen = [row for row, ok in zip(rows, passed) if ok]
    learners = sum(row["learned"] for row in chosen)
    mean = statistics.fmean(row["val_accuracy"] for row in chosen) if chosen else float("nan")
    return f"{learners:>2}/{len(chosen):<2} learned ({100 * learners / max(len(chosen), 1):3.0f} %), mean val {mean:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="holds train/ and test/ class folders (to measure)")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="CSV of theta, accuracy and the check")
    args = parser.parse_args()
    if args.out.exists():
        rows = [with_verdicts(row) for row in read_rows(args.out)]
    else:
        if args.data_dir is None:
            parser.error(f"{args.out} does not exist: pass --data-dir to measure it")
        rows = [with_verdicts(row) for row in measure(args.data_dir, args.samples, args.seed)]
        write_csv(rows, list(rows[0]), args.out)
    print(f"{len(rows)} uniform draws ({args.out}): {summary(rows, [True] * len(rows))}")
    for condition in ("pushes_right_way", "no_wrong_class_reward", "learnable"):
        print(f"{condition:>22} met: {summary(rows, [row[condition] for row in rows])}; "
              f"not met: {summary(rows, [not row[condition] for row in rows])}")
    for confident in END_POINTS:
        passed = [check([row[name] for name in PARAMETER_NAMES], 10, confident).learnable for row in rows]
        print(f"  check with its path ending at y_c = {confident:<4}: passed {summary(rows, passed)}; "
              f"failed {summary(rows, [not ok for ok in passed])}")


if __name__ == "__main__":
    main()
