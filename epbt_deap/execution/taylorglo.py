"""The third-order TaylorGLO loss of the EPBT paper (Eq. 1).

With x the one-hot label, y = softmax(logits) and theta = (theta_0 .. theta_7),

    L(x, y) = -1/n * sum_i [ theta_2 (y_i - theta_1) + 1/2 theta_3 (y_i - theta_1)^2
                             + 1/6 theta_4 (y_i - theta_1)^3 + theta_5 (x_i - theta_0)(y_i - theta_1)
                             + 1/2 theta_6 (x_i - theta_0)(y_i - theta_1)^2
                             + 1/2 theta_7 (x_i - theta_0)^2 (y_i - theta_1) ]

where i runs over the n classes: x_i and y_i are the i-th components of the one-hot
label and of the prediction, so the bracket is summed over the classes and scaled by
1/n exactly as Eq. 1 prints it. Per-sample losses are averaged over the batch. With
theta = (0, 0, 0, 0, 0, 1, 0, 0) the loss is -y_true / n, a linear loss.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from epbt_deap.evolution.space import PARAMETER_NAMES

NUM_PARAMETERS = len(PARAMETER_NAMES)


def taylorglo_terms(x: torch.Tensor, y: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """The bracket of Eq. 1, elementwise, for labels ``x`` and predictions ``y`` of any shape.

    ``theta`` is (..., 8); its leading dimensions broadcast against ``y``'s.
    """
    t = theta.to(dtype=y.dtype)
    dx = x - t[..., 0]
    dy = y - t[..., 1]
    return (
        t[..., 2] * dy
        + 0.5 * t[..., 3] * dy**2
        + (1.0 / 6.0) * t[..., 4] * dy**3
        + t[..., 5] * dx * dy
        + 0.5 * t[..., 6] * dx * dy**2
        + 0.5 * t[..., 7] * dx**2 * dy
    )


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
    return -taylorglo_terms(x, y, thetas[:, None, None, :]).mean(dim=2).mean(dim=1)


def binary_loss_curve(theta: Sequence[float], points: int = 101,
                      zero_at_perfect: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The loss in the paper's 2-D binary modality (Section 5), as Eq. 1 gives it for 2 classes.

    The label is x = (1, 0) and the prediction (y, 1 - y), y from 0 (all wrong) to 1
    (perfect). Returns ``(y, loss)``; used to plot and describe a loss function. With
    ``zero_at_perfect`` the curve is shifted so that its value at y = 1 is 0: an additive
    constant changes nothing in training, and without it curves sit hundreds apart.
    """
    y = torch.linspace(0.0, 1.0, points, dtype=torch.float64)
    x = torch.tensor([1.0, 0.0], dtype=torch.float64).expand(points, 2)
    predictions = torch.stack([y, 1.0 - y], dim=1)
    loss = -taylorglo_terms(x, predictions, torch.as_tensor(theta, dtype=torch.float64)).mean(dim=1)
    if zero_at_perfect:
        loss = loss - loss[-1]
    return y.numpy(), loss.numpy()


def binary_loss_formula(theta: Sequence[float], digits: int = 4, scale: float = 1.0) -> str:
    """The shifted binary loss (:func:`binary_loss_curve` with ``zero_at_perfect``), times
    ``scale`` (``train.taylorglo_scale``), written as the polynomial in y it is, e.g.
    ``L(y) = 27.37 y^2 - 44.25 y + 16.88``; y is the predicted probability of the true class
    and L(1) = 0."""
    y, loss = binary_loss_curve(theta, zero_at_perfect=True)
    coefficients = scale * np.polyfit(y, loss, 3)  # exact: Eq. 1 is a cubic in y (in two classes the y^3 terms cancel)
    tolerance = 1e-9 * max(1.0, float(np.abs(coefficients).max()))
    parts: list[str] = []
    for coefficient, monomial in zip(coefficients.tolist(), (" y^3", " y^2", " y", "")):
        if abs(coefficient) <= tolerance:
            continue
        sign = ("-" if coefficient < 0 else "") if not parts else ("- " if coefficient < 0 else "+ ")
        parts.append(f"{sign}{abs(coefficient):.{digits}g}{monomial}")
    return "L(y) = " + (" ".join(parts) or "0")


class TaylorGLOLoss(torch.nn.Module):
    """``nn.Module`` wrapper holding a fixed ``theta``."""

    def __init__(self, theta: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("theta", torch.as_tensor(theta, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return taylorglo_loss(logits, targets, self.theta)
