"""Error types of GloViTa's own (importable without torch, so the CLI can catch them while parsing)."""


class DiskFullError(OSError):
    """A file did not fit on the disk (its temp file is already removed)."""
