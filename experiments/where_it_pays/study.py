"""The runner of the study "Where EPBT pays" (docs/results.md): the pilot, then every method, setting and seed.

Each run is a run directory under --runs (never committed) and, once it ends, one small JSON
record under --records (committed); tables.py rebuilds the tables from the records alone.
Recorded runs are skipped and interrupted ones resumed, so the sweep spans sittings.

    python -m experiments.where_it_pays.study pilot --data-dir /tmp/cifar10-jpeg
    python -m experiments.where_it_pays.study sweep --data-dir /tmp/cifar10-jpeg --setting noisy --seeds 2000

Run it with ``python -m`` from the root of a git worktree pinned at the declared commit, so
that the runner and the runs (``python -m cli.main``) import that checkout; every record
names the commit (and dirtiness) that its run's provenance.json recorded.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from epbt_deap.rundir.layout import RunLayout
from epbt_deap.rundir.logs import read_provenance, read_run_logs

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BASE_CONFIG = HERE / "base.yaml"
RECORDS = HERE / "records"

# The pilot (declared): Baseline 1 at lr 0.1 on clean labels, rungs in order, the first that passes sets E.
LADDER = ((60, 5000), (100, 5000), (100, 2500))  # (E, training images)
PILOT_LR = 0.1
MIN_TRAIN_ACCURACY = 0.95
MIN_NLL_RISE = 1.05  # final validation NLL / its minimum during training

GENERATIONS = 10  # EPBT and PBT: E / 10 epochs per generation
POPULATION, ELITES = 8, 4
LEARNING_RATES = (0.05, 0.1, 0.2)
SMOOTHINGS = (0.05, 0.1, 0.2)
GCE_Q = 0.7
NOISE = {"rate": 0.4, "kind": "symmetric"}  # setting N; validation labels as noisy as training's
SETTINGS = {"noisy": [f"data.label_noise={json.dumps(NOISE)}"], "converged": []}
PBT_CE = [  # PBT over lr, weight decay and label smoothing with cross-entropy
    "evolution.algorithm=pbt", "evolution.truncation=0.25",
    "evolution.mutate={name: mutPerturb, factors: [0.8, 1.2], reset_prob: 0.25}",
    "evolution.genes={lr: {low: 0.01, high: 0.4, scale: log}, weight_decay: {low: 1.0e-5, high: 1.0e-3, "
    "scale: log}, label_smoothing: {low: 0.0, high: 0.3}}",
]


@dataclass(frozen=True)
class Pilot:
    """What the pilot chose: E epochs per lineage on ``train_subset`` training images."""

    epochs: int
    train_subset: int


def schedule(epochs: int, epochs_per_generation: int) -> list[str]:
    """Overrides for ``epochs`` epochs per lineage in generations of ``epochs_per_generation``, lr / 10 at 50 %, 75 %."""
    return [f"train.epochs_per_generation={epochs_per_generation}", f"evolution.generations={epochs // epochs_per_generation}",
            f"train.lr_milestones=[{epochs // 2}, {3 * epochs // 4}]"]


def single_model(pilot: Pilot, lr: float, epochs_per_generation: int) -> list[str]:
    return [*schedule(pilot.epochs, epochs_per_generation), f"data.train_subset={pilot.train_subset}", f"train.lr={lr}"]


def method_overrides(method: str, setting: str, pilot: Pilot, lr: float | None, smoothing: float | None) -> list[str]:
    """The config overrides of ``method`` in ``setting``; ``lr`` and ``smoothing`` are b1's and ce_ls's tuned values."""
    step = pilot.epochs // GENERATIONS
    if method.startswith("b1_lr"):  # evaluated every epoch: the early-stopping epoch and the pilot's curve
        overrides = single_model(pilot, float(method.removeprefix("b1_lr")), 1)
    elif method.startswith("ce_ls"):
        overrides = [*single_model(pilot, lr, step), f"train.label_smoothing={method.removeprefix('ce_ls')}"]
    elif method == "gce":
        overrides = [*single_model(pilot, lr, step), "train.loss=gce", f"train.gce_q={GCE_Q}"]
    elif method == "bestof8":
        overrides = [*single_model(pilot, lr, step), f"train.label_smoothing={smoothing}",
                     f"evolution.population={POPULATION}"]
    elif method == "pbt_ce":
        overrides = [*single_model(pilot, lr, step), f"evolution.population={POPULATION}", *PBT_CE]
    elif method == "epbt":
        overrides = [*single_model(pilot, lr, step), "train.loss=taylorglo", "evolution.algorithm=epbt",
                     f"evolution.population={POPULATION}", f"evolution.elites={ELITES}"]
    else:
        raise ValueError(f"unknown method {method!r}")
    return [f"name={method}", *overrides, *SETTINGS[setting]]


def b1_methods() -> list[str]:
    return [f"b1_lr{lr}" for lr in LEARNING_RATES]


def ce_ls_methods() -> list[str]:
    return [f"ce_ls{smoothing}" for smoothing in SMOOTHINGS]


def methods_of(setting: str) -> list[str]:
    """Every method of ``setting``, in the order they run (the tuned ones first: the others use their choice)."""
    return [*b1_methods(), *ce_ls_methods(), *(["gce"] if setting == "noisy" else []), "bestof8", "pbt_ce",
            "epbt", "replay"]


def final_validation(record: dict[str, Any]) -> float:
    return record["curve"][-1]["val"]


def tuned(records: list[dict[str, Any]], value: Callable[[dict[str, Any]], float]) -> float:
    """The value of the record with the highest final validation accuracy (the first on a tie)."""
    return value(max(records, key=final_validation))


def pilot_verdict(curve: list[dict[str, Any]]) -> dict[str, Any]:
    """The entry rule on Baseline 1's curve: final training accuracy and the rise of validation NLL."""
    train = curve[-1]["train_accuracy"]
    nll = [row["val_nll"] for row in curve]
    rise = nll[-1] / min(nll)
    shortfall = max(0.0, MIN_TRAIN_ACCURACY - train) / MIN_TRAIN_ACCURACY + max(0.0, MIN_NLL_RISE - rise) / MIN_NLL_RISE
    return {"train_accuracy": train, "val_nll_final": nll[-1], "val_nll_min": min(nll), "val_nll_rise": rise,
            "passed": train >= MIN_TRAIN_ACCURACY and rise >= MIN_NLL_RISE, "shortfall": shortfall}


