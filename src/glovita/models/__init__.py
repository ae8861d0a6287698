"""Encoder + optional aggregation + head, assembled by `factory.py`."""
