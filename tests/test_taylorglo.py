import math

import pytest
import torch

from epbt_deap import taylorglo_loss
from epbt_deap.evolution.eq1 import binary_loss_curve, binary_loss_formula


def bracket(x: float, y: float, t: list[float]) -> float:
    """Eq. 1's bracket for one class, written out by hand."""
    dx, dy = x - t[0], y - t[1]
    return (t[2] * dy + t[3] * dy**2 / 2 + t[4] * dy**3 / 6 + t[5] * dx * dy
            + t[6] * dx * dy**2 / 2 + t[7] * dx**2 * dy / 2)


def test_value_matches_a_hand_computation():
    logits = torch.tensor([[0.0, math.log(3.0)], [math.log(4.0), 0.0]])  # softmax: (1/4, 3/4), (4/5, 1/5)
    targets = torch.tensor([1, 1])
    theta = [0.5, -1.0, 2.0, 3.0, -4.0, 1.5, -2.5, 0.7]
    sample_1 = bracket(0, 0.25, theta) + bracket(1, 0.75, theta)
    sample_2 = bracket(0, 0.8, theta) + bracket(1, 0.2, theta)
    expected = -(sample_1 / 2 + sample_2 / 2) / 2  # 1/n over n = 2 classes, then the batch mean
    assert taylorglo_loss(logits, targets, theta).item() == pytest.approx(expected, rel=1e-6)


def test_zero_theta_gives_zero_loss_and_gradient():
    logits = torch.randn(5, 10, requires_grad=True)
    loss = taylorglo_loss(logits, torch.randint(0, 10, (5,)), torch.zeros(8))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.count_nonzero(logits.grad) == 0


def test_linear_term_rewards_the_true_class():
    """theta_5 = 1 gives -<x, y> / n: minus the probability of the true class over n classes."""
    logits = torch.randn(4, 3)
    targets = torch.tensor([0, 1, 2, 1])
    theta = [0, 0, 0, 0, 0, 1, 0, 0]
    expected = -torch.softmax(logits, 1)[torch.arange(4), targets].mean() / 3
    assert taylorglo_loss(logits, targets, theta).item() == pytest.approx(expected.item(), rel=1e-6)


def test_gradcheck_in_float64_for_logits_and_theta():
    logits = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    theta = torch.randn(8, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([0, 3, 1])
    assert torch.autograd.gradcheck(lambda l, t: taylorglo_loss(l, targets, t), (logits, theta))


def test_bfloat16_autocast_gives_a_finite_float32_loss():
    layer = torch.nn.Linear(6, 10)
    inputs, targets = torch.randn(8, 6), torch.randint(0, 10, (8,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = taylorglo_loss(layer(inputs), targets, torch.linspace(-3, 3, 8))
    reference = taylorglo_loss(layer(inputs), targets, torch.linspace(-3, 3, 8))
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert loss.item() == pytest.approx(reference.item(), abs=0.1)


def test_shapes_are_checked():
    logits, targets = torch.randn(4, 5), torch.randint(0, 5, (4,))
    theta = [1.0] * 8
    with pytest.raises(ValueError, match="8 values"):
        taylorglo_loss(logits, targets, [1.0] * 7)
    with pytest.raises(ValueError, match="batch, classes"):
        taylorglo_loss(logits.flatten(), targets, theta)


def test_binary_curve_is_the_two_class_loss():
    theta = [0.5, -1.0, 2.0, 3.0, -4.0, 1.5, -2.5, 0.7]
    y, loss = binary_loss_curve(theta, points=5)
    assert list(y) == [0.0, 0.25, 0.5, 0.75, 1.0]
    for value, expected in zip(y, loss):
        assert expected == pytest.approx(-(bracket(1, value, theta) + bracket(0, 1 - value, theta)) / 2)
    _, linear = binary_loss_curve([0, 0, 0, 0, 0, 1, 0, 0], points=3)
    assert list(linear) == pytest.approx([0.0, -0.25, -0.5])  # -y / 2: falls as the prediction improves


def test_binary_curve_can_be_shifted_to_zero_at_a_perfect_prediction():
    theta = [0.5, -1.0, 2.0, 3.0, -4.0, 1.5, -2.5, 0.7]
    _, loss = binary_loss_curve(theta, points=5)
    _, shifted = binary_loss_curve(theta, points=5, zero_at_perfect=True)
    assert shifted[-1] == 0.0 and loss[-1] != 0.0
    assert list(shifted) == pytest.approx(list(loss - loss[-1]))


def polynomial_of(formula: str):
    """The function of y that a ``binary_loss_formula`` text spells."""
    expression = formula.removeprefix("L(y) = ").replace("^", "**").replace(" y", " * y")
    return lambda y: eval(expression.replace("- ", "-").replace("+ ", "+") or "0", {"y": y})


@pytest.mark.parametrize("theta", [[0, 0, 0, 0, 0, 1, 0, 0], [0.5, -1.0, 2.0, 3.0, -4.0, 1.5, -2.5, 0.7],
                                   [-5.24, 0.88, -2.6, 2.07, 2.51, -8.68, -9.73, 6.75]])
def test_the_formula_is_the_shifted_binary_curve(theta):
    y, loss = binary_loss_curve(theta, zero_at_perfect=True)
    formula = binary_loss_formula(theta, digits=12)
    assert formula.startswith("L(y) = ")
    assert [polynomial_of(formula)(value) for value in y] == pytest.approx(loss, abs=1e-9)


def test_the_formula_of_the_linear_loss_reads_plainly():
    assert binary_loss_formula([0, 0, 0, 0, 0, 1, 0, 0]) == "L(y) = -0.5 y + 0.5"
    assert binary_loss_formula([0] * 8) == "L(y) = 0"


def test_the_formula_carries_the_loss_scale():
    theta = [0.5, -1.0, 2.0, 3.0, -4.0, 1.5, -2.5, 0.7]
    doubled = theta[:2] + [2 * value for value in theta[2:]]  # Eq. 1 is linear in theta_2 .. theta_7
    y, loss = binary_loss_curve(doubled, zero_at_perfect=True)
    assert [polynomial_of(binary_loss_formula(theta, digits=12, scale=2.0))(v) for v in y] == pytest.approx(loss)
