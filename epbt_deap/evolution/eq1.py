"""The third-order TaylorGLO loss of the EPBT paper (Eq. 1) as a polynomial, torch-free.

With x the one-hot label, y = softmax(logits) and theta = (theta_0 .. theta_7),

    L(x, y) = -1/n * sum_i [ theta_2 (y_i - theta_1) + 1/2 theta_3 (y_i - theta_1)^2
                             + 1/6 theta_4 (y_i - theta_1)^3 + theta_5 (x_i - theta_0)(y_i - theta_1)
                             + 1/2 theta_6 (x_i - theta_0)(y_i - theta_1)^2
                             + 1/2 theta_7 (x_i - theta_0)^2 (y_i - theta_1) ]

where i runs over the n classes: x_i and y_i are the i-th components of the one-hot
label and of the prediction, so the bracket is summed over the classes and scaled by
1/n exactly as Eq. 1 prints it. Per-sample losses are averaged over the batch. With
theta = (0, 0, 0, 0, 0, 1, 0, 0) the loss is -y_true / n, a linear loss.

The bracket works on numpy arrays and torch tensors alike; the loss in the paper's binary
modality (Section 5) is what ``show``, ``export`` and the report's figures print and plot.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

Array = TypeVar("Array")  # a numpy array or a torch tensor


def taylorglo_terms(x: Array, y: Array, theta: Array) -> Array:
    """The bracket of Eq. 1, elementwise, for labels ``x`` and predictions ``y`` of any shape.

    Plain arithmetic, so numpy arrays and torch tensors alike (of one dtype) work. ``theta``
    is (..., 8); its leading dimensions broadcast against ``y``'s.
    """
    dx = x - theta[..., 0]
    dy = y - theta[..., 1]
    return (
        theta[..., 2] * dy
        + 0.5 * theta[..., 3] * dy**2
        + (1.0 / 6.0) * theta[..., 4] * dy**3
        + theta[..., 5] * dx * dy
        + 0.5 * theta[..., 6] * dx * dy**2
        + 0.5 * theta[..., 7] * dx**2 * dy
    )


def binary_loss_curve(theta: Sequence[float], points: int = 101,
                      zero_at_perfect: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The loss in the paper's 2-D binary modality (Section 5), as Eq. 1 gives it for 2 classes.

    The label is x = (1, 0) and the prediction (y, 1 - y), y from 0 (all wrong) to 1
    (perfect). Returns ``(y, loss)``; used to plot and describe a loss function. With
    ``zero_at_perfect`` the curve is shifted so that its value at y = 1 is 0: an additive
    constant changes nothing in training, and without it curves sit hundreds apart.
    """
    y = np.linspace(0.0, 1.0, points)
    x = np.broadcast_to(np.array([1.0, 0.0]), (points, 2))
    predictions = np.stack([y, 1.0 - y], axis=1)
    loss = -taylorglo_terms(x, predictions, np.asarray(theta, dtype=np.float64)).mean(axis=1)
    if zero_at_perfect:
        loss = loss - loss[-1]
    return y, loss


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
