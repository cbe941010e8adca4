"""Import paths, ``module:attribute``, as uvicorn and entry points write them: a user's model or data."""
from __future__ import annotations

import importlib
import os
import platform
import sys
from typing import Any

from epbt_deap.errors import EpbtError, one_line


def import_callable(path: str, kind: str, role: str, error: type[EpbtError]) -> Any:
    """The callable at ``path`` (``module:attribute``, the attribute possibly dotted), the current folder
    searched too, as ``python -m`` would (the console script does not put it on ``sys.path``); a one-line
    ``error`` names what failed.

    ``kind`` and ``role`` name it in messages: ``model``, ``factory``; ``dataset``, ``loader``.
    """
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise error(f"{kind} {path!r}: an import path is 'module:{role}'")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as failure:  # any failure to import the user's module is theirs to fix
        missing = isinstance(failure, ModuleNotFoundError) and failure.name == module_name.split(".")[0]
        hint = "; run from the folder that holds it, or put that folder on PYTHONPATH" if missing else ""
        raise error(f"{kind} {path!r}: cannot import module {module_name!r} on {platform.node()} "
                    f"({one_line(failure)}){hint}") from None
    found: Any = module
    for part in attribute.split("."):  # module:Class.factory, as entry points allow
        found = getattr(found, part, None)
    if not callable(found):
        raise error(f"{kind} {path!r}: module {module_name!r} has no callable {attribute!r}")
    return found
