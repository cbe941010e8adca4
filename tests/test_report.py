import csv
import json
import sys
from pathlib import Path

import pytest
import yaml

from epbt_deap.errors import RunDirError, RunWriteError
from epbt_deap.report import ReportError
from epbt_deap.report.runs import RunRecord, group_runs, load_run, mean_curve
from epbt_deap.report.tables import epochs_to_exceed_table, final_accuracy_table, format_table
from epbt_deap.report.writer import write_report
from epbt_deap.rundir.logs import best_ancestry, trained_ancestry

# Test accuracy of the best individual, (epochs, best_test) per logbook row.
EPBT_CURVES = {0: [(2, 0.50), (4, 0.70), (6, 0.90)], 1: [(2, 0.60), (4, 0.82), (6, 0.80)]}
NONE_CURVES = {0: [(1, 0.3), (2, 0.5), (3, 0.6), (4, 0.7), (5, 0.72), (6, 0.74)],
               1: [(1, 0.3), (2, 0.5), (3, 0.6), (4, 0.7), (5, 0.74), (6, 0.76)]}
EPBT = "EPBT (taylorglo)"
NONE = "no PBT (cross_entropy)"


def config(name: str, seed: int, loss: str, algorithm: str | None) -> dict:
    evolution = {"population": 4, "elites": 2} | ({"algorithm": algorithm} if algorithm else {})
    return {"name": f"{name}_seed{seed}", "seed": seed, "data": {"dataset": "digits", "dir": f"/data{seed}"},
            "train": {"model": "digits_cnn", "loss": loss, "epochs_per_generation": 2},
            "evolution": evolution, "resources": {"device": "cpu"}}


def genes(seed: int, generation: int, child: int) -> dict:
    """TaylorGLO genes that drift with the generation, so the figures show something."""
    theta = {f"theta_{i}": (-1) ** i * (1 + i + seed) / 4 + 0.8 * generation - 0.3 * child for i in range(8)}
    return theta | {"lr": 0.1 / (1 + generation + child)}


def lineage(seed: int) -> list[dict]:
    """Population 4, 2 elites, 3 generations; each child's parent is in the previous generation."""
    rows = []
    for generation, size in enumerate([4, 2, 2]):
        for child in range(size):
            parent = None if generation == 0 else f"g{generation - 1:03d}-{child % 2:03d}"
            rows.append({"uid": f"g{generation:03d}-{child:03d}", "generation": generation, "parent": parent,
                         "partner": None, "genes": genes(seed, generation, child),
                         "fitness": 0.5 + 0.1 * generation + 0.01 * child, "test_accuracy": 0.5,
                         "train_loss": 1.0, "epochs": 2 * (generation + 1), "status": "ok", "seconds": 0.1})
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def write_run(root: Path, cfg: dict, curve: list, lineage_rows: list[dict] | None) -> Path:
    run_dir = root / cfg["name"]
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    write_jsonl(run_dir / "logbook.jsonl", [
        {"gen": gen, "evals": 4, "avg": 0.5, "std": 0.1, "min": 0.3, "max": 0.9, "best_test": test, "epochs": epochs}
        for gen, (epochs, test) in enumerate(curve)])
    if lineage_rows is not None:
        write_jsonl(run_dir / "lineage.jsonl", lineage_rows)
    return run_dir


@pytest.fixture
def run_dirs(tmp_path: Path) -> list[Path]:
    """Two seeds of EPBT (no evolution.algorithm key) and two of plain training, without lineage."""
    return ([write_run(tmp_path, config("tiny", seed, "taylorglo", None), EPBT_CURVES[seed], lineage(seed))
             for seed in EPBT_CURVES]
            + [write_run(tmp_path, config("plain", seed, "cross_entropy", "none"), NONE_CURVES[seed], None)
               for seed in NONE_CURVES])


@pytest.fixture
def groups(run_dirs: list[Path]) -> dict[str, list[RunRecord]]:
    return group_runs([load_run(run_dir) for run_dir in reversed(run_dirs)])


def test_seeds_are_grouped_by_method(groups):
    assert sorted(groups) == [EPBT, NONE]
    assert [run.seed for run in groups[EPBT]] == [0, 1]
    assert [run.name for run in groups[NONE]] == ["plain_seed0", "plain_seed1"]


def test_a_key_missing_from_an_older_run_matches_its_null_default():
    older = config("run", 0, "taylorglo", None)
    newer = config("run", 1, "taylorglo", None)
    newer["data"] = {**newer.get("data", {}), "test_subset": None}
    grouped = group_runs([RunRecord(Path("a"), older, [], []), RunRecord(Path("b"), newer, [], [])])
    assert [len(runs) for runs in grouped.values()] == [2]


