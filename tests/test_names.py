"""Each default and each name has one home: the config's train defaults, the torch-free catalog."""
import subprocess
import sys
from dataclasses import asdict

from epbt_deap.catalog import DATASETS, DEFAULT_MODELS, MODEL_NAMES
from epbt_deap.config import TrainConfig
from epbt_deap.data import LOADERS
from epbt_deap.models import model_builder
from epbt_deap.training import TrainSettings


def test_train_settings_default_to_the_configs_defaults():
    assert asdict(TrainSettings(model="resnet8")) == asdict(TrainSettings.from_config(TrainConfig(model="resnet8")))


def test_every_catalogued_dataset_and_model_has_a_loader_or_builder():
    assert set(LOADERS) == set(DATASETS)
    assert set(DEFAULT_MODELS.values()) <= set(MODEL_NAMES)
    assert all(callable(model_builder(name)) for name in MODEL_NAMES)


def test_the_command_line_offers_the_names_without_importing_torch():
    check = ("import sys; from click.testing import CliRunner; from cli.main import main; "
             "out = CliRunner().invoke(main, ['evolve', '--help']).output; "
             "assert 'torch' not in sys.modules, 'torch was imported'; print(out)")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    help_text = " ".join(result.stdout.split())
    assert all(name in help_text for name in (*DATASETS, *MODEL_NAMES))
