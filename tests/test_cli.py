import signal

import pytest
from click.testing import CliRunner
from PIL import Image

from cli.main import execute, main
from epbt_deap.config import load_config
from epbt_deap.errors import EpbtError
from tests.helpers import read_jsonl, tiny_yaml


@pytest.fixture
def evolve(tmp_path):
    """``epbt-deap evolve`` of the tiny run (2 generations) with more options, into ``tmp_path/run``."""
    config = tiny_yaml(tmp_path / "tiny.yaml", {"evolution.generations": 2})

    def invoke(*args):
        return CliRunner().invoke(main, ["evolve", "--config", str(config), *args, "--run-dir", str(tmp_path / "run")])
    return invoke


def test_evolve_runs_and_prints_one_summary_line_per_generation(tmp_path, evolve):
    result = evolve("--population", "3", "--elites", "1", "--seed", "1", "--set", "train.batch_size=16",
                    "--epochs-per-generation", "2", "--cpu-workers", "0", "--workers-per-gpu", "3")
    assert result.exit_code == 0, result.output
    config = load_config(tmp_path / "run" / "config.yaml")  # the shorthands and --set outrank the file
    assert (config.evolution.population, config.evolution.elites, config.seed, config.train.batch_size) == (3, 1, 1, 16)
    assert (config.train.epochs_per_generation, config.resources.cpu_workers, config.resources.workers_per_gpu) == \
        (2, 0, 3)
    lines = [line for line in result.output.splitlines() if line.startswith("gen ")]
    assert len(lines) == 2 and "best" in lines[0] and "test of best" in lines[0]
    assert len((tmp_path / "run" / "logbook.jsonl").read_text().splitlines()) == 2


@pytest.mark.slow
def test_the_vectorised_trainer_from_the_command_line(tmp_path, evolve):
    result = evolve("--trainer", "vectorized")
    assert result.exit_code == 0, result.output
    assert "trainer: vectorized" in (tmp_path / "run" / "config.yaml").read_text()
    lineage = read_jsonl(tmp_path / "run" / "lineage.jsonl")
    assert len(lineage) == 4 + 4 and all(row["status"] == "ok" for row in lineage)  # elites retrain too


@pytest.mark.slow
def test_swapped_operators_from_a_config_file(tmp_path):
    config = tiny_yaml(tmp_path / "ablation.yaml", {"evolution.select": {"name": "selBest"},
                                                     "evolution.mate": {"name": "cxBlend", "alpha": 0.3}})
    result = CliRunner().invoke(main, ["evolve", "--config", str(config), "--run-dir", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    ran = load_config(tmp_path / "run" / "config.yaml").evolution
    assert ran.select.spec()["name"] == "selBest" and ran.mate.spec() == {"name": "cxBlend", "alpha": 0.3}
    generations = {row["generation"] for row in read_jsonl(tmp_path / "run" / "lineage.jsonl")}
    assert generations == set(range(ran.generations))  # it evolved to the end


@pytest.mark.parametrize("args, message", [
    (["--set", "evolution.populaton=3"], "evolution.populaton: unknown key; did you mean 'population'?"),
    (["--elites", "4"], "elites (4) must be smaller than population (4)"),
    (["--set", "evolution.select={name: selTournamnet}"], "unknown select operator 'selTournamnet'"),
    (["--model", "resnet33"], "unknown model 'resnet33'"),
    (["--set", "oops"], "expected KEY=VALUE"),
    (["--config", "/nonexistent.yaml"], "cannot read config /nonexistent.yaml"),
    (["--device", "cuda:x"], "not a torch device"),
    (["--dataset", "imagefolder", "--data-dir", "/nonexistent"], "image folder '/nonexistent' not found"),
    (["--dataset", "cifar11"], "unknown dataset 'cifar11': choose one of"),
    (["--dataset", "nodata:load"], "cannot import module 'nodata'"),  # an import path is taken, as --set takes it
    (["--set", "data.val_size=100000"], "val_size must be between 0 (no validation set) and"),
    (["--set", "data.val_size=0"], "data.val_size: 0 leaves no validation set"),
    (["--backend", "slurm"], "Invalid value for '--backend'"),
    (["--trainer", "batched"], "Invalid value for '--trainer'"),
    (["--set", "replay_of=runs/x"], "replay_of: set by epbt-deap replay only, not in a new run's config"),
    (["--seed", "-1"], "seed: Input should be greater than or equal to 0 (got -1)"),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, evolve, args, message):
    result = evolve(*args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_an_image_folder_of_one_class_is_one_line(tmp_path, evolve):
    for split in ("train", "test"):
        (tmp_path / "one" / split / "cat").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(tmp_path / "one" / split / "cat" / "0.png")
    result = evolve("--dataset", "imagefolder", "--data-dir", str(tmp_path / "one"))
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "1 class; classification needs at least 2" in result.output and not (tmp_path / "run").exists()


@pytest.mark.parametrize("command", ["resume", "replay"])
def test_a_folder_without_a_run_is_a_one_line_error(tmp_path, command):
    result = CliRunner().invoke(main, [command, str(tmp_path)])
    assert result.exit_code == 2
    assert result.output == f"error: {tmp_path} holds no epbt-deap run (no config.yaml)\n"


def test_replay_of_the_root_folder_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["replay", "/"])
    assert result.exit_code == 2 and result.output == "error: / is not a run directory\n"


@pytest.mark.slow
def test_replay_of_dot_writes_beside_the_run_it_stands_in(tmp_path, evolve, monkeypatch):
    assert evolve().exit_code == 0
    monkeypatch.chdir(tmp_path / "run")
    result = CliRunner().invoke(main, ["replay", "."])
    assert result.exit_code == 0, result.output
    assert [row["gen"] for row in read_jsonl(tmp_path / "run_replay" / "logbook.jsonl")] == [0, 1]


@pytest.mark.slow
def test_a_used_run_directory_is_kept_unless_overwrite(tmp_path, evolve):
    run_dir = tmp_path / "run"
    assert evolve().exit_code == 0
    before = (run_dir / "logbook.jsonl").read_text()
    refused = evolve()
    assert refused.exit_code == 2 and "--overwrite" in refused.output
    assert (run_dir / "logbook.jsonl").read_text() == before
    again = evolve("--overwrite", "--seed", "2")
    assert again.exit_code == 0
    assert [row["gen"] for row in read_jsonl(run_dir / "logbook.jsonl")] == [0, 1]
    assert load_config(run_dir / "config.yaml").seed == 2 and (run_dir / "logbook.jsonl").read_text() != before


class Summary:
    run_dir, best_uid, best_fitness, best_test_accuracy = "run", "g000-0", 0.5, None


def raise_error(observer):
    raise EpbtError("bad input")


@pytest.mark.parametrize("action, error", [(lambda observer: Summary(), None), (raise_error, EpbtError)])
def test_execute_gives_the_sigterm_handler_back(tmp_path, action, error):
    def own_handler(signum, frame):
        pass

    previous = signal.signal(signal.SIGTERM, own_handler)
    try:
        if error is None:
            execute(action, tmp_path)
        else:
            with pytest.raises(error):  # the command group turns it into one line
                execute(action, tmp_path)
        assert signal.getsignal(signal.SIGTERM) is own_handler
    finally:
        signal.signal(signal.SIGTERM, previous)
