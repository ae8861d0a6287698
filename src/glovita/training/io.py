"""Atomic writes: a temp file in the same folder, then a rename, so readers never see a partial file."""

import json
import os
from pathlib import Path
from typing import Any

import torch


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def save_json(data: Any, path: Path) -> None:
    """Write JSON atomically (fsynced before the rename)."""
    tmp = _temp_path(path)
    with tmp.open("w") as handle:
        json.dump(data, handle, indent=2, default=str)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def save_torch(data: Any, path: Path) -> None:
    """torch.save atomically (fsynced before the rename)."""
    tmp = _temp_path(path)
    with tmp.open("wb") as handle:
        torch.save(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def link_or_copy(source: Path, target: Path) -> None:
    """Make `target` the same file as `source` (hard link, else copy), replacing it atomically."""
    tmp = _temp_path(target)
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        import shutil

        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
