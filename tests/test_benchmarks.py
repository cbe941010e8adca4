"""The benchmark scripts' own bookkeeping, on a tiny run: a GPU session must not be spent finding it broken."""
import importlib.util
import sys
from pathlib import Path

import yaml

from tests.helpers import tiny

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load_script(name, monkeypatch):
    """benchmarks/NAME.py as a module (its dataclasses need it in sys.modules while it loads)."""
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_the_throughput_benchmark_breaks_a_whole_run_down(tmp_path, monkeypatch):
    throughput = load_script("throughput", monkeypatch)
    tree = yaml.safe_load(tiny({"evolution.generations": 2}).to_yaml())
    evaluations = 4 + 4  # the elites retrain, by default
    rows, detail = throughput.whole_run_rows("tiny", tree, "cpu", tmp_path, compare=False)
    assert detail["evaluations"] == detail["model_epochs"] == evaluations
    assert detail["run_s"] > 0 and set(detail["phases_s"]) >= {"setup", "evaluation", "recording", "select_vary"}
    assert len(rows) == 1 and rows[0].name.startswith("(d) run(): ") and rows[0].model_epochs == evaluations
