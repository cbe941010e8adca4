"""``epbt-deap resume RUN_DIR --generations N``: a finished run, extended, is the run that was that long all along."""
import shutil

import pytest
from click.testing import CliRunner

from cli.main import main
from epbt_deap.config import ConfigError, load_config
from epbt_deap.run import resume, run
from epbt_deap.rundir.extension import extended
from tests.helpers import read_jsonl, read_logbook, run_files, tiny

SHORT = {"evolution.population": 2, "evolution.elites": 1, "evolution.generations": 2}  # lr milestone at epoch 2
LONG = {**SHORT, "evolution.generations": 4}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A run of 2 generations, finished."""
    run_dir = tmp_path_factory.mktemp("short") / "run"
    run(tiny(SHORT), run_dir)
    return run_dir


@pytest.mark.slow
def test_extending_g_to_2g_generations_gives_the_logbook_of_an_uninterrupted_2g_run(finished, tmp_path):
    run_dir = tmp_path / "extended"
    shutil.copytree(finished, run_dir)
    resume(run_dir, generations=4, lr_milestones=[2])
    run(tiny(LONG), tmp_path / "long")
    assert [row["gen"] for row in read_jsonl(run_dir / "logbook.jsonl")] == [0, 1, 2, 3]
    assert read_logbook(run_dir / "logbook.jsonl") == read_logbook(tmp_path / "long" / "logbook.jsonl")
    lineage, reference = read_jsonl(run_dir / "lineage.jsonl"), read_jsonl(tmp_path / "long" / "lineage.jsonl")
    assert [(row["uid"], row["fitness"]) for row in lineage] == [(row["uid"], row["fitness"]) for row in reference]

    config = load_config(run_dir / "config.yaml")
    assert config.evolution.generations == 4 and config.train.lr_milestones == [2]
    (extension,) = config.extensions
    assert (extension.after_generation, extension.generations_before, extension.generations) == (1, 2, 4)
    assert extension.lr_milestones_before == extension.lr_milestones == [2]
    assert config.model_copy(update={"extensions": []}) == tiny(LONG)


def resume_cli(run_dir, *args):
    return CliRunner().invoke(main, ["resume", str(run_dir), *args])


@pytest.mark.parametrize("args, message", [
    (["--generations", "4"], "--generations 4: the learning-rate milestones [2] are epochs on the run's clock, set "
                             "for 2 generations x 1 epochs; give the ones for 4 epochs with --set "
                             "train.lr_milestones=[...] (the same list keeps them)"),
    (["--generations", "1"], "--generations 1: the run is set to 2 generations already"),
    (["--generations", "4", "--set", "train.lr_milestones=[1, 3]"],
     "train.lr_milestones: the run has trained 2 epochs with milestones [] before epoch 2; those must stay (got [1])"),
    (["--generations", "4", "--set", "train.lr_milestones=soon"], "train.lr_milestones: Input should be a valid list"),
    (["--set", "train.lr=0.5"], "--set train.lr: resume can change only train.lr_milestones"),
])
def test_an_extension_that_would_go_wrong_is_one_line_and_changes_nothing(finished, args, message):
    before = run_files(finished)
    result = resume_cli(finished, *args)
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert run_files(finished) == before


def test_a_resume_that_changes_nothing_records_no_extension():
    config = tiny(SHORT)
    assert extended(config, 2) is config
    assert extended(config, 2, generations=2, lr_milestones=[2]) is config
    with pytest.raises(ConfigError, match="the run has finished its 2 generations, so new milestones would change "
                                          "nothing it trains"):
        extended(config, 2, generations=2, lr_milestones=[2, 3])  # it would be recorded as an extension
    assert extended(config, 1, generations=2, lr_milestones=[2, 3]).extensions[0].generations == 2  # unfinished


@pytest.mark.parametrize("generations", ["many", 2.5, float("nan")])
def test_a_total_that_is_no_whole_number_is_a_config_error(generations):
    with pytest.raises(ConfigError, match="evolution.generations"):
        extended(tiny(SHORT), 2, generations=generations, lr_milestones=[2])


def test_milestones_ahead_of_the_clock_may_move():
    longer = extended(tiny(SHORT), 2, generations=6, lr_milestones=[4, 5])
    assert longer.train.lr_milestones == [4, 5] and longer.extensions[0].lr_milestones_before == [2]
    passed = tiny({**SHORT, "train.lr_milestones": [1]})  # epoch 1 trained at the decayed rate
    with pytest.raises(ConfigError, match=r"milestones \[1\] before epoch 2; those must stay \(got \[\]\)"):
        extended(passed, 2, generations=6, lr_milestones=[4])


def test_the_command_line_extends_a_copy_of_the_run(finished, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    result = resume_cli(run_dir, "--generations", "3", "--set", "train.lr_milestones=[2]")
    assert result.exit_code == 0, result.output
    assert [row["gen"] for row in read_jsonl(run_dir / "logbook.jsonl")] == [0, 1, 2]
    assert "generations: 3" in (run_dir / "config.yaml").read_text()
