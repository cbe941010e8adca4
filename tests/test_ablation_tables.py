"""The ablation tables (experiments/cpu_scale/tables.py): the tuned Baseline 1 and the verdict."""
from __future__ import annotations

import json
from typing import Any

import pytest

from experiments.cpu_scale import tables as cpu_scale_tables


@pytest.fixture(scope="module")
def tables():
    return cpu_scale_tables


def record(method: str, seed: int, test: float, val: float) -> dict[str, Any]:
    return {"method": method, "seed": seed, "final_test": test, "final_val": val, "gen0_learners": 1,
            "gen0_population": 1, "model_epochs": 12, "eval_seconds": 10.0, "wall_seconds": 11.0, "failed": 0,
            "curve": [{"epochs": 12, "best_test": test}]}


def test_tuned_baseline_picks_by_validation_and_pays_for_every_learning_rate(tables):
    runs = [record("b1_lr0.1", 1, test=0.60, val=0.50), record("b1_lr0.2", 1, test=0.40, val=0.55)]
    best = tables.tuned(runs)
    assert (best["final_test"], best["model_epochs"], best["wall_seconds"]) == (0.40, 24, 22.0)


def test_the_verdict_compares_the_same_seeds_only(tables):
    baseline = [record("b1_tuned", 1, 0.50, 0.5), record("b1_tuned", 2, 0.50, 0.5), record("b1_tuned", 3, 0.10, 0.1)]
    one_seed = tables.summarize("m", [record("m", 1, 0.52, 0.5)], baseline)
    assert one_seed["vs_b1"] == "+2.00"  # seed 3's poor baseline is not in the comparison
    wins = tables.summarize("m", [record("m", s, t, 0.5) for s, t in ((1, 0.60), (2, 0.62))], baseline)
    assert wins["vs_b1"] == "+11.00 (wins)"
    tie = tables.summarize("m", [record("m", s, t, 0.5) for s, t in ((1, 0.40), (2, 0.62))], baseline)
    assert tie["vs_b1"].endswith("(tie)")


def test_a_seed_is_tuned_only_once_every_learning_rate_has_run(tables, tmp_path):
    for method, seed, val in [("b1_lr0.1", 1, 0.5), ("b1_lr0.2", 1, 0.6), ("b1_lr0.1", 2, 0.7)]:
        (tmp_path / f"{method}-seed{seed}.json").write_text(json.dumps(record(method, seed, 0.5, val)))
    groups = tables.load_records(tmp_path)
    assert [(r["seed"], r["final_val"], r["model_epochs"]) for r in groups["b1_tuned"]] == [(1, 0.6, 24)]


def test_seeds_pick_the_records_counted_tuned_baseline_included(tables, tmp_path):
    for method, seed in [("b1_lr0.1", 1), ("b1_lr0.1", 2), ("m", 1), ("m", 2), ("m", 3)]:
        (tmp_path / f"{method}-seed{seed}.json").write_text(json.dumps(record(method, seed, 0.5, 0.5)))
    groups = tables.load_records(tmp_path, seeds={1, 3})
    assert {method: [r["seed"] for r in records] for method, records in groups.items()} == {
        "b1_lr0.1": [1], "b1_tuned": [1], "m": [1, 3]}
