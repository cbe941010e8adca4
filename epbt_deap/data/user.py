"""A user's own data: a loader by import path (``data.dataset: module:loader``), or arrays in an
``.npz`` file (``data.dataset: arrays``, ``data.dir`` the file).

A loader returns ``(x_train, y_train, x_test, y_test)`` or ``(..., class_names)``, or a mapping
with those keys (``classes`` for the names). Images are uint8, N x C x H x W, N x H x W x C or
grey N x H x W; features are finite floats, N x D, standardised with the training split's statistics.
Labels are integers in 0..n-1, n at most the number of training samples; both splits hold samples and
share a class. Every mistake is one line, before any training; test classes that training never shows
are a warning.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from epbt_deap.data.splits import DataError, Source, check_source, default_val_size
from epbt_deap.errors import message_of, one_line
from epbt_deap.imports import import_callable

ARRAY_KEYS = ("x_train", "y_train", "x_test", "y_test")

logger = logging.getLogger("epbt_deap")


def tensor_of(values: Any, name: str, part: str) -> torch.Tensor:
    """An array, a tensor or a list as a tensor (a tensor is kept as it is); a DataError for strings,
    objects or ragged lists."""
    if isinstance(values, torch.Tensor):
        return values
    try:
        return torch.as_tensor(np.asarray(values))
    except (TypeError, ValueError) as error:
        raise DataError(f"{name}: {part} is not an array of numbers ({message_of(error)})") from None


def as_inputs(values: Any, name: str, part: str) -> torch.Tensor:
    """uint8 images as N x C x H x W, or float features as N x D x 1 x 1; a DataError for anything else."""
    tensor = tensor_of(values, name, part)
    shape = tuple(tensor.shape)
    if tensor.dtype == torch.uint8 and tensor.dim() == 3:
        return tensor.unsqueeze(1)
    if tensor.dtype == torch.uint8 and tensor.dim() == 4:
        if shape[1] in (1, 3):
            return tensor
        if shape[3] in (1, 3):
            return tensor.permute(0, 3, 1, 2).contiguous()
    if tensor.is_floating_point() and tensor.dim() == 2:
        if not torch.isfinite(tensor).all():
            raise DataError(f"{name}: {part} holds nan or infinite values")
        return tensor.to(torch.float32).view(*shape, 1, 1)
    raise DataError(f"{name}: {part} must be uint8 images (N x C x H x W, N x H x W x C or N x H x W, 1 or 3 "
                    f"channels) or float features (N x D), got {tensor.dtype} {list(shape)}")


def as_labels(values: Any, count: int, name: str, part: str) -> torch.Tensor:
    """``count`` integer labels as int64; a DataError for anything else."""
    tensor = tensor_of(values, name, part)
    if tensor.is_floating_point() or tensor.is_complex() or tensor.dim() != 1 or len(tensor) != count:
        raise DataError(f"{name}: {part} must be {count} integer labels, got {tensor.dtype} {list(tensor.shape)}")
    return tensor.to(torch.int64)


def class_names(classes: Any, name: str) -> list[str]:
    """The loader's class names as strings; a DataError where they are not a list of distinct names."""
    listed = isinstance(classes, Sequence) and not isinstance(classes, (str, bytes))
    if not listed and not (isinstance(classes, np.ndarray) and classes.ndim == 1):
        raise DataError(f"{name}: the class names must be a list of strings, got {type(classes).__name__}")
    names = [str(one) for one in classes]
    counts = Counter(names)
    repeated = [one for one in names if counts[one] > 1]
    if repeated:
        raise DataError(f"{name}: class names must differ, got {repeated[0]!r} {counts[repeated[0]]} times")
    return names


def check_class_count(num_classes: int, named: bool, train_size: int, name: str) -> None:
    """A DataError for more classes than training samples (``named``: counted by the class names, else
    by the largest label): a class without a training sample cannot be learnt, and the network's last
    layer (and the memory it takes) grows with the class count, so a stray large label would otherwise
    build a classifier of millions of classes."""
    if num_classes > train_size:
        counted_by = f"{num_classes} class names" if named else f"the largest label is {num_classes - 1}"
        raise DataError(f"{name}: {num_classes} classes ({counted_by}) for {train_size} training samples; "
                        f"a class needs a training sample to be learnt, so at most {train_size} classes")


