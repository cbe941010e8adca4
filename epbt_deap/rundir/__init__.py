"""The run-directory layer: its layout, writers (logs, state, checkpoints, provenance, TensorBoard),
lock and readers (logs, ``show``). The readers are torch-free."""
