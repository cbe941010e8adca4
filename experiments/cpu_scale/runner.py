"""The ablation runner for EPBT at CPU scale: every method, every seed, one small record each.

The methods are experiments/cpu_scale/methods.yaml. The setting is frozen
(configs/cpu_cifar10_*.yaml): ResNet-8 on 5,000 CIFAR-10 training
JPEGs, 1,000 validation images, 12 epochs per lineage, population at most 16. Each run
writes a JSON record (config, seed, commit, per-generation curves, generation-0 learners,
model-epochs, time, torch version and threads) under --records; the tables and figure
are rebuilt from those records alone (experiments/cpu_scale/tables.py). Finished runs are
skipped, interrupted ones resumed, so the sweep can span several sittings.

    python -m experiments.cpu_scale.runner --data-dir /tmp/cifar10-jpeg --stage screen \
        --seeds 100 --methods b1_lr0.1,epbt_paper --runs runs/ablation --records docs/results/records

Stages: ``screen`` records test accuracy on a seeded 2,000-image part of the test set
(cheap); ``confirm`` on all 10,000 test images, for seeds declared in advance.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from epbt_deap.rundir.logs import read_run_logs
from epbt_deap.rundir.provenance import source_version

ROOT = Path(__file__).resolve().parents[2]
LEARNER_MARGIN = 0.10  # a learner's validation accuracy is at least this far above chance
MATRIX = yaml.safe_load((Path(__file__).with_name("methods.yaml")).read_text())
#: Each method: its base config (in configs/) and its overrides, the paper's options pinned first.
METHODS = {name: (method["base"], MATRIX["paper"] + method["set"]) for name, method in MATRIX["methods"].items()}
REPLAYS = {f"replay_{method}": method for method in METHODS if method.startswith("epbt_")}  # its best schedule
STAGES = {"screen": ["data.test_subset=2000"], "confirm": []}


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cli.main", *args], check=True, cwd=ROOT)


def git_commit() -> str:
    """The short commit of this checkout, ``-dirty`` when tracked files differ from it."""
    source = source_version()
    return (source["git_commit"] or "")[:7] + ("-dirty" if source["git_dirty"] else "")


def build_record(method: str, stage: str, seed: int, run_dir: Path, wall_seconds: float) -> dict[str, Any]:
    """The small, committed summary of one finished run directory."""
    import torch

    logs = read_run_logs(run_dir)
    config, logbook, lineage = logs.config, logs.logbook, logs.lineage
    epochs_per_generation = config["train"]["epochs_per_generation"]
    first = [row for row in lineage if row["generation"] == 0]
    chance = 1 / 10
    return {
        "method": method, "stage": stage, "seed": seed, "commit": git_commit(),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
        "config": config,
        "curve": [{"epochs": row["epochs"], "best_val": row["max"], "mean_val": row["avg"],
                   "best_test": row["best_test"]} for row in logbook],
        "final_val": logbook[-1]["max"], "final_test": logbook[-1]["best_test"],
        "gen0_learners": sum(row["fitness"] >= chance + LEARNER_MARGIN for row in first),
        "gen0_population": len(first),
        "gen0": [{"genes": row["genes"], "val": row["fitness"]} for row in first],
        "evaluations": len(lineage), "failed": sum(row.get("status") != "ok" for row in lineage),
        "model_epochs": len(lineage) * epochs_per_generation,
        "eval_seconds": round(sum(row.get("seconds") or 0.0 for row in lineage), 1),
        "wall_seconds": round(wall_seconds, 1),
    }


def run_one(method: str, stage: str, seed: int, data_dir: Path, runs: Path, records: Path,
            extra: list[str]) -> None:
    """Run (or resume) one method and seed unless its record exists; then write the record."""
    record_path = records / stage / f"{method}-seed{seed}.json"
    if record_path.exists():
        print(f"{stage} {method} seed {seed}: recorded already", flush=True)
        return
    run_dir = (runs / stage / f"{method}-seed{seed}").resolve()
    started = time.perf_counter()
    if method in REPLAYS:
        cli("replay", str(run_dir.with_name(f"{REPLAYS[method]}-seed{seed}")), "--run-dir", str(run_dir),
            "--overwrite")
    elif (run_dir / "state.pkl").exists():
        cli("resume", str(run_dir))
    else:
        base, assignments = METHODS[method]
        overrides = [f"name={method}", *assignments, *STAGES[stage], *extra]
        cli("evolve", "--config", str(ROOT / "configs" / f"{base}.yaml"), "--data-dir", str(data_dir.resolve()),
            "--seed", str(seed), "--run-dir", str(run_dir), "--overwrite",
            *[item for assignment in overrides for item in ("--set", assignment)])
    wall = time.perf_counter() - started
    record = build_record(method, stage, seed, run_dir, wall)
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(record, indent=1) + "\n")
    print(f"{stage} {method} seed {seed}: test {record['final_test']:.4f}, val {record['final_val']:.4f}, "
          f"{record['gen0_learners']}/{record['gen0_population']} gen-0 learners, {wall:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="holds train/ and test/ class folders")
    parser.add_argument("--stage", choices=sorted(STAGES), default="screen")
    parser.add_argument("--seeds", default="100", help="comma-separated seeds, e.g. 100,101,102")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, from: {', '.join([*METHODS, *REPLAYS])}")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "ablation", help="run directories (not committed)")
    parser.add_argument("--records", type=Path, default=ROOT / "docs" / "results" / "records")
    parser.add_argument("--set", dest="assignments", action="append", default=[], metavar="KEY=VALUE",
                        help="extra overrides for every run (changes the setting: use for trials only)")
    args = parser.parse_args()
    methods = args.methods.split(",")
    unknown = sorted(set(methods) - set(METHODS) - set(REPLAYS))
    if unknown:
        parser.error(f"unknown methods {', '.join(unknown)}")
    for seed in (int(seed) for seed in args.seeds.split(",")):
        for method in methods:
            try:
                run_one(method, args.stage, seed, args.data_dir, args.runs, args.records, args.assignments)
            except subprocess.CalledProcessError as error:  # counted: no record, so the next sitting retries
                print(f"{args.stage} {method} seed {seed}: FAILED (exit {error.returncode})", flush=True)


if __name__ == "__main__":
    main()
