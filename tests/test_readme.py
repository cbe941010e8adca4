"""The README and docs/: the Python examples run as written and every relative link resolves."""
import re
from pathlib import Path

import pytest
import yaml

import epbt_deap
from epbt_deap.config import build_config
from epbt_deap.errors import RunDirError
from epbt_deap.run import run
from epbt_deap.rundir.logs import best_ancestry
from epbt_deap.schedule import LossSchedule
from tests.helpers import OLD_ELITE, read_jsonl, tiny

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "ablations-and-python.md").read_text(), flags=re.S)
README_BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def block_with(name):
    """The Python guide's example that uses ``name``."""
    return next(block for block in BLOCKS if name in block)


def test_the_whole_run_example_runs_as_written_on_the_tiny_config(tmp_path, monkeypatch):
    """The packaged quickstart swapped for the tiny config (a dict, which the example says evolve takes)."""
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme", "TINY": yaml.safe_load(tiny().to_yaml())}
    exec(block_with("epbt_deap.evolve(").replace('"quickstart"', "TINY"), namespace)
    run, run_dir = namespace["run"], tmp_path / "runs" / "notebook"  # load_run's, after evolve and resume
    assert run.run_dir == run_dir and [row["gen"] for row in run.logbook] == [0, 1, 2, 3]
    assert run.config.train.lr_milestones == [10, 15] and max(row["generation"] for row in run.lineage) == 3
    assert run.best_uid == best_ancestry(read_jsonl(run_dir / "lineage.jsonl"))[-1]["uid"]
    assert sorted(run.best_genes) == [f"theta_{i}" for i in range(8)] and 0 <= run.best_test <= 1
    (run_dir / "lineage.jsonl").unlink()  # a run of an old version, or a damaged one
    with pytest.raises(RunDirError, match="no individual in its lineage"):
        epbt_deap.load_run(run_dir).best_uid


def test_the_python_guide_has_python_examples():
    assert len(BLOCKS) >= 2


def test_toolbox_example_finds_the_optimum(capsys):
    namespace = {"__name__": "readme"}
    exec(block_with("make_toolbox"), namespace)
    best = namespace["space"].decode(namespace["hall_of_fame"][0])
    assert abs(best["lr"] - 0.01) < 0.005 and abs(best["momentum"] - 0.9) < 0.05
    assert "lr" in capsys.readouterr().out


def test_loss_example_gives_a_scalar():
    namespace = {}
    exec(block_with("taylorglo_loss"), namespace)
    assert namespace["loss"].shape == ()


def test_the_readme_training_loop_trains_on_an_exported_schedule(tmp_path, monkeypatch, capsys):
    run(build_config(OLD_ELITE), tmp_path / "run")
    LossSchedule.from_run(tmp_path / "run").save(tmp_path / "schedule.json")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme"}
    exec(README_BLOCKS[0], namespace)
    schedule = namespace["schedule"]
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == schedule.epochs >= 2 and printed[0].startswith("epoch 0: lr")
    assert namespace["optimizer"].param_groups[0]["lr"] == schedule.lr_at(schedule.epochs - 1)
    assert namespace["loss"].isfinite()


def test_relative_links_lead_to_files():
    for page in PAGES:
        for target in re.findall(r"\]\((?!https?:)([^)#]+)\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} links to missing {target}"
    assert len(PAGES) > 1