def build_record(method: str, setting: str, seed: int, run_dir: Path, wall_seconds: float,
                 choices: dict[str, float | None]) -> dict[str, Any]:
    """The committed summary of one finished run: its curve of the best individual, compute and provenance."""
    logs = read_run_logs(run_dir)
    provenance = read_provenance(RunLayout.at(run_dir))
    commits = {(entry.get("git_commit"), entry.get("git_dirty")) for entry in provenance}
    epochs_per_generation = logs.config["train"]["epochs_per_generation"]
    curve = [{"epochs": row["epochs"], "val": row["max"], "test": row["best_test"],
              **{key: row.get(f"best_{key}") for key in
                 ("val_nll", "test_nll", "test_ece", "train_accuracy", "memorised")}} for row in logs.logbook]
    return {
        "method": method, "setting": setting, "seed": seed, "choices": choices,
        "commits": sorted([commit, dirty] for commit, dirty in commits),
        "threads": sorted({entry.get("torch_threads_per_worker") for entry in provenance}, key=str),
        "torch": sorted({entry.get("torch") for entry in provenance}),
        "config": logs.config, "curve": curve,
        "evaluations": len(logs.lineage), "failed": sum(row.get("status") != "ok" for row in logs.lineage),
        "model_epochs": len(logs.lineage) * epochs_per_generation,
        "eval_seconds": round(sum(row.get("seconds") or 0.0 for row in logs.lineage), 1),
        "wall_seconds": round(wall_seconds, 1),
    }


def cli(*args: str) -> None:
    """``epbt-deap ARGS`` from the checkout this script lives in."""
    subprocess.run([sys.executable, "-m", "cli.main", *args], check=True, cwd=ROOT)


def record_path(records: Path, setting: str, method: str, seed: int) -> Path:
    return records / setting / f"{method}-seed{seed}.json"


