"""The ablation runner (experiments/cpu_scale/runner.py): each method resolves to the config its records ran with."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from epbt_deap.config import load_config, parse_assignment
from experiments.cpu_scale import runner as cpu_scale_runner

ROOT = Path(__file__).resolve().parent.parent
# A replay's config comes from its source run, not from the runner's methods.
RECORDS = sorted(path for path in (ROOT / "docs" / "results" / "records").glob("*/*.json")
                 if not path.name.startswith("replay_"))


@pytest.fixture(scope="module")
def runner():
    return cpu_scale_runner


def on_keys_of(tree: Any, like: Any) -> Any:
    """``tree`` restricted to the keys ``like`` has: records of older commits lack keys added since."""
    if isinstance(tree, dict) and isinstance(like, dict):
        return {key: on_keys_of(tree[key], like[key]) for key in like if key in tree}
    return tree


def test_the_committed_records_are_there():
    assert len(RECORDS) >= 50 and {json.loads(path.read_text())['stage'] for path in RECORDS} == {
        "screen", "confirm"}


@pytest.mark.parametrize("path", RECORDS, ids=lambda path: f"{path.parent.name}/{path.stem}")
def test_each_method_resolves_to_the_config_its_record_ran_with(runner, path):
    """Whatever the defaults become, rerunning a method runs what its records ran."""
    record = json.loads(path.read_text())
    base, assignments = runner.METHODS[record["method"]]
    overrides = dict(parse_assignment(text) for text in
                     [f"name={record['method']}", *assignments, *runner.STAGES[record["stage"]]])
    overrides.update({"seed": record["seed"], "data.dir": record["config"]["data"]["dir"]})
    resolved = load_config(ROOT / "configs" / f"{base}.yaml", overrides).model_dump(mode="json")
    assert on_keys_of(resolved, record["config"]) == record["config"]


def test_the_learnability_check_finds_its_config():
    from experiments.cpu_scale import learnability_check

    assert load_config(learnability_check.CONFIG).train.model == "resnet8"
