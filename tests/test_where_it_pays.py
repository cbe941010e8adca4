"""The study runner's declared methods build valid configs, and the pilot's entry rule is as declared."""
import csv
import json
import subprocess

import pytest

from epbt_deap.config import load_config, parse_assignment
from experiments.where_it_pays import study

PILOT = study.Pilot(epochs=60, train_subset=5000)


def config_of(method, setting):
    overrides = study.method_overrides(method, setting, PILOT, lr=0.1, smoothing=0.05)
    return load_config(study.BASE_CONFIG, dict(parse_assignment(item) for item in overrides))


@pytest.mark.parametrize("setting", sorted(study.SETTINGS))
def test_every_method_of_every_setting_is_a_valid_config(setting):
    methods = [method for method in study.methods_of(setting) if method != "replay"]
    configs = {method: config_of(method, setting) for method in methods}
    for method, config in configs.items():
        assert config.train.lr_milestones == [30, 45] and config.data.train_subset == 5000
        assert (config.data.label_noise.rate == 0.4) == (setting == "noisy")
        epochs = config.train.epochs_per_generation * config.evolution.generations
        assert epochs == 60, method
    assert configs["b1_lr0.2"].train.lr == 0.2 and configs["b1_lr0.2"].train.epochs_per_generation == 1
    assert configs["ce_ls0.1"].train.label_smoothing == 0.1
    assert configs["bestof8"].evolution.population == 8 and configs["bestof8"].train.label_smoothing == 0.05
    epbt = configs["epbt"]
    assert epbt.train.loss == "taylorglo" and (epbt.evolution.population, epbt.evolution.elites) == (8, 4)
    assert epbt.evolution.generations == 10 and epbt.evolution.elites_train
    assert set(configs["pbt_ce"].search_space().names) == {"lr", "weight_decay", "label_smoothing"}
    assert ("gce" in configs) == (setting == "noisy")


def test_the_pilot_passes_only_with_a_fitted_model_and_a_rising_validation_nll():
    def curve(train, nlls):
        return [{"train_accuracy": train, "val_nll": nll} for nll in nlls]

    assert study.pilot_verdict(curve(0.96, [1.0, 0.8, 0.85]))["passed"]  # 0.85 / 0.8 = 1.0625
    assert not study.pilot_verdict(curve(0.94, [1.0, 0.8, 0.85]))["passed"]
    assert not study.pilot_verdict(curve(0.99, [1.0, 0.8, 0.83]))["passed"]  # a rise of 3.75 %
    assert study.pilot_verdict(curve(0.90, [1.0, 0.8, 0.8]))["shortfall"] == pytest.approx(
        0.05 / 0.95 + 0.05 / 1.05)


def test_tuning_picks_the_best_final_validation_accuracy():
    records = [{"curve": [{"val": 0.5}], "lr": 0.05}, {"curve": [{"val": 0.7}], "lr": 0.1},
               {"curve": [{"val": 0.7}], "lr": 0.2}]
    assert study.tuned(records, lambda record: record["lr"]) == 0.1


def record(method, seed, tests, vals, commit="abc", dirty=False, model_epochs=60, nll=1.0):
    curve = [{"epochs": 6 * (index + 1), "val": val, "test": test, "test_nll": nll, "test_ece": 0.1,
              "train_accuracy": 0.9, "memorised": None} for index, (test, val) in enumerate(zip(tests, vals))]
    return {"method": method, "seed": seed, "commits": [[commit, dirty]], "curve": curve, "failed": 0,
            "model_epochs": model_epochs, "wall_seconds": 60.0}


def test_a_failed_epbt_run_is_reported_and_its_replay_waits_for_its_record(tmp_path, monkeypatch, capsys):
    (tmp_path / "pilot").mkdir()
    (tmp_path / "pilot" / "decision.json").write_text(json.dumps({"epochs": 60, "train_subset": 5000}))
    ran = []

    def run_and_record(method, setting, seed, overrides, data_dir, runs, records, choices):
        ran.append(method)
        if method == "epbt":
            raise subprocess.CalledProcessError(1, ["epbt-deap"])
        return {"curve": [{"val": 0.5}], "config": {"train": {"lr": 0.1, "label_smoothing": 0.05}}}

    monkeypatch.setattr(study, "run_and_record", run_and_record)
    study.sweep("converged", [2000], tmp_path / "data", tmp_path / "runs", tmp_path)
    assert ran == [method for method in study.methods_of("converged") if method != "replay"]
    output = capsys.readouterr().out
    assert "converged epbt seed 2000: FAILED (exit 1)" in output
    assert "converged replay seed 2000: not run, EPBT has no record" in output


def write_records(folder, records):
    folder.mkdir(parents=True)
    for item in records:
        (folder / f"{item['method']}-seed{item['seed']}.json").write_text(json.dumps(item))


