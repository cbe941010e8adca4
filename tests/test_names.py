"""Each default and each name has one home: the config's train defaults, the torch-free catalog."""
from dataclasses import asdict

from epbt_deap.catalog import DATASET_SPECS, DATASETS, MODEL_NAMES
from epbt_deap.config import TrainConfig
from epbt_deap.data import LOADERS
from epbt_deap.execution.training import TrainSettings
from epbt_deap.models import model_builder
from tests.helpers import run_without_importing


def test_every_training_setting_comes_from_the_config_key_of_its_name():
    changed = {"model": "resnet20", "model_args": {"width": 2}, "batch_size": 64, "eval_batch_size": 100, "lr": 0.3, "momentum": 0.5,
               "weight_decay": 0.01, "lr_milestones": [3, 7], "lr_gamma": 0.5, "loss": "cross_entropy",
               "label_smoothing": 0.1, "gce_q": 0.4, "taylorglo_scale": 2.0, "precision": "bfloat16",
               "channels_last": True, "compile": True}
    settings = asdict(TrainSettings.from_config(TrainConfig(**changed)))
    assert set(settings) == set(changed)  # a new setting must be added here, with a value unlike its default
    assert settings == {**changed, "lr_milestones": (3, 7)}
    assert all(value != TrainConfig.default(key) for key, value in changed.items())


def test_every_catalogued_dataset_and_model_has_a_loader_or_builder():
    assert set(LOADERS) == set(DATASETS)
    assert {spec.default_model for spec in DATASET_SPECS.values()} <= set(MODEL_NAMES)
    assert all(callable(model_builder(name)) for name in MODEL_NAMES)


def test_the_command_line_offers_the_names_without_importing_torch():
    printed = run_without_importing("from click.testing import CliRunner; from cli.main import main; "
                                    "print(CliRunner().invoke(main, ['evolve', '--help']).output)", "torch")
    help_text = " ".join(printed.split())
    assert all(name in help_text for name in (*DATASETS, *MODEL_NAMES))
