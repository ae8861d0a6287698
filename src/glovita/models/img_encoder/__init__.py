"""One module per kind; no factory code."""
