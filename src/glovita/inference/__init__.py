"""Rebuilding trained models from run directories and predicting with them (glovita_infer)."""
