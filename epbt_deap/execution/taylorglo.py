"""The third-order TaylorGLO loss of the EPBT paper (Eq. 1) for training, in torch.

The polynomial itself, and what it is in the binary modality, live torch-free in
:mod:`epbt_deap.evolution.eq1`; these compute it from logits, in at least float32.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from epbt_deap.evolution.eq1 import taylorglo_terms
from epbt_deap.evolution.space import PARAMETER_NAMES

NUM_PARAMETERS = len(PARAMETER_NAMES)


def taylorglo_loss(
    logits: torch.Tensor, targets: torch.Tensor, theta: torch.Tensor | Sequence[float]
) -> torch.Tensor:
    """TaylorGLO loss (Eq. 1) of ``logits`` (B, C) against class indices ``targets`` (B,).

    The softmax and the polynomial are computed in at least float32, so the loss is
    stable under bfloat16 autocast; the result is a scalar tensor that is differentiable
    in ``logits`` (and in ``theta`` when it is a tensor that requires grad).
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (batch, classes), got shape {tuple(logits.shape)}")
    dtype = torch.promote_types(logits.dtype, torch.float32)
    theta = torch.as_tensor(theta, dtype=dtype, device=logits.device)
    if theta.shape != (NUM_PARAMETERS,):
        raise ValueError(f"theta must hold {NUM_PARAMETERS} values, got shape {tuple(theta.shape)}")
    return stacked_taylorglo_loss(logits.unsqueeze(0), targets.unsqueeze(0), theta.unsqueeze(0))[0]


def stacked_taylorglo_loss(logits: torch.Tensor, targets: torch.Tensor, thetas: torch.Tensor) -> torch.Tensor:
    """Eq. 1 for M models at once, each with its own theta: the (M,) losses.

    ``logits`` (M, B, C), ``targets`` (M, B) class indices, ``thetas`` (M, 8).
    """
    dtype = torch.promote_types(logits.dtype, torch.float32)
    y = torch.softmax(logits.to(dtype), dim=-1)
    x = F.one_hot(targets, num_classes=logits.shape[-1]).to(dtype)
    return -taylorglo_terms(x, y, thetas.to(dtype)[:, None, None, :]).mean(dim=2).mean(dim=1)

