"""The learnability check of a TaylorGLO theta, against autograd through Eq. 1."""
import random

import pytest
import torch

from epbt_deap.evolution.eq1 import taylorglo_terms
from epbt_deap.evolution.learnability import (CONFIDENT, check, is_learnable, margin, quadratic_minimum,
                                              wrong_class_curvature)
from epbt_deap.execution.taylorglo import taylorglo_loss

MSE_LIKE = (0, 0, 0, -1, 0, 1, 0, 0)  # -(x y - y^2 / 2): squared error up to a constant


def random_thetas(count, seed=0):
    rng = random.Random(seed)
    return [[rng.uniform(-10, 10) for _ in range(8)] for _ in range(count)]


def path_logits(num_classes, s):
    """Logits whose softmax gives class 0 probability ``s`` and the others (1 - s) / (n - 1) each."""
    wrong = (1 - s) / (num_classes - 1)
    logits = torch.full((1, num_classes), torch.log(torch.tensor(wrong, dtype=torch.float64)).item(),
                        dtype=torch.float64)
    logits[0, 0] = torch.log(torch.tensor(s, dtype=torch.float64))
    return logits.requires_grad_()


@pytest.mark.parametrize("num_classes", [2, 3, 10])
@pytest.mark.parametrize("s_fraction", [0.0, 0.4, 0.95])
def test_margin_is_what_moves_the_correct_logit_under_autograd(num_classes, s_fraction):
    s = 1 / num_classes + s_fraction * (1 - 1 / num_classes)
    for theta in random_thetas(20, seed=num_classes):
        logits = path_logits(num_classes, s)
        taylorglo_loss(logits, torch.tensor([0]), torch.tensor(theta, dtype=torch.float64)).backward()
        y_c = torch.softmax(logits.detach(), dim=1)[0, 0].item()
        expected = -logits.grad[0, 0].item() / (y_c * (1 - y_c))
        assert margin(theta, num_classes, s) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_margin_at_the_uniform_prediction_has_the_closed_form():
    n = 10
    for t in random_thetas(50):
        closed = (t[5] + t[6] * (1 / n - t[1]) + 0.5 * t[7] * (1 - 2 * t[0])) / n
        assert margin(t, n, 1 / n) == pytest.approx(closed, abs=1e-12)


@pytest.mark.parametrize("y", [0.0, 0.05, 0.1])
def test_wrong_class_curvature_is_the_second_derivative_of_its_term(y):
    n = 10
    for theta in random_thetas(20, seed=1):
        prediction = torch.tensor(y, dtype=torch.float64, requires_grad=True)
        term = -taylorglo_terms(torch.tensor(0.0, dtype=torch.float64), prediction,
                                torch.tensor(theta, dtype=torch.float64)) / n
        (first,) = torch.autograd.grad(term, prediction, create_graph=True)
        (second,) = torch.autograd.grad(first, prediction)
        assert wrong_class_curvature(theta, n, y) == pytest.approx(second.item(), rel=1e-9, abs=1e-12)


def test_quadratic_minimum_is_exact_on_the_interval():
    rng = random.Random(3)
    for _ in range(200):
        a, b, c = (rng.uniform(-5, 5) for _ in range(3))
        low, high = sorted(rng.uniform(-2, 2) for _ in range(2))
        grid = min(a * x * x + b * x + c for x in (low + (high - low) * i / 20000 for i in range(20001)))
        assert quadratic_minimum(lambda x: a * x * x + b * x + c, low, high) == pytest.approx(grid, abs=1e-6)


def test_squared_error_is_learnable_and_its_negation_is_not():
    assert is_learnable(MSE_LIKE, 10)
    negated = check([-value for value in MSE_LIKE], 10)
    assert not negated.pushes_right_way and not negated.no_wrong_class_reward


def test_a_loss_that_turns_back_before_confidence_fails_the_path_condition():
    # margin(s) = (1 - 2 s) / n here: right at the start, wrong past s = 0.5 (< 0.9).
    theta = (0, 0, 1, -2, 0, 1, 0, 0)
    assert margin(theta, 10, 0.1) > 0 > margin(theta, 10, 0.8)
    verdict = check(theta, 10)
    assert not verdict.pushes_right_way and verdict.no_wrong_class_reward
    assert check(theta, 10, confident=0.45).pushes_right_way


@pytest.mark.parametrize("num_classes", [3, 10])
def test_check_agrees_with_both_conditions_on_a_dense_grid(num_classes):
    """The verdicts, independently of quadratic_minimum and the curvature's end points: each condition on a grid."""
    uniform, agreed = 1 / num_classes, 0
    for theta in random_thetas(300, seed=num_classes):
        worst = min(margin(theta, num_classes, uniform + (CONFIDENT - uniform) * i / 2000) for i in range(2001))
        curvature = min(wrong_class_curvature(theta, num_classes, uniform * i / 200) for i in range(201))
        if abs(worst) < 1e-6 or abs(curvature) < 1e-9:
            continue  # on the boundary a grid may miss the vertex
        verdict = check(theta, num_classes)
        assert (verdict.pushes_right_way, verdict.no_wrong_class_reward) == (worst > 0, curvature > 0), theta
        agreed += 1
    assert agreed >= 290


def test_shares_of_uniform_draws_match_the_analysis():
    verdicts = [check(theta, 10) for theta in random_thetas(20000, seed=7)]
    share = lambda attribute: sum(getattr(v, attribute) for v in verdicts) / len(verdicts)  # noqa: E731
    assert share("pushes_right_way") == pytest.approx(0.385, abs=0.015)
    assert share("no_wrong_class_reward") == pytest.approx(0.50, abs=0.015)
    assert share("learnable") == pytest.approx(0.137, abs=0.01)


@pytest.mark.parametrize("arguments, message", [
    (((0,) * 8, 1), "at least 2 classes"), (((0,) * 7, 10), "8 values"), (((0,) * 8, 10, 0.05), "confident"),
])
def test_bad_arguments_are_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        check(*arguments)
