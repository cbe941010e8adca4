"""Does the learnability check predict which random TaylorGLO losses train a network?

Draws ``--samples`` theta uniformly from [-10, 10]^8 (the paper's initialisation),
trains one ResNet-8 per theta for one CPU-scale generation (2 epochs on 5,000 CIFAR-10
JPEGs, as configs/cpu_cifar10_epbt.yaml), and compares who learned (validation accuracy
at least 10 points above chance) with what ``epbt_deap.learnability.check`` predicted.
The hypothesis is refuted if passing the check does not raise the share of learners.

    python benchmarks/learnability_check.py --data-dir /tmp/cifar10-jpeg --samples 64 \
        --out docs/results/learnability_check.csv
"""
from __future__ import annotations

import argparse
import csv
import tempfile
from pathlib import Path

from epbt_deap.config import load_config
from epbt_deap.contract import read_run_logs
from epbt_deap.learnability import check
from epbt_deap.run import run
from epbt_deap.space import PARAMETER_NAMES

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "cpu_cifar10_epbt.yaml"


def share(rows: list[dict], condition: str, value: bool) -> str:
    """'learners/total (percent)' among the rows whose ``condition`` is ``value``."""
    chosen = [row for row in rows if row[condition] == value]
    learners = sum(row["learned"] for row in chosen)
    return f"{learners}/{len(chosen)} ({100 * learners / max(len(chosen), 1):.0f} %)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="holds train/ and test/ class folders")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="CSV of theta, accuracy and the check")
    args = parser.parse_args()
    config = load_config(CONFIG, {"data.dir": str(args.data_dir), "data.test_subset": 500, "seed": args.seed,
                                  "evolution.algorithm": "none", "evolution.population": args.samples,
                                  "evolution.generations": 1, "name": "learnability_check"})
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = Path(scratch) / "run"
        run(config, run_dir)
        lineage = read_run_logs(run_dir).lineage
    chance = 1 / 10
    rows = []
    for row in lineage:
        theta = [row["genes"][name] for name in PARAMETER_NAMES]
        verdict = check(theta, 10)
        rows.append({**dict(zip(PARAMETER_NAMES, theta)), "val_accuracy": row["fitness"],
                     "learned": row["fitness"] >= chance + 0.1, "pushes_right_way": verdict.pushes_right_way,
                     "no_wrong_class_reward": verdict.no_wrong_class_reward, "learnable": verdict.learnable})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} uniform draws, seed {args.seed}: {sum(r['learned'] for r in rows)} learned")
    for condition in ("pushes_right_way", "no_wrong_class_reward", "learnable"):
        print(f"{condition:>22}: learned when met {share(rows, condition, True)}, "
              f"when not {share(rows, condition, False)}")


if __name__ == "__main__":
    main()
