"""--backend ray starts its own local Ray unless told to join a cluster, and a cluster that
does not answer is a one-line error within seconds, before any work."""
import time

import pytest
import ray  # the test extra installs it
from click.testing import CliRunner

from cli.main import main
from epbt_deap.execution.pool import DeviceError
from epbt_deap.execution.ray_pool import RayPool
from tests.helpers import tiny_yaml


def test_an_address_where_no_cluster_answers_is_one_line_before_any_work(tmp_path):
    config = tiny_yaml(tmp_path / "tiny.yaml")
    started = time.monotonic()
    result = CliRunner().invoke(main, ["evolve", "--config", str(config), "--backend", "ray",
                                       "--ray-address", "127.0.0.1:1", "--run-dir", str(tmp_path / "run")])
    assert time.monotonic() - started < 30
    assert result.exit_code == 2
    assert result.output.startswith("error: no Ray cluster answers at 127.0.0.1:1")
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "run").exists()


class RayStarted(Exception):
    pass


def test_without_an_address_a_local_ray_starts_rather_than_joining_a_running_cluster(monkeypatch):
    asked = {}

    def init(**options):
        asked.update(options)
        raise RayStarted

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(RayStarted):
        RayPool(lambda device: None, (), "cpu")
    assert asked["address"] == "local"


def test_a_ray_the_pool_started_is_shut_down_when_it_closes(monkeypatch):
    """Here it closes at once, refusing cuda on a cluster without GPUs: the Ray it started goes too."""
    ray_is = {"up": False}
    monkeypatch.setattr(ray, "is_initialized", lambda: ray_is["up"])
    monkeypatch.setattr(ray, "init", lambda **options: ray_is.update(up=True))
    monkeypatch.setattr(ray, "shutdown", lambda: ray_is.update(up=False))
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    with pytest.raises(DeviceError, match="the Ray cluster has no GPU"):
        RayPool(lambda device: None, (), "cuda")
    assert not ray_is["up"]
