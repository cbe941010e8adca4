"""What a run ran on: one entry per start, resume or replay, appended to ``provenance.json``."""
from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

import epbt_deap
from epbt_deap.errors import RunDirError, write_errors_named
from epbt_deap.execution.protocol import Pool
from epbt_deap.rundir.checkpoints import write_atomically
from epbt_deap.rundir.layout import RunLayout, utc_now
from epbt_deap.rundir.logs import read_provenance

logger = logging.getLogger("epbt_deap")

GIT_TIMEOUT_S = 5


def _git(*args: str) -> str | None:
    """``git args`` in this package's folder: its output, or None where git or a checkout is missing."""
    try:
        done = subprocess.run(["git", "-C", str(Path(epbt_deap.__file__).parent), *args],
                              capture_output=True, text=True, timeout=GIT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def source_version() -> dict[str, Any]:
    """The git commit of this package's source, and whether tracked files differ from it (None: not a checkout)."""
    if _git("ls-files", "--error-unmatch", "__init__.py") is None:  # installed, not a checkout of this package
        return {"git_commit": None, "git_dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": _git("rev-parse", "HEAD"), "git_dirty": None if status is None else bool(status)}


def provenance(command: str, pool: Pool, backend: str, data: str, num_classes: int) -> dict[str, Any]:
    """This process's software, machine and workers, for a ``command`` ('run', 'resume' or 'replay'), and the
    data it loaded: ``data`` describes the splits in one line."""
    return {
        "command": command,
        "started": utc_now(),
        "argv": sys.argv,
        "epbt_deap": epbt_deap.__version__,
        **source_version(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "backend": backend,
        "devices": pool.devices,
        "workers": pool.workers,
        "torch_threads_per_worker": pool.threads_per_worker,
        "data": data,
        "num_classes": num_classes,
    }


def record_provenance(layout: RunLayout, entry: dict[str, Any]) -> None:
    """Append ``entry`` to the run's ``provenance.json`` (a list, oldest first). An unreadable one is added
    to ``provenance.damaged.json`` (which keeps every one, in turn) and a new list started."""
    try:
        entries = read_provenance(layout)
    except RunDirError as error:
        with write_errors_named(layout.damaged_provenance), open(layout.damaged_provenance, "ab") as kept:
            kept.write(layout.provenance.read_bytes())
        logger.warning("%s; kept in %s, and a new one started", error, layout.damaged_provenance.name)
        entries = []
    entries.append(entry)
    text = json.dumps(entries, indent=1) + "\n"
    write_atomically(layout.provenance, text.encode())
