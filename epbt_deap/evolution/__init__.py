"""The evolutionary layer, torch-free: genes and individuals, DEAP operators and toolbox, the loops,
the logbook's statistics and the learnability check of Eq. 1."""
