"""The research behind docs/results.md, beside its records: one package per study, run with ``python -m``."""
