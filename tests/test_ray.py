"""--backend ray on a local Ray instance gives the same run as the local pool."""
import json

import pytest
import ray  # the test extra installs it: a broken install fails here instead of skipping every Ray test
import torch

from epbt_deap.run import resume, run
from tests.helpers import (Fragile, RowObserver, die_unless_marked, make_context, read_jsonl, read_logbook, tiny,
                           torch_threads)


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


#: Ray's actors and the local pool train with as many torch threads: torch's CPU kernels may round their
#: sums in an order that depends on them (a CPU without AVX2 moved the NLL in its 7th digit, 2 threads against 1).
ONE_THREAD = {"resources.threads_per_worker": 1}


@pytest.fixture(scope="module")
def local_logbook(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("local") / "run"
    run(tiny(ONE_THREAD), run_dir)
    return read_logbook(run_dir / "logbook.jsonl")


@pytest.mark.slow
@pytest.mark.parametrize("shared_storage", [True, False], ids=["shared-run-dir", "checkpoints-as-bytes"])
def test_ray_backend_matches_the_local_pool_and_resumes(local_ray, local_logbook, tmp_path, shared_storage):
    ray_config = tiny({**ONE_THREAD, "resources.backend": "ray", "resources.cpu_workers": 2,
                       "resources.shared_storage": shared_storage})
    with pytest.raises(KeyboardInterrupt):
        run(ray_config, tmp_path / "ray", observer=RowObserver(stop_after_generation_1))
    assert [row["gen"] for row in resume(tmp_path / "ray").logbook] == [0, 1, 2]  # generation 2 on Ray
    assert read_logbook(tmp_path / "ray" / "logbook.jsonl") == local_logbook
    assert len(list((tmp_path / "ray" / "checkpoints").glob("*.pt"))) <= ray_config.evolution.population + 1
    assert [entry["backend"] for entry in json.loads((tmp_path / "ray" / "provenance.json").read_text())] == \
        ["ray", "ray"]


def stop_after_generation_1(row):
    if row["gen"] == 1:
        raise KeyboardInterrupt


def test_a_dead_actor_is_restarted_and_its_call_retried_then_failed(local_ray, tmp_path):
    import torch

    from epbt_deap.execution.ray_pool import RayPool

    (tmp_path / "steady").touch()
    items = [Fragile("flaky", str(tmp_path / "flaky")), Fragile("steady", str(tmp_path / "steady")),
             Fragile("doomed", str(tmp_path / "doomed"))]
    with RayPool(make_context, (torch.ones(1),), "cpu", cpu_workers=1) as pool:
        results = pool.map(die_unless_marked, items, on_failure=lambda item, reason: f"failed: {reason}")
        assert results == ["flaky", "steady", "failed: its Ray actor died, also on the retry"]
        assert pool.map(die_unless_marked, items[1:2]) == ["steady"]  # the dead actor was replaced


@pytest.mark.slow
def test_ray_actors_train_vectorised_groups(local_ray, tmp_path):
    config = tiny({"resources.backend": "ray", "resources.cpu_workers": 2, "train.trainer": "vectorized"})
    summary = run(config, tmp_path / "ray")
    lineage = read_jsonl(tmp_path / "ray" / "lineage.jsonl")
    assert len(lineage) == 4 + 4 * 2 and all(row["status"] == "ok" for row in lineage)
    assert (tmp_path / "ray" / "checkpoints" / f"{summary.best_uid}.pt").exists()


@pytest.mark.slow
def test_replay_on_ray_starts_one_actor(local_ray, tmp_path, monkeypatch):
    from epbt_deap.config import load_config
    from epbt_deap.execution import ray_pool
    from epbt_deap.replay import replay

    source = tmp_path / "source"
    run(tiny({"evolution.generations": 2}), source)
    on_ray = {"resources.backend": "ray", "resources.cpu_workers": 2}
    (source / "config.yaml").write_text(load_config(source / "config.yaml", on_ray).to_yaml())
    actors_started = []

    class RecordingRayPool(ray_pool.RayPool):
        def close(self):
            actors_started.append(len(self.actors))
            super().close()

    monkeypatch.setattr(ray_pool, "RayPool", RecordingRayPool)
    replay(source, tmp_path / "replay")
    assert actors_started == [1]
    assert [entry["workers"] for entry in json.loads((tmp_path / "replay" / "provenance.json").read_text())] == [1]


def test_cuda_on_a_ray_cluster_without_gpus_is_a_one_line_error(local_ray):
    from epbt_deap.execution.pool import DeviceError
    from epbt_deap.execution.ray_pool import RayPool

    with pytest.raises(DeviceError, match="the Ray cluster has no GPU"):
        RayPool(make_context, (None,), "cuda", cpu_workers=1)
    assert ray.is_initialized()  # the caller's Ray stays up


def test_ray_actors_use_the_threads_asked_for(local_ray):
    from epbt_deap.execution.ray_pool import RayPool

    with RayPool(make_context, (None,), "cpu", cpu_workers=1, threads=2) as pool:
        assert pool.map(torch_threads, [0]) == [2] and pool.threads_per_worker == 2


@pytest.mark.slow
def test_a_users_model_by_import_path_trains_on_ray_actors(local_ray, tmp_path, monkeypatch):
    """The import path travels as a string; the actors import the user's module from the driver's folder."""
    (tmp_path / "raynet.py").write_text(
        "from torch import nn\n\n\ndef build(num_classes, in_channels):\n"
        "    return nn.Sequential(nn.Conv2d(in_channels, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),\n"
        "                         nn.Linear(4, num_classes))\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = tiny({"train.model": "raynet:build", "evolution.generations": 1,
                   "resources.backend": "ray", "resources.cpu_workers": 2})
    run(config, tmp_path / "run")
    rows = read_jsonl(tmp_path / "run" / "lineage.jsonl")
    assert len(rows) == config.evolution.population and all(row["status"] == "ok" for row in rows)
    state = torch.load(tmp_path / "run" / "best.pt", weights_only=True)["model"]
    assert state["0.weight"].shape[0] == 4  # raynet's first layer: the user's network trained on the actors


def test_gpu_actors_ask_for_a_share_of_a_gpu_and_of_a_cpu():
    from epbt_deap.execution.ray_pool import actor_resources

    count, options = actor_resources(gpus=8, workers_per_gpu=4, cpu_workers=0, cpus=8)
    assert count == 32 and options == {"num_gpus": 0.25, "num_cpus": 0.25}
    assert actor_resources(gpus=0, workers_per_gpu=4, cpu_workers=0, cpus=6) == (6, {"num_cpus": 1})
    assert actor_resources(gpus=0, workers_per_gpu=4, cpu_workers=2, cpus=6) == (2, {"num_cpus": 1})
