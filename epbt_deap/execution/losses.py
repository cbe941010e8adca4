"""The losses beside TaylorGLO: cross-entropy for a stack of models, and generalised cross-entropy.

Each takes a stack of M models' logits (M, B, C) and class indices (M, B) and gives one loss
per model (M,), the mean over its B samples; ``generalized_cross_entropy`` also takes one
model's (B, C), giving a scalar.
"""
from __future__ import annotations

import torch


def stacked_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: torch.Tensor) -> torch.Tensor:
    """Each model's mean cross-entropy (M,) of logits (M, B, C), with its own label smoothing (M,),
    as torch's ``label_smoothing``: ``(1 - e) * nll + e * mean over classes of -log p``."""
    log_p = logits.log_softmax(-1)
    nll = -log_p.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    smoothing = label_smoothing.unsqueeze(1)
    return ((1 - smoothing) * nll - smoothing * log_p.mean(-1)).mean(1)


def generalized_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, q: float) -> torch.Tensor:
    """Generalised cross-entropy (Zhang & Sabuncu 2018), ``(1 - p_y ** q) / q`` averaged over the samples.

    ``q`` in (0, 1]: cross-entropy as q -> 0, MAE's ``1 - p_y`` at q = 1. The softmax is taken in
    at least float32, so the loss is stable under bfloat16 autocast.
    """
    dtype = torch.promote_types(logits.dtype, torch.float32)
    p_true = logits.to(dtype).softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return ((1 - p_true**q) / q).mean(-1)
