"""The README and docs/: the Python examples run as written and every relative link resolves."""
import re
from pathlib import Path

from epbt_deap.config import build_config
from epbt_deap.run import run
from epbt_deap.schedule import LossSchedule
from tests.helpers import OLD_ELITE

ROOT = Path(__file__).parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "ablations-and-python.md").read_text(), flags=re.S)
README_BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)


def block_with(name):
    """The Python guide's example that uses ``name`` (the whole-run example is tests/test_api.py's)."""
    return next(block for block in BLOCKS if name in block)


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
