import pytest

from epbt_deap.config import build_config
from tests.helpers import TINY


@pytest.fixture
def tiny_config():
    """A run that trains 4 tiny ResNets on fake data for 3 generations of 1 epoch."""
    return build_config(TINY)
