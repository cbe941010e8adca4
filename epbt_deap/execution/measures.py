"""What a trained model's logits say: accuracy, NLL, calibration, and memorised noisy labels.

Each function takes logits (N, C) and int64 labels (N,) and returns a float, nan for no
samples. They work on any device and are pure: no model, no data loading.
"""
from __future__ import annotations

import math

import torch

ECE_BINS = 15  # equal-width confidence bins, as Guo et al. (2017)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The share of samples whose arg-max class is their label."""
    if not len(labels):
        return math.nan
    return float((logits.argmax(dim=1) == labels).double().mean())


def negative_log_likelihood(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The mean of ``-log softmax(logits)[label]``, in float64."""
    if not len(labels):
        return math.nan
    log_p = logits.double().log_softmax(dim=1)
    return float(-log_p.gather(1, labels.unsqueeze(1)).mean())


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, bins: int = ECE_BINS) -> float:
    """ECE: over ``bins`` equal-width bins of confidence (the top softmax probability), each bin's
    ``|accuracy - mean confidence|`` weighted by its share of the samples.

    Bin b holds confidences in (b / bins, (b + 1) / bins]; the first bin also holds 0.
    """
    if not len(labels):
        return math.nan
    confidence, predicted = logits.double().softmax(dim=1).max(dim=1)
    correct = (predicted == labels).double()
    index = (torch.ceil(confidence * bins).long() - 1).clamp(0, bins - 1)
    count = torch.bincount(index, minlength=bins).double()
    gap = torch.bincount(index, weights=correct - confidence, minlength=bins)  # per bin: sum(correct - confidence)
    return float(gap.abs().sum() / count.sum())


def memorisation(logits: torch.Tensor, noisy_labels: torch.Tensor, true_labels: torch.Tensor) -> float:
    """The share of flipped samples (noisy label != true label) predicted as their noisy label."""
    flipped = noisy_labels != true_labels
    return accuracy(logits[flipped], noisy_labels[flipped])
