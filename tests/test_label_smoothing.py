"""Label smoothing: train.label_smoothing and the label_smoothing gene equal torch's, and the gene
reaches the loss in both trainers and in replay."""
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from epbt_deap.config import ConfigError, build_config
from epbt_deap.execution import training, vectorized
from epbt_deap.execution.losses import stacked_cross_entropy
from epbt_deap.execution.training import TrainSettings, make_loss
from epbt_deap.replay import replay
from epbt_deap.run import run
from epbt_deap.schedule import LossSchedule
from tests.helpers import read_jsonl, tiny

SMOOTHED_PBT = {"train.loss": "cross_entropy", "evolution.genes": {"label_smoothing": {"low": 0.0, "high": 0.3}}}


def test_the_setting_and_the_gene_give_torchs_label_smoothing():
    logits, targets = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    settings = TrainSettings("resnet8", loss="cross_entropy", label_smoothing=0.1)
    expected = F.cross_entropy(logits, targets, label_smoothing=0.1)
    assert torch.equal(make_loss(settings, {}, torch.device("cpu"))(logits, targets), expected)
    gene = settings.with_genes({"label_smoothing": 0.25, "theta_0": 1.0})
    assert gene.label_smoothing == 0.25 and gene.lr == settings.lr
    assert torch.equal(make_loss(gene, {}, torch.device("cpu"))(logits, targets),
                       F.cross_entropy(logits, targets, label_smoothing=0.25))


def test_the_vectorised_loss_smooths_each_model_as_torch_does():
    logits, targets = torch.randn(3, 5, 4, dtype=torch.float64), torch.randint(0, 4, (3, 5))
    smoothing = torch.tensor([0.0, 0.1, 0.45], dtype=torch.float64)
    losses = stacked_cross_entropy(logits, targets, smoothing)
    for model in range(3):
        expected = F.cross_entropy(logits[model], targets[model], label_smoothing=float(smoothing[model]))
        assert torch.allclose(losses[model], expected)


@pytest.mark.parametrize("settings, message", [
    ({"train": {"label_smoothing": 0.1}}, "set train.loss: cross_entropy"),
    ({"train": {"loss": "cross_entropy", "label_smoothing": 1.0}}, "train.label_smoothing"),
    ({"train": {"loss": "cross_entropy"}, "evolution": {"genes": {"label_smoothing": {"low": 0, "high": 0.6}}}},
     "bounds must lie within [0.0, 0.5]"),
    ({"evolution": {"genes": {"label_smoothing": {"low": 0, "high": 0.3}}}}, "set train.loss: cross_entropy"),
])
def test_label_smoothing_out_of_place_is_a_one_line_error(settings, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_config(settings)


def spy_on_smoothing(monkeypatch):
    """The label smoothing of every cross-entropy built for training, per-model and vectorised."""
    seen = []

    def cross_entropy(logits, targets, label_smoothing=0.0):
        seen.append(round(label_smoothing, 6))
        return F.cross_entropy(logits, targets, label_smoothing=label_smoothing)

    def stacked(logits, targets, label_smoothing):
        seen.extend(round(value, 6) for value in label_smoothing.tolist())
        return stacked_cross_entropy(logits, targets, label_smoothing)

    monkeypatch.setattr(training, "F", SimpleNamespace(cross_entropy=cross_entropy))
    monkeypatch.setattr(vectorized, "stacked_cross_entropy", stacked)
    return seen


def evolved_smoothing(run_dir):
    return {round(row["genes"]["label_smoothing"], 6) for row in read_jsonl(run_dir / "lineage.jsonl")}


@pytest.mark.parametrize("trainer", ["per_model", "vectorized"])
def test_the_gene_reaches_the_loss_in_both_trainers_and_in_replay(tmp_path, monkeypatch, trainer):
    seen = spy_on_smoothing(monkeypatch)
    config = tiny({**SMOOTHED_PBT, "train.trainer": trainer})
    run(config, tmp_path / "run")
    genes = evolved_smoothing(tmp_path / "run")
    assert len(genes) >= 3 and set(seen) == genes  # each child trained with its own gene, and only those
    seen.clear()
    replay(tmp_path / "run", tmp_path / "replay")
    schedule = LossSchedule.from_run(tmp_path / "run")
    assert set(seen) == {round(step.genes["label_smoothing"], 6) for step in schedule.steps}
    logits, targets = torch.randn(4, 4), torch.tensor([0, 1, 2, 3])
    last = schedule.steps[-1]
    assert torch.equal(schedule.loss_at(last.epoch)(logits, targets),
                       F.cross_entropy(logits, targets, label_smoothing=last.genes["label_smoothing"]))
