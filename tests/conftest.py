import pytest

from epbt_deap.config import build_config

TINY = {
    "name": "tiny",
    "seed": 3,
    "data": {"dataset": "fake"},
    "train": {"model": "resnet8", "epochs_per_generation": 1, "batch_size": 32, "lr_milestones": [2]},
    "evolution": {"population": 4, "elites": 2, "generations": 3},
    "resources": {"device": "cpu", "cpu_workers": 0},
}


@pytest.fixture
def tiny_config():
    """A run that trains 4 tiny ResNets on fake data for 3 generations of 1 epoch."""
    return build_config(TINY)
