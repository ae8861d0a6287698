"""GloViTa: typed, reproducible PyTorch training for whole-sample vision prediction."""

__version__ = "0.1.0"
