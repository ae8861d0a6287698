"""Metrics via torchmetrics; stable keys are listed in `keys.py` (torch-free)."""
