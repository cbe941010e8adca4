"""Label noise: a seeded share of the training (and validation) labels flipped to another class.

``symmetric`` draws the new label uniformly from the other classes; ``pairflip`` maps class c
to (c + 1) mod n. Exactly ``round(rate * N)`` labels of a split flip, chosen uniformly. The
flips depend on the seed and the split alone, so every member, method and resume of a run
sees the same ones. Test labels are never touched.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from epbt_deap.config import LabelNoiseConfig, NoiseKind
from epbt_deap.data.splits import ImageSplits


def flip_labels(labels: torch.Tensor, num_classes: int, rate: float, kind: NoiseKind,
                generator: torch.Generator) -> torch.Tensor:
    """``labels`` with ``round(rate * len(labels))`` of them, chosen uniformly, flipped to another class."""
    flipped = torch.randperm(len(labels), generator=generator)[:round(rate * len(labels))]
    if kind == "pairflip":
        shift = torch.ones(len(flipped), dtype=labels.dtype)
    else:
        shift = torch.randint(1, num_classes, (len(flipped),), generator=generator, dtype=labels.dtype)
    noisy = labels.clone()
    noisy[flipped] = (labels[flipped] + shift) % num_classes
    return noisy


def with_label_noise(splits: ImageSplits, noise: LabelNoiseConfig) -> ImageSplits:
    """``splits`` with noisy training labels, and noisy validation labels unless ``clean_validation``
    (``noise.seed`` set: :meth:`Config.label_noise` fills in the run's).

    The true labels are kept beside them (``train_true_labels``, ``val_true_labels``). Training
    labels flip first, so they are the same with and without a clean validation set.
    """
    generator = torch.Generator().manual_seed(noise.seed)

    def flip(labels: torch.Tensor) -> torch.Tensor:
        return flip_labels(labels, splits.num_classes, noise.rate, noise.kind, generator)

    train_labels = flip(splits.train_labels)
    val_labels = splits.val_labels if noise.clean_validation else flip(splits.val_labels)
    return replace(splits, train_labels=train_labels, val_labels=val_labels,
                   train_true_labels=splits.train_labels, val_true_labels=splits.val_labels)


def flips_record(splits: ImageSplits, noise: LabelNoiseConfig) -> dict[str, Any]:
    """The flipped labels of ``splits`` as the run directory records them: per split, the positions
    flipped (in the split's order), their true and their noisy labels."""
    def flips(noisy: torch.Tensor, true: torch.Tensor) -> dict[str, list[int]]:
        positions = (noisy != true).nonzero().flatten()
        return {"positions": positions.tolist(), "true": true[positions].tolist(), "noisy": noisy[positions].tolist()}

    return {"rate": noise.rate, "kind": noise.kind, "seed": noise.seed, "clean_validation": noise.clean_validation,
            "train": flips(splits.train_labels, splits.train_true_labels),
            "validation": flips(splits.val_labels, splits.val_true_labels)}
