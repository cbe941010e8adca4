"""Fit and calibration measures against hand-worked numbers, and generalised cross-entropy against its formula."""
import math

import pytest
import torch
import torch.nn.functional as F

from epbt_deap.config import ConfigError, build_config
from epbt_deap.execution.losses import generalized_cross_entropy
from epbt_deap.execution.measures import accuracy, expected_calibration_error, memorisation, negative_log_likelihood
from epbt_deap.execution.training import TrainSettings, make_loss

# Four samples of two classes, as softmax probabilities (logits are their logs) and labels:
#   (0.90, 0.10) label 0: confidence 0.90, right   -> bin 13 of 15, (13/15, 14/15]
#   (0.75, 0.25) label 1: confidence 0.75, wrong   -> bin 11, (11/15, 12/15]
#   (0.30, 0.70) label 1: confidence 0.70, right   -> bin 10, (10/15, 11/15]
#   (0.72, 0.28) label 1: confidence 0.72, wrong   -> bin 10
PROBABILITIES = torch.tensor([[0.90, 0.10], [0.75, 0.25], [0.30, 0.70], [0.72, 0.28]], dtype=torch.float64)
LOGITS = PROBABILITIES.log()
LABELS = torch.tensor([0, 1, 1, 1])


def test_accuracy_and_nll_by_hand():
    assert accuracy(LOGITS, LABELS) == 0.5
    # -(ln 0.90 + ln 0.25 + ln 0.70 + ln 0.28) / 4 = (0.1053605 + 1.3862944 + 0.3566749 + 1.2729657) / 4
    assert negative_log_likelihood(LOGITS, LABELS) == pytest.approx(0.7803239, abs=1e-7)


def test_ece_by_hand():
    # bin 13: |1 - 0.90| = 0.10 (1 sample); bin 11: |0 - 0.75| = 0.75 (1); bin 10: |1/2 - 0.71| = 0.21 (2)
    # ECE = (1 * 0.10 + 1 * 0.75 + 2 * 0.21) / 4 = 0.3175
    assert expected_calibration_error(LOGITS, LABELS) == pytest.approx(0.3175, abs=1e-9)
    # with 2 bins, all four fall in (0.5, 1]: |2/4 - (0.90 + 0.75 + 0.70 + 0.72) / 4| = |0.5 - 0.7675|
    assert expected_calibration_error(LOGITS, LABELS, bins=2) == pytest.approx(0.2675, abs=1e-9)


def test_a_perfectly_calibrated_and_an_overconfident_model():
    certain = torch.tensor([[50.0, 0.0], [0.0, 50.0]])
    assert expected_calibration_error(certain, torch.tensor([0, 1])) == pytest.approx(0.0, abs=1e-12)
    assert expected_calibration_error(certain, torch.tensor([1, 0])) == pytest.approx(1.0)


def test_memorisation_counts_flipped_samples_predicted_as_their_noisy_label():
    logits = torch.eye(3)[[0, 1, 2, 2, 0]] * 5  # predictions 0, 1, 2, 2, 0
    true = torch.tensor([0, 1, 2, 0, 1])
    noisy = torch.tensor([0, 2, 2, 2, 2])  # samples 1, 3 and 4 flipped; only sample 3 predicted as its noisy label
    assert memorisation(logits, noisy, true) == pytest.approx(1 / 3)


def test_no_samples_give_nan():
    empty, none = torch.empty(0, 3), torch.empty(0, dtype=torch.long)
    for measure in (accuracy, negative_log_likelihood, expected_calibration_error):
        assert math.isnan(measure(empty, none))


def test_gce_is_its_formula():
    # p_true = 0.25 and 0.64 with q = 1/2: ((1 - 0.5) / 0.5 + (1 - 0.8) / 0.5) / 2 = (1.0 + 0.4) / 2
    logits = torch.tensor([[0.25, 0.75], [0.36, 0.64]], dtype=torch.float64).log()
    loss = generalized_cross_entropy(logits, torch.tensor([0, 1]), q=0.5)
    assert float(loss) == pytest.approx(0.7)
    assert float(generalized_cross_entropy(logits, torch.tensor([0, 1]), q=1.0)) == pytest.approx(
        ((1 - 0.25) + (1 - 0.64)) / 2)  # q = 1: MAE's 1 - p_true


def test_gce_tends_to_cross_entropy_and_stacks_per_model():
    logits, targets = torch.randn(3, 6, 4, dtype=torch.float64), torch.randint(0, 4, (3, 6))
    stacked = generalized_cross_entropy(logits, targets, q=0.7)
    assert stacked.shape == (3,)
    for model in range(3):
        assert stacked[model] == pytest.approx(float(generalized_cross_entropy(logits[model], targets[model], 0.7)))
        assert float(generalized_cross_entropy(logits[model], targets[model], q=1e-6)) == pytest.approx(
            float(F.cross_entropy(logits[model], targets[model])), rel=1e-4)


def test_the_gce_setting_builds_gce_with_its_q():
    logits, targets = torch.randn(5, 3), torch.randint(0, 3, (5,))
    loss = make_loss(TrainSettings("resnet8", loss="gce", gce_q=0.4), {}, torch.device("cpu"))
    assert torch.equal(loss(logits, targets), generalized_cross_entropy(logits, targets, 0.4))
    config = build_config({"train": {"loss": "gce"}, "evolution": {"algorithm": "none", "population": 1}})
    assert config.train.gce_q == 0.7 and not len(config.search_space())
    with pytest.raises(ConfigError, match="train.gce_q"):
        build_config({"train": {"loss": "gce", "gce_q": 0}})


def test_both_trainers_train_with_gce_alike(tmp_path):
    from epbt_deap.run import run
    from tests.helpers import read_jsonl, tiny

    gce = {"train.loss": "gce", "train.gce_q": 0.5, "evolution.algorithm": "pbt", "evolution.generations": 1,
           "evolution.genes": {"lr": {"low": 0.01, "high": 0.2}}}
    losses = {}
    for trainer in ("per_model", "vectorized"):
        run(tiny({**gce, "train.trainer": trainer}), tmp_path / trainer)
        losses[trainer] = [row["train_loss"] for row in read_jsonl(tmp_path / trainer / "lineage.jsonl")]
    assert all(0 < loss < 1 / 0.5 for loss in losses["per_model"])  # GCE lies in [0, 1/q)
    assert losses["vectorized"] == pytest.approx(losses["per_model"], rel=2e-3)  # float32 summation order differs
