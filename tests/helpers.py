"""Shared test helpers that must be importable: the tiny run's config, a JSON-lines reader, the paper's algorithmic
options, and pool work functions (module-level, so worker processes and Ray actors can unpickle them)."""
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from epbt_deap.config import Config, build_config
from epbt_deap.rundir import logs

#: The tiny run: 4 ResNet-8s on fake data, 3 generations of 1 epoch. Tests build it only through tiny().
_TINY = {
    "name": "tiny",
    "seed": 3,
    "data": {"dataset": "fake"},
    "train": {"model": "resnet8", "epochs_per_generation": 1, "batch_size": 32, "lr_milestones": [2]},
    "evolution": {"population": 4, "elites": 2, "generations": 3},
    "resources": {"device": "cpu", "cpu_workers": 0},
}


def tiny(overrides: Mapping[str, Any] = {}) -> Config:
    """The tiny run's config with dotted-key ``overrides`` (``{"evolution.generations": 2}``): the one way
    tests build it, the way ``--set`` does."""
    return build_config(_TINY, overrides)


def tiny_yaml(path: Path, overrides: Mapping[str, Any] = {}) -> Path:
    """Write ``tiny(overrides)`` as a config file at ``path``, for the command line; returns ``path``."""
    path.write_text(tiny(overrides).to_yaml())
    return path


def run_without_importing(code: str, module: str) -> str:
    """Run ``code`` in a fresh Python and check that it left ``module`` unimported; returns what it printed."""
    check = f"{code}\nimport sys; assert {module!r} not in sys.modules, '{module} was imported'"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


#: Algorithm 1 as printed: (taylorglo.init, partners, repair_tries, elites_train, taylorglo_scale).
PAPER_ALGORITHM = ("uniform", "population", 0, False, 1.0)


def algorithm_options(config):
    """The options beyond the paper, in PAPER_ALGORITHM's order."""
    evolution = config.evolution
    return (evolution.taylorglo.init, evolution.partners, evolution.repair_tries, evolution.elites_train,
            config.train.taylorglo_scale)


def in_bounds(space, values):
    """Whether ``values`` holds one value per gene of ``space``, each within its gene's bounds."""
    return len(values) == len(space.genes) and all(gene.low <= value <= gene.high
                                                   for gene, value in zip(space.genes, values))


def read_jsonl(path):
    """The rows of a JSON-lines file (the package's reader); none while it does not exist."""
    return logs.read_jsonl(Path(path), {}) if Path(path).exists() else []


def untimed(rows):
    """Logbook rows without their ``time`` (when each generation finished), which no two runs share."""
    return [{key: value for key, value in row.items() if key != "time"} for row in rows]


def run_files(run_dir):
    """Each file of a run directory and its bytes, but the lock file, which names the last process to lock it."""
    return {path: path.read_bytes() for path in Path(run_dir).rglob("*") if path.is_file() and path.name != ".lock"}


def read_logbook(path):
    """A run's logbook rows, without their timestamps: what two runs of the same config agree on."""
    return untimed(read_jsonl(path))


class RowObserver:
    """A run observer that hands each finished generation's logbook row to ``on_row``."""

    def __init__(self, on_row):
        self.on_row = on_row

    def generation_started(self, generation, evaluations):
        pass

    def evaluation_finished(self, result):
        pass

    def generation_finished(self, row):
        self.on_row(row)


def make_context(device, data):
    return {"device": device, "pid": os.getpid(), "data": data, "calls": [0]}


@dataclass(frozen=True)
class Fragile:
    uid: str
    marker: str  # a file: dies while it is missing ("flaky": creates it first), always when "doomed"


def die_unless_marked(context, item):
    marker = Path(item.marker)
    if item.uid == "doomed" or not marker.exists():
        marker.touch()
        os._exit(1)  # the worker process dies, as on a segfault or an OOM kill
    return item.uid


def torch_threads(context, item):
    return torch.get_num_threads()


# A tiny digits run (about a second) whose best individual, g002-000, is an old elite (kept unchanged
# through generation 3) and the child of another, g000-000: its lineage epoch 1 is clock epoch 2,
# past the lr milestone. lr and momentum evolve too.
OLD_ELITE = {
    "name": "old_elite",
    "seed": 11,
    "data": {"dataset": "digits", "train_subset": 300},
    "train": {"epochs_per_generation": 1, "batch_size": 32, "lr_milestones": [2]},
    "evolution": {"population": 4, "elites": 2, "generations": 4,
                  "elites_train": False, "taylorglo": {"init": "uniform"},  # Algorithm 1: elites persist as they are
                  "genes": {"lr": {"low": 0.01, "high": 0.3, "scale": "log"}, "momentum": {"low": 0.5, "high": 0.95}}},
    "resources": {"device": "cpu", "cpu_workers": 0, "threads_per_worker": 1},
}


def make_no_context(device, data):
    raise RuntimeError("CUDA out of memory.\nTried to allocate 2.00 GiB")
