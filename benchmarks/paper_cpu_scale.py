"""The paper's comparison at CPU scale: EPBT against Baseline 1 (cross-entropy) at equal epochs.

Runs configs/cpu_cifar10_epbt.yaml and configs/cpu_cifar10_baseline1.yaml for several
seeds on the CIFAR-10 JPEGs (an `imagefolder`), then prints the analogues of the paper's
Tables 1 and 2 and writes the figures.

    python benchmarks/paper_cpu_scale.py --data-dir /tmp/cifar10-jpeg --seeds 2 --out runs/paper_cpu_scale
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
METHODS = ("cpu_cifar10_epbt", "cpu_cifar10_baseline1")


def epbt_deap(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cli.main", *args], check=True, cwd=CONFIGS.parent)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="holds train/ and test/ class folders")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("runs/paper_cpu_scale"))
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="extra config overrides for every run, e.g. data.train_subset=2000")
    args = parser.parse_args()
    out = args.out.resolve()
    run_dirs = []
    for method in METHODS:
        for seed in range(args.seeds):
            run_dir = out / f"{method}_seed{seed}"
            started = time.perf_counter()
            overrides = [item for assignment in args.assignments for item in ("--set", assignment)]
            epbt_deap("evolve", "--config", str(CONFIGS / f"{method}.yaml"), "--data-dir", str(args.data_dir.resolve()),
                      "--seed", str(seed), "--run-dir", str(run_dir), "--overwrite", *overrides)
            print(f"{method} seed {seed}: {time.perf_counter() - started:.0f} s", flush=True)
            run_dirs.append(str(run_dir))
    epbt_deap("report", *run_dirs, "--out", str(out / "report"))


if __name__ == "__main__":
    main()