def test_the_tables_resolve_tuning_early_stopping_and_the_bar(tmp_path):
    from experiments.where_it_pays import tables

    records = []
    for seed, shift in ((1, 0.0), (2, 0.02)):
        records += [record("b1_lr0.05", seed, [0.4, 0.5], [0.4, 0.5]),
                    record("b1_lr0.1", seed, [0.6 + shift, 0.55 + shift], [0.7, 0.6]),  # chosen; early stop: epoch 6
                    record("b1_lr0.2", seed, [0.5, 0.52], [0.5, 0.55]),
                    record("epbt", seed, [0.5, 0.7 + shift], [0.5, 0.7], model_epochs=480, nll=1.0 + 10 * shift)]
    write_records(tmp_path / "noisy", records)
    markdown = tables.write_setting("noisy", tmp_path, tmp_path / "out", "abc")
    rows = {row["method"]: row for row in csv.DictReader((tmp_path / "out" / "noisy.csv").open())}
    assert float(rows["b1"]["test"]) == pytest.approx(56.0)  # the final 0.55 and 0.57 of lr 0.1
    assert float(rows["b1_es"]["test"]) == pytest.approx(61.0)  # its best validation epoch
    assert float(rows["b1"]["model_epochs"]) == 60 and float(rows["b1"]["with_tuning"]) == 180  # its model; its lr tuning
    assert float(rows["b1_es"]["model_epochs"]) == 0 and float(rows["epbt"]["with_tuning"]) == 660
    assert float(rows["epbt"]["test_nll"]) == pytest.approx(1.1)  # every measure: mean and sample std over seeds
    assert float(rows["epbt"]["test_nll_std"]) == pytest.approx(0.2 / 2 ** 0.5, abs=1e-4)
    assert float(rows["epbt"]["test_ece_std"]) == 0 and rows["epbt"]["memorised_std"] == ""
    bar = {row["control"]: row for row in csv.DictReader((tmp_path / "out" / "noisy_bar.csv").open())}
    assert bar["b1_es"]["verdict"] == "wins" and float(bar["b1_es"]["difference"]) == pytest.approx(10.0)
    assert bar["b1_es"]["epbt_epochs_to_pass"] == "12"
    assert "Setting noisy" in markdown and (tmp_path / "out" / "noisy.png").exists()


def test_the_bar_compares_only_the_seeds_where_both_epbt_and_the_control_are_recorded(tmp_path):
    from experiments.where_it_pays import tables

    b1 = [record(f"b1_lr{lr}", seed, [test], [val]) for seed, test in ((1, 0.5), (2, 0.9))
          for lr, val in ((0.05, 0.6), (0.1, 0.5), (0.2, 0.4))]
    gce = [record("gce", 1, [0.45], [0.5]), record("gce", 2, [0.95], [0.5])]
    write_records(tmp_path / "noisy", [*b1, *gce, record("epbt", 1, [0.55], [0.5])])  # seed 2 waits for its EPBT
    tables.write_setting("noisy", tmp_path, tmp_path / "out", "abc")
    rows = {row["method"]: row for row in csv.DictReader((tmp_path / "out" / "noisy.csv").open())}
    assert rows["b1_es"]["seeds"] == "2" and float(rows["b1_es"]["test"]) == pytest.approx(70.0)
    bar = {row["control"]: row for row in csv.DictReader((tmp_path / "out" / "noisy_bar.csv").open())}
    assert bar["b1_es"]["seeds"] == "1" and float(bar["b1_es"]["difference"]) == pytest.approx(5.0)
    assert float(bar["gce"]["difference"]) == pytest.approx(10.0) and bar["gce"]["verdict"] == "n/a (one seed)"


@pytest.mark.parametrize("epbt_test, stops", [(0.46, True), (0.48, False)])
def test_the_early_stop_rule_reads_the_screening_seed_against_the_best_control(tmp_path, epbt_test, stops):
    from experiments.where_it_pays import tables

    b1 = [record(f"b1_lr{lr}", 1, [0.5], [val]) for lr, val in ((0.05, 0.6), (0.1, 0.5), (0.2, 0.4))]
    later = record("gce", 2, [0.9], [0.5])  # the next seed's control, recorded before its EPBT: not screening
    write_records(tmp_path / "noisy", [*b1, record("gce", 1, [0.49], [0.5]), record("epbt", 1, [epbt_test], [0.5]),
                                       later])
    markdown = tables.write_setting("noisy", tmp_path, tmp_path / "out", "abc")
    difference = epbt_test * 100 - 50
    assert (f"(screening seed 1): EPBT {epbt_test * 100:.2f} % is {difference:+.2f} points against that seed's best "
            "control so far, b1_es 50.00 %") in markdown
    assert ("may stop after screening" in markdown) == stops
    assert ("goes on to the other seeds" in markdown) == (not stops)


def test_a_setting_whose_tuning_is_unfinished_says_so_and_draws_no_empty_figure(tmp_path):
    from experiments.where_it_pays import tables

    write_records(tmp_path / "noisy", [record("b1_lr0.05", 1, [0.4, 0.5], [0.4, 0.5])])
    markdown = tables.write_setting("noisy", tmp_path, tmp_path / "out", "abc")
    assert "(no method complete yet" in markdown and not (tmp_path / "out" / "noisy.png").exists()


def test_the_tables_refuse_records_of_another_commit_or_a_dirty_tree(tmp_path):
    from experiments.where_it_pays import tables

    write_records(tmp_path / "noisy", [record("epbt", 1, [0.5], [0.5], commit="abc", dirty=True),
                                       record("gce", 1, [0.5], [0.5], commit="def")])
    with pytest.raises(tables.RecordError, match="epbt-seed1, gce-seed1 were not made at the pinned commit"):
        tables.load_records(tmp_path, "noisy", "abc")
