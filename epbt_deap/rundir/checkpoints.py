"""Atomic writes of model checkpoints and run files, and removal of unreferenced checkpoints."""
from __future__ import annotations

import io
import os
import pickle
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from epbt_deap.errors import EpbtError, write_errors_named


class CheckpointError(EpbtError):
    """A checkpoint or state file that is missing, truncated or corrupt."""


def write_atomically(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename it into place.

    A crash at any moment leaves either the old file or the new one, never a partial one.
    An OS error (a full disk, an I/O error) becomes a one-line RunWriteError naming ``path``.
    """
    path = Path(path)
    with write_errors_named(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def interruption_behind(error: BaseException) -> BaseException | None:
    """The Ctrl-C or termination (an exception that is not an ``Exception``) that ``error`` stands for.

    ``torch.save`` cut short by a signal while it serialises fails again on closing its zip
    stream, and reports a RuntimeError whose context is the interruption: the caller
    must see the interruption, not an error about a checkpoint that was never finished.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if not isinstance(current, Exception):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def checkpoint_bytes(payload: dict[str, Any]) -> bytes:
    """``torch.save`` of ``payload``, in memory: written out afterwards, a failed write keeps its errno."""
    buffer = io.BytesIO()
    try:
        torch.save(payload, buffer)
    except Exception as error:
        interruption = interruption_behind(error)
        if interruption is not None:
            raise interruption from None
        raise
    return buffer.getvalue()


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> None:
    """Save a checkpoint dict (state dicts, genes, epochs) atomically."""
    write_atomically(path, checkpoint_bytes(payload))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint saved by :func:`save_checkpoint`, or raise a one-line CheckpointError."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as error:  # torch.load raises many kinds for damaged bytes (KeyError, struct.error, ...)
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(error).__name__})") from None


def save_pickle(obj: Any, path: str | Path) -> None:
    write_atomically(path, pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


#: Modules that moved into the layer packages (issue 23): states pickled before name the old paths.
MOVED_MODULES = {
    **{f"epbt_deap.{name}": f"epbt_deap.evolution.{name}" for name in
       ("space", "individual", "operators", "toolbox", "algorithms", "statistics", "learnability")},
    **{f"epbt_deap.{name}": f"epbt_deap.execution.{name}" for name in
       ("evaluation", "pool", "ray_pool", "shipping", "training", "vectorized", "taylorglo")},
    **{f"epbt_deap.{name}": f"epbt_deap.rundir.{name}" for name in
       ("recorder", "checkpoints", "provenance", "extension", "show")},
}


class StateUnpickler(pickle.Unpickler):
    """An unpickler that finds classes and functions under their module paths before the move."""

    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(MOVED_MODULES.get(module, module), name)


def load_pickle(path: str | Path) -> Any:
    try:
        with open(path, "rb") as stream:
            return StateUnpickler(stream).load()
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except (AttributeError, ImportError) as error:  # it names a class or module this version lacks
        raise CheckpointError(f"{path} was written by an epbt-deap version this one cannot read "
                              f"({type(error).__name__}: {error}); resume it with the version that wrote it") from None
    except (EOFError, pickle.UnpicklingError, ValueError) as error:
        raise CheckpointError(f"{path} is truncated or corrupt ({type(error).__name__})") from None


def remove_unreferenced(folder: str | Path, referenced: Iterable[str | Path | None]) -> list[Path]:
    """Delete the ``*.pt`` files in ``folder`` that no path in ``referenced`` names.

    Also removes temporary files that a killed writer left behind; call it only while
    nothing is being written to ``folder``.
    """
    keep = {Path(path).resolve() for path in referenced if path}
    candidates = [*Path(folder).glob("*.pt"), *Path(folder).glob(".*.tmp")]
    removed = [path for path in candidates if path.resolve() not in keep]
    for path in removed:
        with write_errors_named(path):  # a read-only or stale file system: one line; the state is saved
            path.unlink(missing_ok=True)
    return removed
