"""Every user-facing error is an EpbtError, and the command line turns exactly those into one line."""
import importlib
import inspect
import pkgutil

import pytest
from click.testing import CliRunner

import epbt_deap
import epbt_deap.report.writer
import epbt_deap.run
from cli.main import execute, main
from epbt_deap.errors import EpbtError


def package_exceptions():
    """Every exception class that a module of the package defines (Ray's module needs Ray, which the tests have)."""
    found = set()
    for module_info in pkgutil.walk_packages(epbt_deap.__path__, "epbt_deap."):
        module = importlib.import_module(module_info.name)
        found |= {value for value in vars(module).values() if inspect.isclass(value)
                  and issubclass(value, BaseException) and value.__module__ == module.__name__}
    return sorted(found, key=lambda error: error.__qualname__)


class BrandNewError(EpbtError):
    """An error that the command line has never heard of."""


class BrandNewFailure(EpbtError):
    exit_code = 1
    resumable = True


def test_every_exception_the_package_defines_is_an_epbt_error():
    defined = package_exceptions()
    names = {error.__name__ for error in defined}
    assert {"ScheduleError", "GenerationFailedError", "OperatorError", "RunWriteError", "DataError"} <= names
    assert [error.__name__ for error in defined if not issubclass(error, EpbtError)] == []


def raising(error):
    def action(observer):
        raise error

    return action


def evolve_raising(monkeypatch, error, run_dir):
    """``epbt-deap evolve`` (the quickstart) whose run raises ``error`` at once."""
    def run(config, run_dir, observer, overwrite):
        raise error

    monkeypatch.setattr(epbt_deap.run, "run", run)
    return CliRunner().invoke(main, ["evolve", "--config", "quickstart", "--run-dir", str(run_dir)])


def test_a_new_error_subclass_is_one_line_and_its_exit_code(tmp_path, monkeypatch):
    result = evolve_raising(monkeypatch, BrandNewError("the widget is missing"), tmp_path)
    assert result.exit_code == 2
    assert result.output == "error: the widget is missing\n"


def test_a_resumable_error_says_how_to_resume_once_the_run_directory_holds_a_run(tmp_path, monkeypatch):
    result = evolve_raising(monkeypatch, BrandNewFailure("evaluation of g000-000 failed: boom"), tmp_path)
    assert result.exit_code == 1
    assert result.output == (f"error: evaluation of g000-000 failed: boom; nothing was written to {tmp_path} yet: "
                             "run the same command again\n")
    (tmp_path / "config.yaml").write_text("name: written\n")
    result = evolve_raising(monkeypatch, BrandNewFailure("evaluation of g000-000 failed: boom"), tmp_path)
    assert result.exit_code == 1
    assert result.output == (f"error: evaluation of g000-000 failed: boom; no generation had completed; "
                             f"continue with: epbt-deap resume {tmp_path} (it starts generation 0 again)\n")
    (tmp_path / "state.pkl").write_bytes(b"")  # generation 0 has completed
    result = evolve_raising(monkeypatch, BrandNewFailure("evaluation of g001-000 failed: boom"), tmp_path)
    assert result.exit_code == 1
    assert result.output == (f"error: evaluation of g001-000 failed: boom; the completed generations "
                             f"are kept; continue with: epbt-deap resume {tmp_path}\n")


def test_an_unexpected_exception_is_not_swallowed_as_a_user_error(tmp_path, capsys):
    with pytest.raises(ZeroDivisionError):
        execute(raising(ZeroDivisionError("a bug")), tmp_path)
    assert "error:" not in capsys.readouterr().err


@pytest.mark.parametrize("error, code", [(BrandNewError("cannot draw"), 2), (BrandNewFailure("lost"), 1)])
def test_report_turns_any_epbt_error_into_one_line(monkeypatch, tmp_path, error, code):
    def write_report(run_dirs, out_dir):
        raise error

    monkeypatch.setattr(epbt_deap.report.writer, "write_report", write_report)
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == code
    assert result.output.strip().splitlines() == [f"error: {error}"]


def test_report_lets_a_bug_surface(monkeypatch, tmp_path):
    def write_report(run_dirs, out_dir):
        raise KeyError("a bug")

    monkeypatch.setattr(epbt_deap.report.writer, "write_report", write_report)
    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert isinstance(result.exception, KeyError) and "error:" not in result.output
