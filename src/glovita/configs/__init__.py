"""Pydantic config schema; never imports torch, so `--help` and validation stay fast."""
