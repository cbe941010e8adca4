"""The ablation runner for EPBT at CPU scale: every method, every seed, one small record each.

The setting is frozen (configs/cpu_cifar10_*.yaml): ResNet-8 on 5,000 CIFAR-10 training
JPEGs, 1,000 validation images, 12 epochs per lineage, population at most 16. Each run
writes a JSON record (config, seed, commit, per-generation curves, generation-0 learners,
model-epochs, time, torch version and threads) under --records; the tables and figure
are rebuilt from those records alone (benchmarks/ablation_tables.py). Finished runs are
skipped, interrupted ones resumed, so the sweep can span several sittings.

    python benchmarks/paper_cpu_scale.py --data-dir /tmp/cifar10-jpeg --stage screen \
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

ROOT = Path(__file__).resolve().parent.parent
EPBT = "cpu_cifar10_epbt"
BASELINE1 = "cpu_cifar10_baseline1"
LEARNER_MARGIN = 0.10  # a learner's validation accuracy is at least this far above chance
LR_GENE = "lr: {low: 0.0001, high: 1.0, init_low: 0.01, init_high: 0.2, scale: log}"  # a base lr, then the milestones
PBT_SGD = [  # Baseline 3 at the frozen setting: PBT on lr and momentum with cross-entropy
    "train.loss=cross_entropy", "evolution.algorithm=pbt", "evolution.truncation=0.25",
    "evolution.mutate={name: mutPerturb, factors: [0.8, 1.2], reset_prob: 0.25}",
    f"evolution.genes={{{LR_GENE}, momentum: {{low: 0.0, high: 0.99, init_low: 0.8, init_high: 0.95}}}}",
]
PAPER = [  # the paper's algorithmic options, pinned under every method so that defaults never move the sweep
    "evolution.taylorglo.init=uniform", "evolution.repair_tries=0", "evolution.partners=population",
    "train.taylorglo_scale=1.0", "evolution.elites_train=false",
]
CHANGES = {  # EPBT's options beyond the paper, one at a time
    "init": ["evolution.taylorglo.init=learnable"],
    "repair": ["evolution.repair_tries=10"],
    "partners": ["evolution.partners=parents"],
    "scale3": ["train.taylorglo_scale=3"],
    "elites": ["evolution.elites_train=true"],
}
VARIANTS: dict[str, tuple[str, list[str]]] = {  # each method: its base config and what it changes
    **{f"b1_lr{lr}": (BASELINE1, [f"train.lr={lr}"]) for lr in ("0.05", "0.1", "0.2", "0.4")},
    "bestof16": (BASELINE1, ["evolution.population=16"]),
    "pbt_sgd": (EPBT, PBT_SGD),
    "epbt_paper": (EPBT, []),
    **{f"epbt_{name}": (EPBT, assignments) for name, assignments in CHANGES.items()},
    "epbt_all": (EPBT, [item for assignments in CHANGES.values() for item in assignments]),
    "epbt_elites_init": (EPBT, CHANGES["elites"] + CHANGES["init"]),
    "epbt_elites_lr": (EPBT, CHANGES["elites"] + [f"evolution.genes={{{LR_GENE}}}"]),
}
METHODS = {name: (base, PAPER + assignments) for name, (base, assignments) in VARIANTS.items()}
REPLAYS = {f"replay_{method}": method for method in METHODS if method.startswith("epbt_")}  # its best schedule
STAGES = {"screen": ["data.test_subset=2000"], "confirm": []}


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "cli.main", *args], check=True, cwd=ROOT)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete lines of a JSON-lines file (a half-written last line is ignored)."""
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return rows


def git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return result.stdout.strip() + ("-dirty" if dirty else "")


def build_record(method: str, stage: str, seed: int, run_dir: Path, wall_seconds: float) -> dict[str, Any]:
    """The small, committed summary of one finished run directory."""
    import torch

    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    logbook, lineage = read_jsonl(run_dir / "logbook.jsonl"), read_jsonl(run_dir / "lineage.jsonl")
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
