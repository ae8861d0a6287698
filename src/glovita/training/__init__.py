"""Training loop, optimizer/scheduler factory, checkpoints, run directory, runtime-derived values."""