def test_replays_of_several_seeds_are_one_method_apart_from_their_sources():
    sources = [RunRecord(Path(f"s{seed}"), config("run", seed, "taylorglo", None), [], []) for seed in (0, 1)]
    replays = [RunRecord(Path(f"r{seed}"), {**config("run_replay", seed, "taylorglo", None),
                                            "replay_of": f"/runs/s{seed}"}, [], []) for seed in (0, 1)]
    grouped = group_runs([*sources, *replays])
    assert {label: [run.run_dir.name for run in runs] for label, runs in grouped.items()} == {
        "EPBT": ["s0", "s1"], "replay": ["r0", "r1"]}


def test_methods_that_share_a_description_are_told_apart_by_name():
    def record(name: str, sigma: float) -> RunRecord:
        cfg = config(name, 0, "taylorglo", None)
        cfg["evolution"]["mutate"] = {"sigma": sigma}
        return RunRecord(Path(name), cfg, [], [])

    assert list(group_runs([record("tiny", 0.2), record("ablation", 0.3)])) == ["EPBT tiny", "EPBT ablation"]
    assert list(group_runs([record("same", 0.2), record("same", 0.3)])) == ["EPBT same #1", "EPBT same #2"]


def test_table1_is_mean_and_sample_std_of_final_accuracy_in_percent(groups):
    rows = {row["method"]: row for row in final_accuracy_table(groups)}
    assert rows[EPBT]["runs"] == 2 and rows[EPBT]["epochs"] == 6
    assert rows[EPBT]["mean"] == pytest.approx(85.0)
    assert rows[EPBT]["std"] == pytest.approx(7.0710678)  # 100 * sqrt(2 * 0.05**2 / 1)
    assert rows[NONE]["mean"] == pytest.approx(75.0)
    assert rows[NONE]["std"] == pytest.approx(1.4142136)


def test_mean_curve_averages_seeds_per_epoch(groups):
    epochs, mean, sem = mean_curve(groups[EPBT])
    assert epochs.tolist() == [2, 4, 6]
    assert mean == pytest.approx([0.55, 0.76, 0.85])
    assert sem == pytest.approx([0.05, 0.06, 0.05])


def test_table2_is_the_first_epoch_above_the_baseline_or_none(groups):
    rows = {(row["method"], row["baseline"]): row for row in epochs_to_exceed_table(groups)}
    assert set(rows) == {(EPBT, NONE), (NONE, EPBT)}
    assert rows[EPBT, NONE]["epochs_to_exceed"] == 4  # mean curve 0.55, 0.76 > 0.75 at epoch 4
    assert rows[EPBT, NONE]["baseline_mean"] == pytest.approx(75.0)
    assert rows[EPBT, NONE]["baseline_epochs"] == 6
    assert rows[NONE, EPBT]["epochs_to_exceed"] is None  # never above 0.85


def test_format_table_aligns_columns_and_shows_none_as_dash():
    text = format_table([{"method": "EPBT", "mean": 85.0, "std": None}, {"method": "no PBT", "mean": 5.25, "std": 1.5}])
    header, rule, first, second = text.splitlines()
    assert header.split() == ["method", "mean", "std"]
    assert first.split() == ["EPBT", "85.00", "-"] and second.split() == ["no", "PBT", "5.25", "1.50"]
    assert len(rule) == len(second) and first.index("85.00") + 5 == second.index("5.25") + 4


def lineage_row(uid: str, parent: str | None, fitness: float | None) -> dict:
    return {"uid": uid, "generation": int(uid[1:4]), "parent": parent, "genes": {}, "fitness": fitness, "epochs": 1}


def test_best_ancestry_follows_parents_of_the_latest_best():
    rows = [lineage_row(*values) for values in [
        ("g000-000", None, 0.5), ("g000-001", None, 0.6),
        ("g001-000", "g000-001", 0.7), ("g001-001", "g000-000", 0.65),
        ("g002-000", "g001-000", 0.8), ("g002-001", "g001-000", None),  # a failed evaluation
        ("g003-000", "g001-001", 0.8), ("g003-001", "g002-000", 0.4),  # ties with g002-000, later
    ]]
    assert [row["uid"] for row in best_ancestry(rows)] == ["g000-000", "g001-001", "g003-000"]
    assert best_ancestry([]) == []
    without_validation = [lineage_row("g000-000", None, None), lineage_row("g001-000", "g000-000", None),
                          {**lineage_row("g002-000", "g001-000", 0.0), "status": "failed"}]  # then resumed:
    without_validation.append(lineage_row("g002-001", "g001-000", None))
    assert [row["uid"] for row in best_ancestry(without_validation)] == ["g000-000", "g001-000", "g002-001"]
    with pytest.raises(RunDirError, match="parent g000-009 of g001-000 is missing"):
        best_ancestry([lineage_row("g001-000", "g000-009", 0.9)])


