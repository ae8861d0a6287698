"""Time-series encoders, one module per kind; no factory code."""