def read_record(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def run_and_record(method: str, setting: str, seed: int, overrides: list[str], data_dir: Path, runs: Path,
                   records: Path, choices: dict[str, float | None]) -> dict[str, Any]:
    """Run (resume, or replay) one method unless recorded; returns its record."""
    path = record_path(records, setting, method, seed)
    recorded = read_record(path)
    if recorded is not None:
        return recorded
    run_dir = (runs / setting / f"{method}-seed{seed}").resolve()
    started = time.perf_counter()
    print(f"{setting} {method} seed {seed}: {' '.join(overrides)}", flush=True)
    if method == "replay":
        cli("replay", str(run_dir.with_name(f"epbt-seed{seed}")), "--run-dir", str(run_dir), "--overwrite")
    elif (run_dir / "state.pkl").exists():
        cli("resume", str(run_dir))
    else:
        cli("evolve", "--config", str(BASE_CONFIG), "--data-dir", str(data_dir.resolve()), "--seed", str(seed),
            "--run-dir", str(run_dir), "--overwrite", *[item for override in overrides for item in ("--set", override)])
    record = build_record(method, setting, seed, run_dir, time.perf_counter() - started, choices)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    last = record["curve"][-1]
    print(f"{setting} {method} seed {seed}: test {last['test']:.4f}, val {last['val']:.4f}, "
          f"train {last['train_accuracy']:.4f}, {record['wall_seconds']:.0f} s", flush=True)
    return record


def read_pilot(records: Path) -> Pilot:
    decision = read_record(records / "pilot" / "decision.json")
    if decision is None:
        sys.exit("error: no pilot decision yet: run the pilot first")
    return Pilot(decision["epochs"], decision["train_subset"])


def pilot(data_dir: Path, runs: Path, records: Path) -> None:
    """Climb the ladder until a rung passes the entry rule; record each rung and the decision."""
    verdicts = []
    for epochs, images in LADDER:
        rung = Pilot(epochs, images)
        name = f"E{epochs}_n{images}"
        record = run_and_record(name, "pilot", 0, [f"name=pilot_{name}", *single_model(rung, PILOT_LR, 1)],
                                data_dir, runs, records, {"lr": PILOT_LR})
        verdict = {"epochs": epochs, "train_subset": images, **pilot_verdict(record["curve"])}
        verdicts.append(verdict)
        print(f"pilot E={epochs} on {images}: {json.dumps(verdict)}", flush=True)
        if verdict["passed"]:
            break
    chosen = next((verdict for verdict in verdicts if verdict["passed"]),
                  min(verdicts, key=lambda verdict: verdict["shortfall"]))
    decision = {"epochs": chosen["epochs"], "train_subset": chosen["train_subset"], "passed": chosen["passed"],
                "rungs": verdicts}
    (records / "pilot" / "decision.json").write_text(json.dumps(decision, indent=1) + "\n")
    print(f"pilot decision: E={chosen['epochs']} on {chosen['train_subset']} images "
          f"({'passed' if chosen['passed'] else 'no rung passed: the closest'})", flush=True)


def sweep(setting: str, seeds: list[int], data_dir: Path, runs: Path, records: Path) -> None:
    """Every method of ``setting`` for each seed, tuned methods first."""
    chosen = read_pilot(records)
    for seed in seeds:
        def run(method: str, lr: float | None = None, smoothing: float | None = None) -> dict[str, Any]:
            overrides = [] if method == "replay" else method_overrides(method, setting, chosen, lr, smoothing)
            return run_and_record(method, setting, seed, overrides, data_dir, runs, records,
                                  {"lr": lr, "label_smoothing": smoothing})

        lr = tuned([run(method) for method in b1_methods()], lambda record: record["config"]["train"]["lr"])
        smoothing = tuned([run(method, lr) for method in ce_ls_methods()],
                          lambda record: record["config"]["train"]["label_smoothing"])
        for method in methods_of(setting)[len(LEARNING_RATES) + len(SMOOTHINGS):]:
            if method == "replay" and not record_path(records, setting, "epbt", seed).exists():
                print(f"{setting} replay seed {seed}: not run, EPBT has no record (the next sitting runs both)",
                      flush=True)
                continue
            try:
                run(method, lr, smoothing)
            except subprocess.CalledProcessError as error:  # no record: reported, and the next sitting retries
                print(f"{setting} {method} seed {seed}: FAILED (exit {error.returncode})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("pilot", "sweep"))
    parser.add_argument("--data-dir", type=Path, required=True, help="the CIFAR-10 JPEGs: train/ and test/ folders")
    parser.add_argument("--setting", choices=sorted(SETTINGS), help="sweep: which setting")
    parser.add_argument("--seeds", default="2000", help="sweep: comma-separated seeds")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "where_it_pays", help="run directories")
    parser.add_argument("--records", type=Path, default=RECORDS)
    args = parser.parse_args()
    if args.stage == "pilot":
        pilot(args.data_dir, args.runs, args.records)
    elif args.setting is None:
        parser.error("sweep needs --setting")
    else:
        sweep(args.setting, [int(seed) for seed in args.seeds.split(",")], args.data_dir, args.runs, args.records)


if __name__ == "__main__":
    main()
