"""The progress bar per generation: the command line's and the notebook's are one observer."""
import io
import math

from cli.main import ProgressObserver
from epbt_deap.execution.protocol import EvalResult
from epbt_deap.progress import GenerationProgress

ROW = {"gen": 3, "evals": 2, "max": 0.75, "avg": 0.5, "best_test": 0.7, "epochs": 8}


def result(uid: str, fitness: float) -> EvalResult:
    return EvalResult(uid, fitness, 0.5, 1.0, 4, None, "ok", 0.1)


def test_the_bar_counts_a_generations_models_and_shows_the_last_fitness():
    screen = io.StringIO()
    progress = GenerationProgress("gen", file=screen, disable=False, mininterval=0)
    progress.generation_started(3, evaluations=2)
    progress.evaluation_finished(result("g003-000", 0.6125))
    assert progress.bar.n == 1
    assert "gen 3" in screen.getvalue() and "last=0.613" in screen.getvalue()
    progress.evaluation_finished(result("g003-001", math.nan))
    assert progress.bar.n == 2 and "last=n/a" in screen.getvalue()
    progress.generation_finished(ROW)
    assert progress.bar is None


def test_a_finished_result_before_any_generation_started_is_ignored():
    progress = GenerationProgress(disable=True)
    progress.evaluation_finished(result("g000-000", 0.5))
    progress.generation_finished(ROW)
    assert progress.bar is None


def test_the_command_line_adds_one_summary_line_per_generation(capsys):
    observer = ProgressObserver()
    observer.generation_started(3, evaluations=2)
    observer.generation_finished(ROW)
    out = capsys.readouterr().out
    assert out.splitlines() == ["gen   3 | evals   2 | best 0.7500 | mean 0.5000 | test of best 0.7000 | epoch 8"]
