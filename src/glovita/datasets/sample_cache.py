"""A persistent cache of the deterministic part of samples (data.cache_dir): decode, channel check, resampling and
pad/crop are done once and stored as .npz files, reused by later epochs and runs; random augmentation runs after it.

An entry's key is its files as they are now (path, size, mtime), the dataset settings that shape the sample and the
cache format version; the file name is a hash of the key and the file holds the key, so a changed file or setting
never reads an old entry (a stale entry is impossible by construction). Entries are written to a temporary file and
renamed (a killed run leaves no half entry under an entry's name); one that cannot be read is rebuilt.
"""

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from glovita.datasets.checks import file_key

CACHE_FORMAT = 1
"""Bumped when what an entry holds changes; entries of another format are not read."""


class SampleCache:
    """Prepared arrays by key under `folder/<kind>-v<format>/`; `settings` is the dataset's part of every key."""

    def __init__(self, folder: Path, kind: str, settings: str) -> None:
        self.folder = Path(folder) / f"{kind}-v{CACHE_FORMAT}"
        self.settings = settings
        self.hits = 0
        self.misses = 0

    def key(self, files: list[Path], extra: str = "") -> str:
        """The key of a sample made from `files` (its input, its label map) with sample-specific `extra` settings."""
        return "|".join([f"format={CACHE_FORMAT}", self.settings, extra, *(file_key(f) for f in files)])

    def _path(self, key: str) -> Path:
        return self.folder / f"{hashlib.sha256(key.encode()).hexdigest()[:40]}.npz"

    def load(self, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under `key`, or None (absent, damaged, or another key with the same hash)."""
        path = self._path(key)
        try:
            with np.load(path, allow_pickle=False) as archive:
                if str(archive["key"]) != key:
                    self.misses += 1
                    return None
                arrays = {name: archive[name] for name in archive.files if name != "key"}
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):  # damaged: rebuilt by the caller
            self.misses += 1
            return None
        self.hits += 1
        return arrays

    def store(self, key: str, arrays: dict[str, np.ndarray]) -> None:
        """Write the entry atomically: a unique temporary file in the cache folder, renamed onto the entry's name
        (two workers or ranks writing one entry write the same bytes; the last rename wins)."""
        self.folder.mkdir(parents=True, exist_ok=True)  # exist_ok: another process may make it first
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".npz")
        try:
            with os.fdopen(handle, "wb") as out:
                entry: dict[str, Any] = {"key": np.array(key), **arrays}
                np.savez(out, **entry)
            os.replace(temporary, self._path(key))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
