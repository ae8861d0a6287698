"""Applications built on training runs: cross-validation groups, sweeps and run comparisons (above
training/, below cli/)."""
