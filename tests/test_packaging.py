"""Packaged configs by name, and the wheel working without the repository."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import epbt_deap
from cli.main import main
from epbt_deap.config import ConfigError, load_config, resolve_config

ROOT = Path(__file__).parent.parent


def test_a_bare_name_is_the_packaged_config():
    assert resolve_config(Path("quickstart")).read_text() == (ROOT / "configs" / "quickstart.yaml").read_text()
    assert load_config(Path("quickstart")) == load_config(ROOT / "configs" / "quickstart.yaml")


def test_paths_are_left_alone():
    assert resolve_config(Path("quickstart.yaml")) == Path("quickstart.yaml")
    assert resolve_config(Path("configs/quickstart")) == Path("configs/quickstart")


def test_an_unknown_name_is_one_line_listing_the_names():
    with pytest.raises(ConfigError, match="quickstart, svhn_resnet32_baseline1"):
        resolve_config(Path("quickstrat"))
    result = CliRunner().invoke(main, ["evolve", "--config", "quickstrat"])
    assert result.exit_code == 2
    assert len(result.output.splitlines()) == 1 and "'quickstrat'" in result.output


def test_configs_lists_names_with_the_first_sentence_of_their_comment():
    result = CliRunner().invoke(main, ["configs"])
    assert result.exit_code == 0, result.output
    rows = dict(line.split(None, 1) for line in result.output.splitlines())
    assert rows.keys() == {path.stem for path in (ROOT / "configs").glob("*.yaml")}
    assert rows["quickstart"].startswith("Quickstart: EPBT on scikit-learn's bundled digits")
    # a sentence wrapped over two comment lines is shown whole, and only the first sentence
    assert rows["cifar10_resnet32_epbt"].rstrip() == (
        "The paper's CIFAR-10 experiment (Liang, Gonzalez & Miikkulainen, Section 4.1): EPBT with "
        "TaylorGLO on ResNet-32.")


def _build_and_install(tmp_path: Path) -> Path:
    """The project's wheel, installed with ``--target`` into a fresh folder, which is returned."""
    # Built from a copy of what the build reads: setuptools leaves build/ behind in the
    # source tree and ships stale files it finds there.
    source, wheels, site = tmp_path / "source", tmp_path / "wheels", tmp_path / "site"
    source.mkdir()
    for name in ("setup.py", "setup.cfg", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source)
    for name in ("epbt_deap", "cli", "configs"):
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(source)], check=True)
    (wheel,) = wheels.glob("epbt_deap-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    return site


@pytest.mark.slow
def test_the_wheel_runs_the_quickstart_without_the_repository(tmp_path):
    # The only torch may be the one in this test environment, which also holds an editable
    # install of the repository; a venv of its own would need torch downloaded again. So the
    # wheel goes into a --target folder that PYTHONPATH puts ahead of everything, the commands
    # run from an empty folder, and the test checks the code really came from that folder.
    site = _build_and_install(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    where = subprocess.run(
        [sys.executable, "-c", "import epbt_deap_cli.main as m, epbt_deap.config as c, epbt_deap.report.writer as r; "
                               "print(m.__file__); print(c.__file__); print(r.__file__); print(c.configs_dir())"],
        cwd=empty, env=env, capture_output=True, text=True, check=True)
    assert all(Path(line).is_relative_to(site) for line in where.stdout.splitlines())
    assert not (site / "cli").exists() and (site / "epbt_deap" / "configs" / "quickstart.yaml").is_file()
    (dist_info,) = site.glob("epbt_deap-*.dist-info")
    assert dist_info.name == f"epbt_deap-{epbt_deap.__version__}.dist-info"  # one version: the package's
    assert "MIT License" in next(dist_info.rglob("LICENSE")).read_text()
    script = site / "bin" / "epbt-deap"
    listed = subprocess.run([sys.executable, str(script), "configs"], cwd=empty, env=env,
                            capture_output=True, text=True, check=True)
    assert "quickstart" in listed.stdout
    for name, body in doc_files(ROOT / "docs" / "your-own-model-and-data.md").items():
        (empty / name).write_text(body)
    subprocess.run([sys.executable, "make_wine.py"], cwd=empty, env=env, check=True)
    epbt = [sys.executable, str(script)]
    outputs = run_together(empty, env, {  # independent, one thread each: together they use every core
        "quickstart": [*epbt, "evolve", "--config", "quickstart", "--generations", "2", "--population", "4",
                       "--elites", "2", "--run-dir", "RUN"],
        # docs/your-own-model-and-data.md's files and commands, as a user runs them in their own folder
        "own model and data": [*epbt, "evolve", "--config", "quickstart", "--set", "train.model=mynet:build",
                               "--set", "data.dataset=mydata:load", "--generations", "2", "--population", "4",
                               "--elites", "2", "--run-dir", "MINE"],
        "notebook": [sys.executable, "notebook.py"],
        "tabular": [*epbt, "evolve", "--config", "quickstart", "--set", "data.dataset=arrays", "--set",
                    "data.dir=wine.npz", "--set", "train.model=mymlp:build", "--set", "data.val_size=20",
                    "--generations", "2", "--run-dir", "WINE"],
    })
    assert len((empty / "RUN" / "logbook.jsonl").read_text().splitlines()) == 2
    assert "mynet:build" in (empty / "MINE" / "config.yaml").read_text()
    assert "test accuracy 0." in outputs["notebook"]
    assert "mymlp:build" in (empty / "WINE" / "config.yaml").read_text()


def run_together(folder: Path, env: dict[str, str], commands: dict[str, list[str]]) -> dict[str, str]:
    """Run ``commands`` at once in ``folder``; each must exit 0. Returns what each printed."""
    started = {name: subprocess.Popen(command, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True) for name, command in commands.items()}
    outputs = {}
    for name, process in started.items():
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, f"{name}: {stderr[-2000:]}"
        outputs[name] = stdout
    return outputs


def doc_files(page: Path) -> dict[str, str]:
    """The page's Python examples that start with a ``# name.py`` line, by file name."""
    blocks = re.findall(r"```python\n# (\w+\.py)\n(.*?)```", page.read_text(), flags=re.S)
    return {name: body for name, body in blocks}
