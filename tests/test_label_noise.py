"""Label noise: the flips are seeded, recorded and resumed alike, never touch test labels, and
memorisation of the flipped labels is measured."""
import json

import pytest
import torch

from epbt_deap.config import ConfigError, build_config
from epbt_deap.data.noise import flip_labels, with_label_noise
from epbt_deap.errors import RunDirError
from epbt_deap.run import load_data, resume, run
from tests.helpers import read_jsonl, tiny

NOISY = {"data.label_noise.rate": 0.25}


def draw(seed):
    return torch.Generator().manual_seed(seed)


def test_symmetric_noise_flips_exactly_the_rate_to_every_other_class():
    labels = torch.arange(10).repeat(1000)
    noisy = flip_labels(labels, 10, 0.4, "symmetric", draw(0))
    changed = noisy != labels
    assert int(changed.sum()) == 4000
    offsets = (noisy[changed] - labels[changed]) % 10
    counts = torch.bincount(offsets, minlength=10)
    assert counts[0] == 0 and counts[1:].min() > 4000 / 9 * 0.8 and counts[1:].max() < 4000 / 9 * 1.2


def test_pairflip_maps_each_class_to_the_next():
    labels = torch.arange(5).repeat(20)
    noisy = flip_labels(labels, 5, 0.3, "pairflip", draw(1))
    changed = noisy != labels
    assert int(changed.sum()) == 30
    assert torch.equal(noisy[changed], (labels[changed] + 1) % 5)


def test_the_same_seed_gives_the_same_flips_for_every_method_and_test_labels_never_change():
    def data(overrides):
        return load_data(tiny({**NOISY, **overrides}))

    clean = load_data(tiny())
    epbt, pbt = data({}), data({"evolution.algorithm": "pbt"})
    assert torch.equal(epbt.train_labels, pbt.train_labels) and torch.equal(epbt.val_labels, pbt.val_labels)
    assert torch.equal(epbt.test_labels, clean.test_labels)
    assert torch.equal(epbt.train_true_labels, clean.train_labels)
    assert int((epbt.train_labels != clean.train_labels).sum()) == round(0.25 * len(clean.train_labels))
    assert int((epbt.val_labels != clean.val_labels).sum()) == round(0.25 * len(clean.val_labels))
    other_seed = data({"seed": 4})
    assert not torch.equal(other_seed.train_labels, epbt.train_labels)
    assert torch.equal(data({"seed": 4, "data.label_noise.seed": tiny().seed}).train_labels, epbt.train_labels)


def test_a_clean_validation_set_keeps_the_same_training_flips():
    clean = load_data(tiny())
    kept = with_label_noise(clean, tiny({**NOISY, "data.label_noise.clean_validation": True}).label_noise())
    noisy = with_label_noise(clean, tiny(NOISY).label_noise())
    assert torch.equal(kept.val_labels, clean.val_labels) and not torch.equal(noisy.val_labels, clean.val_labels)
    assert torch.equal(kept.train_labels, noisy.train_labels)


@pytest.mark.parametrize("noise, message", [
    ({"rate": 1.0}, "data.label_noise.rate"), ({"rate": -0.1}, "data.label_noise.rate"),
    ({"rate": 0.2, "kind": "asymmetric"}, "data.label_noise.kind"),
])
def test_bad_label_noise_is_a_one_line_error(noise, message):
    with pytest.raises(ConfigError, match=message) as error:
        build_config({"data": {"label_noise": noise}})
    assert "\n" not in str(error.value)


def test_a_noisy_run_records_its_flips_and_memorisation_and_resumes_only_with_the_same_flips(tmp_path):
    run_dir = tmp_path / "run"
    run(tiny({**NOISY, "evolution.generations": 2}), run_dir)
    record = json.loads((run_dir / "label_noise.json").read_text())
    splits = load_data(tiny(NOISY))
    flipped = (splits.train_labels != splits.train_true_labels).nonzero().flatten().tolist()
    assert record["seed"] == tiny().seed and record["kind"] == "symmetric" and record["train"]["positions"] == flipped
    assert record["train"]["noisy"] == splits.train_labels[flipped].tolist()
    assert len(record["validation"]["positions"]) == round(0.25 * len(splits.val_labels))
    for row in read_jsonl(run_dir / "lineage.jsonl"):
        assert 0 <= row["memorised"] <= 1 and 0 <= row["train_accuracy"] <= 1
    assert read_jsonl(run_dir / "logbook.jsonl")[-1]["best_memorised"] is not None

    resume(run_dir, generations=3, lr_milestones=[2])  # the same flips: it goes on
    assert max(row["generation"] for row in read_jsonl(run_dir / "lineage.jsonl")) == 2
    record["train"]["positions"][0] += 1
    (run_dir / "label_noise.json").write_text(json.dumps(record))
    with pytest.raises(RunDirError, match="labels flipped now differ"):
        resume(run_dir, generations=4, lr_milestones=[2])
    (run_dir / "label_noise.json").write_text('{"seed": 3, "tr')  # cut short
    with pytest.raises(RunDirError, match=r"label_noise.json: unreadable \(Unterminated string"):
        resume(run_dir, generations=4, lr_milestones=[2])


def test_every_evaluation_records_nll_ece_and_training_accuracy(tmp_path):
    run(tiny({"evolution.generations": 1}), tmp_path / "run")
    rows = read_jsonl(tmp_path / "run" / "lineage.jsonl")
    for row in rows:
        assert row["val_nll"] > 0 and row["test_nll"] > 0 and 0 <= row["test_ece"] <= 1
        assert 0 <= row["train_accuracy"] <= 1 and "memorised" not in row
    best = max(rows, key=lambda row: row["fitness"])
    logbook = read_jsonl(tmp_path / "run" / "logbook.jsonl")[-1]
    assert logbook["best_test_nll"] == best["test_nll"] and logbook["best_train_accuracy"] == best["train_accuracy"]
    assert logbook["best_memorised"] is None
    assert not (tmp_path / "run" / "label_noise.json").exists()
