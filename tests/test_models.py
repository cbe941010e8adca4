"""Tests for the model registry and architectures."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from epbt_deap.catalog import MODEL_NAMES
from epbt_deap.models import UnknownModelError, build_model

SHAPES = {"cifar": (3, 32, 32), "digits": (1, 8, 8)}
DEEP = {"resnet20", "resnet32", "resnet56"}  # resnet8 with more blocks: slow forward passes


def _outputs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model(x)


def test_registry_holds_the_documented_models() -> None:
    assert set(MODEL_NAMES) == {"digits_cnn", "mlp", "resnet8", "resnet20", "resnet32", "resnet56", "wrn16_8"}


IMAGE_MODELS = [name for name in MODEL_NAMES if name != "mlp"]  # the mlp takes features, N x D (x 1 x 1)


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name in DEEP else name
                                  for name in IMAGE_MODELS])
def test_output_shape(name: str, shape: tuple[int, int, int]) -> None:
    model = build_model(name, num_classes=7, in_channels=shape[0])
    assert model(torch.randn(2, *shape)).shape == (2, 7)


def test_the_mlp_takes_features_with_its_hidden_sizes() -> None:
    model = build_model("mlp", num_classes=3, in_channels=13, model_args={"hidden": [32, 16]})
    assert model(torch.randn(5, 13, 1, 1)).shape == (5, 3) and model(torch.randn(5, 13)).shape == (5, 3)
    assert [layer.out_features for layer in model if isinstance(layer, nn.Linear)] == [32, 16, 3]


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


def test_model_args_a_model_cannot_build_with_are_one_line() -> None:
    with pytest.raises(UnknownModelError, match=r"^model 'mlp' fails to build with model_args \{'hidden': \[-5\]\}: "
                                                r"RuntimeError: [^\n]*negative dimension -5\b[^\n]*$"):
        build_model("mlp", num_classes=3, in_channels=13, model_args={"hidden": [-5]})


def test_a_type_error_inside_a_factory_is_not_blamed_on_how_it_is_called() -> None:
    with pytest.raises(UnknownModelError, match=r"^model 'mlp' fails to build with model_args \{'hidden': 5\}: "
                                                r"TypeError: "):
        build_model("mlp", num_classes=3, in_channels=13, model_args={"hidden": 5})
    with pytest.raises(UnknownModelError, match=r"must be callable as factory\(num_classes, in_channels, \*\*model_args\): "
                                                r"got an unexpected keyword argument 'width'"):
        build_model("mlp", num_classes=3, in_channels=13, model_args={"width": 5})


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_he_initialisation(name: str) -> None:
    """Convs: He normal for fan_out; linears: He for fan_in, zero bias (PyTorch's defaults are smaller, bias not 0)."""
    torch.manual_seed(0)
    model = build_model(name, num_classes=10, in_channels=3)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.weight.numel() // m.in_channels
            assert m.weight.std().item() == pytest.approx(math.sqrt(2 / fan_out), rel=0.2)
        elif isinstance(m, nn.Linear):
            assert m.weight.std().item() == pytest.approx(math.sqrt(2 / m.in_features), rel=0.2)
            assert torch.all(m.bias == 0)


@pytest.mark.parametrize("name", ["digits_cnn", "resnet8"])
def test_the_state_dict_holds_all_of_a_models_state(name: str) -> None:
    torch.manual_seed(0)
    model = build_model(name, num_classes=10, in_channels=1)
    x = torch.randn(4, 1, 8, 8)
    model.train()(x)  # moves the BatchNorm running statistics away from their defaults
    torch.manual_seed(1)
    fresh = build_model(name, num_classes=10, in_channels=1)
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(_outputs(fresh, x), _outputs(model, x))