def check_shared_classes(train_labels: torch.Tensor, test_labels: torch.Tensor, name: str) -> None:
    """A DataError where no test class appears in training (every test sample would be wrong); a warning
    naming the test classes that training never shows where only some are missing."""
    unseen = ~torch.isin(test_labels, train_labels)
    if unseen.all():
        raise DataError(f"{name}: no class of y_test ({int(test_labels.min())}..{int(test_labels.max())}) appears "
                        f"in y_train ({int(train_labels.min())}..{int(train_labels.max())}); every test sample "
                        f"would be wrong")
    if unseen.any():
        classes = test_labels[unseen].unique().tolist()
        listed = ", ".join(map(str, classes[:10])) + (", ..." if len(classes) > 10 else "")
        logger.warning("%s: %d of %d test samples are of classes y_train never shows (%s); the model cannot "
                       "get them right", name, int(unseen.sum()), len(test_labels), listed)


def source_of(parts: Sequence[Any], classes: Any, name: str) -> Source:
    """The train and test inputs and labels as a Source, checked: shapes, dtypes, samples in both splits,
    labels in 0..n-1 (n the class names' count, else the largest label + 1, at most the training samples),
    distinct class names, and a class the splits share."""
    x_train, y_train, x_test, y_test = parts
    train_inputs, test_inputs = as_inputs(x_train, name, "x_train"), as_inputs(x_test, name, "x_test")
    for part, inputs in (("x_train", train_inputs), ("x_test", test_inputs)):
        if not len(inputs):
            raise DataError(f"{name}: {part} holds no samples; a run trains on x_train and reports its accuracy "
                            f"on x_test, so each needs at least one")
    train_labels = as_labels(y_train, len(train_inputs), name, "y_train")
    test_labels = as_labels(y_test, len(test_inputs), name, "y_test")
    num_classes = (len(class_names(classes, name)) if classes is not None
                   else int(torch.cat([train_labels, test_labels]).max()) + 1)
    source = check_source(Source(train_inputs, train_labels, test_inputs, test_labels, num_classes,
                                 default_val_size(len(train_labels)), augment=False), name)
    check_class_count(num_classes, classes is not None, len(train_labels), name)
    check_shared_classes(train_labels, test_labels, name)
    return source


def load_by_import_path(path: str, data_dir: Path | None, download: bool, split_seed: int) -> Source:
    """The data a user's loader returns (it is called without arguments)."""
    try:
        returned = import_callable(path, "dataset", "loader", DataError)()
    except DataError:
        raise
    except Exception as error:  # the user's loader failed: theirs to fix, in one line
        raise DataError(f"dataset {path!r}: the loader failed ({one_line(error)})") from None
    if isinstance(returned, Mapping):
        missing = [key for key in ARRAY_KEYS if key not in returned]
        if missing:
            raise DataError(f"dataset {path!r}: the loader's mapping lacks {', '.join(missing)}")
        return source_of([returned[key] for key in ARRAY_KEYS], returned.get("classes"), path)
    if not isinstance(returned, Sequence) or len(returned) not in (4, 5):
        raise DataError(f"dataset {path!r}: the loader must return (x_train, y_train, x_test, y_test[, classes]) "
                        f"or a mapping of those, got {type(returned).__name__}")
    return source_of(returned[:4], returned[4] if len(returned) == 5 else None, path)


def load_arrays(data_dir: Path | None, download: bool, split_seed: int) -> Source:
    """``x_train``, ``y_train``, ``x_test`` and ``y_test`` of the ``.npz`` file at ``data.dir``."""
    if data_dir is None or not data_dir.is_file():
        raise DataError(f"the arrays dataset needs data.dir to be an .npz file holding {', '.join(ARRAY_KEYS)}"
                        f"{f'; {data_dir} is not a file' if data_dir is not None else ''}")
    try:
        loaded = np.load(data_dir, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DataError(f"'{data_dir}' holds one array; the arrays dataset needs an .npz file holding "
                            f"{', '.join(ARRAY_KEYS)} (numpy.savez)")
        with loaded as arrays:
            missing = [key for key in ARRAY_KEYS if key not in arrays]
            if missing:
                raise DataError(f"'{data_dir}' lacks {', '.join(missing)}")
            parts = [arrays[key] for key in ARRAY_KEYS]
            classes = arrays["classes"] if "classes" in arrays else None
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read '{data_dir}' as .npz arrays: {message_of(error)}") from None
    return source_of(parts, classes, "arrays")
