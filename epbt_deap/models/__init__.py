"""Model registry: build networks by name."""
from __future__ import annotations

from typing import Callable

from torch import nn

from epbt_deap.catalog import MODEL_NAMES
from epbt_deap.errors import EpbtError
from epbt_deap.models.resnet import resnet8, resnet20, resnet32, resnet56
from epbt_deap.models.small import digits_cnn
from epbt_deap.models.wrn import wrn16_8

_REGISTRY: dict[str, Callable[[int, int], nn.Module]] = {
    "digits_cnn": digits_cnn,
    "resnet8": resnet8,
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet56": resnet56,
    "wrn16_8": wrn16_8,
}


class UnknownModelError(EpbtError, ValueError):  # a ValueError too, as callers of build_model expect
    """Raised for a model name that is not in the registry."""


def model_builder(name: str) -> Callable[[int, int], nn.Module]:
    """The builder registered as ``name``; a one-line UnknownModelError lists the others."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}"
        ) from None


def build_model(name: str, num_classes: int, in_channels: int) -> nn.Module:
    """Build the registered model ``name`` for the given classes and input channels."""
    return model_builder(name)(num_classes, in_channels)


__all__ = ["UnknownModelError", "build_model", "model_builder"]
