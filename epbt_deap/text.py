"""How the command line and ``show`` write a measure: one place, so that both read alike."""
from __future__ import annotations


def accuracy_text(value: float | None, missing: str = "n/a") -> str:
    """An accuracy to 4 places, or ``missing`` where none was measured (no validation set, no test)."""
    return missing if value is None else f"{value:.4f}"
