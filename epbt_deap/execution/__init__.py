"""The execution layer: what a worker does with a task (train, measure, save) and the pools that
carry tasks to workers, in processes or on Ray; the losses it trains with."""
