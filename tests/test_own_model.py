"""A user's own network: by import path (from the current folder, in workers too), by register_model in
process, and every mistake one line before training (issue 24, item 1)."""
import json
import textwrap

import pytest
import torch
from click.testing import CliRunner

import epbt_deap
from cli.main import main
from epbt_deap.models import UnknownModelError, build_model
from epbt_deap.run import run
from tests.helpers import read_jsonl, tiny

MYNET = '''
from torch import nn


def build(num_classes, in_channels, width=8):
    return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))


def wrong_classes(num_classes, in_channels):
    return build(num_classes + 1, in_channels)


def not_a_module(num_classes, in_channels):
    return "a network"


def no_arguments():
    return build(4, 3)


class Nets:
    @staticmethod
    def narrow(num_classes, in_channels):
        return build(num_classes, in_channels, width=2)


def with_dropout(num_classes, in_channels):
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(in_channels, num_classes))


class WithFeatures(nn.Module):
    def __init__(self, num_classes, in_channels):
        super().__init__()
        self.net = build(num_classes, in_channels)

    def forward(self, x):
        return self.net(x), x


def frozen(num_classes, in_channels):
    return build(num_classes, in_channels).requires_grad_(False)


def parameter_free(num_classes, in_channels):
    return nn.Sequential(nn.AdaptiveAvgPool3d((1, 1, num_classes)), nn.Flatten())


def lazy(num_classes, in_channels):
    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))
'''


@pytest.fixture
def user_folder(tmp_path, monkeypatch):
    """A folder holding mynet.py, made the current folder, as a user's project would be."""
    (tmp_path / "mynet.py").write_text(textwrap.dedent(MYNET))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # undone after the test, like the import path the package adds
    yield tmp_path


def test_an_import_path_builds_the_users_factory_with_its_arguments(user_folder):
    model = build_model("mynet:build", num_classes=4, in_channels=3, model_args={"width": 5})
    assert model[0].out_channels == 5 and model(torch.zeros(2, 3, 8, 8)).shape == (2, 4)
    nested = build_model("mynet:Nets.narrow", num_classes=4, in_channels=3)  # module:Class.factory
    assert nested[0].out_channels == 2


@pytest.mark.slow
def test_a_run_with_the_users_model_trains_in_two_worker_processes(user_folder):
    config = tiny({"train.model": "mynet:build", "train.model_args": {"width": 6}, "evolution.generations": 2,
                   "resources.cpu_workers": 2})
    run(config, user_folder / "run")
    rows = read_jsonl(user_folder / "run" / "lineage.jsonl")
    assert len(rows) == 8 and all(row["status"] == "ok" for row in rows)
    state = torch.load(user_folder / "run" / "best.pt", weights_only=False)["model"]
    assert state["0.weight"].shape[0] == 6  # the user's network, with its argument, trained in the workers
    assert [entry["workers"] for entry in json.loads((user_folder / "run" / "provenance.json").read_text())] == [2]


def test_the_command_line_finds_a_module_in_the_current_folder(user_folder):
    result = CliRunner().invoke(main, ["evolve", "--config", "quickstart", "--set", "train.model=mynet:build",
                                       "--generations", "1", "--population", "2", "--elites", "1",
                                       "--run-dir", str(user_folder / "run")])
    assert result.exit_code == 0, result.output
    assert len(read_jsonl(user_folder / "run" / "lineage.jsonl")) == 2


@pytest.mark.parametrize("model, message", [
    ("nomodule:build", "(ModuleNotFoundError: No module named 'nomodule'); run from the folder that holds it, "
                       "or put that folder on PYTHONPATH"),
    ("mynet:missing", "module 'mynet' has no callable 'missing'"),
    ("mynet:Nets.wide", "module 'mynet' has no callable 'Nets.wide'"),
    (":build", "an import path is 'module:factory'"),
    ("mynet:no_arguments", "must be callable as factory(num_classes, in_channels, **model_args)"),
    ("mynet:not_a_module", "returned str, not a torch.nn.Module"),
    ("mynet:wrong_classes", "gives outputs of shape (2, 5) for 2 images; a classifier of 4 classes gives (2, 4)"),
    ("mynet:with_dropout --trainer vectorized", "has Dropout, whose random masks train.trainer vectorized cannot"),
    ("mynet:WithFeatures", "returns tuple for 2 images, not a tensor of logits"),
    ("mynet:frozen", "has no trainable parameters"),
    ("mynet:parameter_free", "has no trainable parameters"),
    ("mynet:lazy", "has uninitialised parameters of torch.nn.modules.lazy (LazyLinear)"),
])
def test_each_mistake_is_one_line_before_any_training(user_folder, model, message):
    """On a short run, so that a mistake the checks miss fails the test quickly."""
    model, *options = model.split()
    result = CliRunner().invoke(main, ["evolve", "--config", "quickstart", "--dataset", "fake", "--set",
                                       f"train.model={model}", *options, "--generations", "1", "--population", "2",
                                       "--elites", "1", "--run-dir", str(user_folder / "run")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert message in result.output
    assert not (user_folder / "run" / "lineage.jsonl").exists()


def test_a_registered_name_works_in_process_and_is_refused_with_workers(tmp_path):
    @epbt_deap.register_model("tiny_mlp_for_test")
    def tiny_mlp(num_classes, in_channels):
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(in_channels * 16 * 16, num_classes))

    config = tiny({"train.model": "tiny_mlp_for_test", "evolution.generations": 1})
    run(config, tmp_path / "run")
    rows = read_jsonl(tmp_path / "run" / "lineage.jsonl")
    assert len(rows) == config.evolution.population and all(row["status"] == "ok" for row in rows)
    state = torch.load(tmp_path / "run" / "best.pt", weights_only=True)["model"]
    assert list(state) == ["1.weight", "1.bias"]  # the registered network is the one that trained
    with_workers = tiny({"train.model": "tiny_mlp_for_test", "resources.cpu_workers": 2})
    with pytest.raises(UnknownModelError, match="registered in this Python session.*import path"):
        run(with_workers, tmp_path / "workers")
