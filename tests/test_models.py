"""Tests for the model registry and architectures."""
from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import nn

from epbt_deap.catalog import MODEL_NAMES
from epbt_deap.models import UnknownModelError, build_model

SHAPES = {"cifar": (3, 32, 32), "digits": (1, 8, 8)}


def _outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x)


def test_registry_names_are_sorted() -> None:
    assert MODEL_NAMES == tuple(sorted(MODEL_NAMES))
    assert {"digits_cnn", "resnet8", "resnet20", "resnet32", "resnet56", "wrn16_8"} <= set(MODEL_NAMES)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_output_shape(name: str, shape: tuple[int, int, int]) -> None:
    model = build_model(name, num_classes=7, in_channels=shape[0])
    assert model(torch.randn(2, *shape)).shape == (2, 7)


def test_resnet32_parameter_count() -> None:
    model = build_model("resnet32", num_classes=10, in_channels=3)
    assert 450_000 <= sum(p.numel() for p in model.parameters()) <= 480_000


def test_wrn16_8_structure() -> None:
    model = build_model("wrn16_8", num_classes=10, in_channels=3)
    assert 10_500_000 <= sum(p.numel() for p in model.parameters()) <= 11_500_000
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    shortcuts = [m for m in convs if m.kernel_size == (1, 1)]
    assert (len(convs), len(shortcuts)) == (13 + 3, 3)  # stem + 3 stages x 2 blocks x 2 convs, 1x1 shortcuts
    assert [(m.out_channels, m.stride) for m in shortcuts] == [(128, (1, 1)), (256, (2, 2)), (512, (2, 2))]
    assert not any(isinstance(m, nn.Dropout) and m.p for m in model.modules())


@pytest.mark.parametrize(("name", "n"), [("resnet20", 3), ("resnet32", 5), ("resnet56", 9)])
def test_resnet_depth(name: str, n: int) -> None:
    model = build_model(name, num_classes=10, in_channels=3)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert (len(convs), len(linears)) == (6 * n + 1, 1)


def test_unknown_model_names_known_ones() -> None:
    with pytest.raises(UnknownModelError) as info:
        build_model("resnet33", num_classes=10, in_channels=3)
    message = str(info.value)
    assert "resnet33" in message and "\n" not in message
    assert all(name in message for name in MODEL_NAMES)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_initialisation_is_seed_deterministic(name: str) -> None:
    states = []
    for _ in range(2):
        torch.manual_seed(0)
        states.append(build_model(name, num_classes=10, in_channels=3).state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_batchnorm_starts_as_identity() -> None:
    model = build_model("resnet8", num_classes=10, in_channels=3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 1) and torch.all(m.bias == 0)


@pytest.mark.parametrize("name", ["digits_cnn", "resnet8"])
def test_pickle_deepcopy_and_state_dict_round_trip(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=10, in_channels=1)
    x = torch.randn(2, 1, 8, 8)
    expected = _outputs(model, x)
    torch.manual_seed(1)
    fresh = build_model(name, num_classes=10, in_channels=1)
    fresh.load_state_dict(model.state_dict())
    for clone in (pickle.loads(pickle.dumps(model)), copy.deepcopy(model), fresh):
        assert torch.equal(_outputs(clone, x), expected)
