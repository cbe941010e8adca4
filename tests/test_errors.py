"""Every user-facing error is an EpbtError, and the command line turns exactly those into one line."""
import pytest
from click.testing import CliRunner

import epbt_deap.report.writer
from cli.main import execute, main
from epbt_deap.checkpoints import CheckpointError
from epbt_deap.config import ConfigError
from epbt_deap.data import DataError
from epbt_deap.errors import EpbtError, RunDirError, WorkerError
from epbt_deap.models import UnknownModelError
from epbt_deap.pool import DeviceError
from epbt_deap.ray_pool import RayBackendError
from epbt_deap.report import ReportError
from epbt_deap.toolbox import OperatorError

USER_ERRORS = [CheckpointError, ConfigError, DataError, DeviceError, OperatorError, RayBackendError, ReportError,
               RunDirError, UnknownModelError, WorkerError]


class BrandNewError(EpbtError):
    """An error that the command line has never heard of."""


class BrandNewFailure(EpbtError):
    exit_code = 1
    resumable = True


@pytest.mark.parametrize("error_class", USER_ERRORS)
def test_every_user_facing_error_is_an_epbt_error(error_class):
    assert issubclass(error_class, EpbtError)


def raising(error):
    def action(observer):
        raise error

    return action


def test_a_new_error_subclass_is_one_line_and_its_exit_code(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        execute(raising(BrandNewError("the widget is missing")), tmp_path)
    assert exit.value.code == 2
    assert capsys.readouterr().err == "error: the widget is missing\n"


def test_a_resumable_error_says_how_to_resume(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        execute(raising(BrandNewFailure("evaluation of g001-000 failed: boom")), tmp_path)
    assert exit.value.code == 1
    assert capsys.readouterr().err == (f"error: evaluation of g001-000 failed: boom; the completed generations "
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
