"""Networks by name or by import path: the built-in ones, ``register_model``, or ``"module:factory"``.

A factory is any callable ``factory(num_classes, in_channels, **model_args) -> nn.Module``.
An import path resolves from the current folder too, as ``python -m`` would, and travels
to worker processes and Ray actors as a string; a name registered in a Python session with
:func:`register_model` exists in that session only.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from epbt_deap.catalog import MODEL_NAMES
from epbt_deap.errors import EpbtError, message_of, one_line
from epbt_deap.imports import import_callable
from epbt_deap.models.resnet import resnet8, resnet20, resnet32, resnet56
from epbt_deap.models.small import digits_cnn, mlp
from epbt_deap.models.wrn import wrn16_8

Factory = Callable[..., nn.Module]

_BUILT_IN: dict[str, Factory] = {
    "digits_cnn": digits_cnn,
    "mlp": mlp,
    "resnet8": resnet8,
    "resnet20": resnet20,
    "resnet32": resnet32,
    "resnet56": resnet56,
    "wrn16_8": wrn16_8,
}
_REGISTERED: dict[str, Factory] = {}  # by register_model, in this Python session


class UnknownModelError(EpbtError, ValueError):  # a ValueError too, as callers of build_model expect
    """A model name that is not registered, an import path that does not import, or a factory that
    does not build a network."""


def register_model(name: str) -> Callable[[Factory], Factory]:
    """A decorator that makes ``factory`` buildable as ``train.model: name`` in this Python session.

    Worker processes never see it: with workers, give the model as an import path instead.
    """
    if name in _BUILT_IN or ":" in name:
        raise UnknownModelError(f"register_model({name!r}): the name is built in or looks like an import path")

    def decorator(factory: Factory) -> Factory:
        _REGISTERED[name] = factory
        return factory

    return decorator


def is_session_only(name: str) -> bool:
    """Whether ``name`` was registered in this session (so worker processes cannot build it)."""
    return name in _REGISTERED


def model_builder(name: str) -> Factory:
    """The factory of a built-in or registered name, or of an import path; a one-line UnknownModelError else."""
    if ":" in name:
        return import_callable(name, "model", "factory", UnknownModelError)
    factory = _BUILT_IN.get(name) or _REGISTERED.get(name)
    if factory is None:
        registered = f", or registered: {', '.join(sorted(_REGISTERED))}" if _REGISTERED else ""
        raise UnknownModelError(f"unknown model {name!r}; choose one of: {', '.join(MODEL_NAMES)}{registered}, "
                                "or give an import path, module:factory")
    return factory


def signature_mismatch(factory: Factory, *args: Any, **kwargs: Any) -> str | None:
    """Why ``factory`` cannot take these arguments, or None (also where its signature cannot be read), so
    that a TypeError raised inside a factory is not blamed on how it is called."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        return message_of(error)
    return None


def build_model(name: str, num_classes: int, in_channels: int, model_args: Mapping[str, Any] = {}) -> nn.Module:
    """Build ``name`` for the given classes and input channels, with ``model_args`` as keyword arguments."""
    factory = model_builder(name)
    mismatch = signature_mismatch(factory, num_classes, in_channels, **model_args)
    if mismatch:
        raise UnknownModelError(f"model {name!r} must be callable as factory(num_classes, in_channels, "
                                f"**model_args): {mismatch}")
    try:
        model = factory(num_classes, in_channels, **model_args)
    except Exception as error:  # a factory of the user's, or model_args a built-in cannot take (hidden: [-5])
        raise UnknownModelError(f"model {name!r} fails to build with model_args {dict(model_args)}: "
                                f"{one_line(error)}") from None
    if not isinstance(model, nn.Module):
        raise UnknownModelError(f"model {name!r} returned {type(model).__name__}, not a torch.nn.Module")
    return model


__all__ = ["UnknownModelError", "build_model", "model_builder", "register_model"]