def test_write_report_writes_tables_and_figures(run_dirs, tmp_path, caplog):
    caplog.set_level("INFO", logger="epbt_deap")
    report = write_report(run_dirs, tmp_path / "report")
    written = sorted(path.name for path in (tmp_path / "report").iterdir())
    assert written == sorted(report.files) == sorted(path.name for path in report.files.values())
    with open(report.files["table1.csv"]) as stream:
        assert [line["method"] for line in csv.DictReader(stream)] == [line["method"] for line in report.table1]
    for name in ("accuracy.png", "loss_ancestry.png", "genes.png"):
        data = report.files[name].read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000, name
    assert "plain_seed0: no TaylorGLO ancestry" in caplog.text


@pytest.mark.parametrize("damage, message", [
    (lambda d: [f.unlink() for f in d.iterdir()], "not a run directory (no config.yaml)"),
    (lambda d: (d / "logbook.jsonl").unlink(), "not a run directory (no logbook.jsonl)"),
    (lambda d: (d / "logbook.jsonl").write_text('{"epochs": 1}\n'), "logbook.jsonl:1: missing gen, best_test"),
    (lambda d: (d / "lineage.jsonl").write_text("{\n"), "lineage.jsonl:1: not valid JSON"),
    (lambda d: (d / "config.yaml").write_text("name: [\n"), "config.yaml: not valid YAML"),
    (lambda d: (d / "config.yaml").write_text("name: cut\nseed: 1\ndata: {}\n"),
     "config.yaml: damaged or cut short, it lacks train, evolution, resources"),
    (lambda d: (d / "config.yaml").write_bytes(b"\x80\x02torch"), "config.yaml: not a text file (not UTF-8)"),
    (lambda d: (d / "lineage.jsonl").write_bytes(b"\xff\xfe"), "lineage.jsonl: not a text file (not UTF-8)"),
])
def test_bad_run_directories_raise_one_line_errors(run_dirs, damage, message):
    damage(run_dirs[0])
    with pytest.raises(RunDirError) as error:
        load_run(run_dirs[0])
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_run_without_logbook_rows_reads_as_one_in_generation_0(run_dirs):
    (run_dirs[0] / "logbook.jsonl").write_text("")  # the run writes its first row as generation 0 ends
    record = load_run(run_dirs[0])
    assert (record.logbook, record.generation) == ([], -1)  # write_report refuses it: tests/test_replay_report.py


def test_the_drawn_ancestry_leaves_out_failed_ancestors_as_the_schedule_does(run_dirs):
    rows = [{**row, "status": "failed"} if row["uid"] == chain[1]["uid"] else row
            for chain in [best_ancestry(load_run(run_dirs[0]).lineage)] for row in load_run(run_dirs[0]).lineage]
    assert [row["uid"] for row in trained_ancestry(rows)] == [row["uid"] for row in best_ancestry(rows)
                                                              if row["status"] == "ok"]
    assert len(trained_ancestry(rows)) == len(best_ancestry(rows)) - 1


def test_no_runs_or_missing_directory_are_errors(tmp_path):
    with pytest.raises(ReportError, match="no run directories given"):
        write_report([], tmp_path)
    with pytest.raises(RunDirError, match="no such run directory"):
        load_run(tmp_path / "missing")
    (tmp_path / "file").write_text("")
    with pytest.raises(RunDirError, match="file: a file, not a run directory"):
        load_run(tmp_path / "file")


def test_a_report_folder_that_cannot_be_written_is_a_one_line_error(run_dirs, tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(RunWriteError, match=r"^cannot write .*afile/report: not a directory$"):
        write_report(run_dirs, tmp_path / "afile" / "report")


def test_missing_matplotlib_is_a_report_error(run_dirs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ReportError, match=r"pip install epbt-deap\[plots\]"):
        write_report(run_dirs, tmp_path / "report")
    assert not (tmp_path / "report").exists()  # said before any work: no tables left half-reported


def test_table1_carries_the_mean_final_nll_ece_and_training_accuracy():
    def record(seed: int, nll: float | None, train: float | None) -> RunRecord:
        rows = [{"epochs": 2, "best_test": 0.5, "best_test_nll": None, "best_test_ece": None},
                {"epochs": 4, "best_test": 0.6, "best_test_nll": nll, "best_test_ece": 0.05,
                 "best_train_accuracy": train, "best_memorised": None}]
        return RunRecord(Path(f"s{seed}"), config("gce", seed, "gce", "none"), rows, [])

    rows = final_accuracy_table({"gce": [record(0, 1.2, 0.9), record(1, 1.6, None)]})
    assert rows[0]["test_nll"] == pytest.approx(1.4) and rows[0]["test_ece"] == pytest.approx(0.05)
    assert rows[0]["train"] == pytest.approx(90.0) and rows[0]["memorised"] is None  # runs without it are left out
    old = final_accuracy_table(group_runs([RunRecord(Path("old"), config("old", 0, "taylorglo", None),
                                                     [{"epochs": 2, "best_test": 0.5}], [])]))
    assert old[0]["mean"] == pytest.approx(50.0) and old[0]["test_nll"] is None  # written before the measures
