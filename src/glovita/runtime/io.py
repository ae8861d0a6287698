"""Atomic writes: a temp file in the same folder, then a rename, so readers never see a partial file.

Every file GloViTa writes goes through `atomic_path` (directly, or through save_json / save_torch)."""

import json
import math
import os
import shutil
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temp path beside `path` to write (a file or a folder); on success it is fsynced (files) and renamed onto
    `path`, on an error it is removed, so `path` is either the old or the complete new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
    try:
        yield tmp
        if tmp.is_file():
            _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def check_output_dir(folder: Path, flag: str = "--output_dir") -> None:
    """Check that `folder` can be made and written (a probe file, removed, and the folders made for it), before any
    work: a path under a file, a read-only mount or a full disk is answered in one line naming the folder, not with
    an OS traceback after the work."""
    import tempfile

    missing = [p for p in (folder, *folder.parents) if not p.exists()]  # made for the probe, removed after it
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".glovita-probe-"):
            pass
        for made in missing:  # deepest first: a refused run leaves no folder behind
            made.rmdir()
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ValueError(f"{flag} '{folder}' cannot be written ({reason}). Choose a folder you can write to.") from err


def strict_json(value: Any) -> Any:
    """`value` with every float that is not finite (NaN, inf) as None: strict JSON parsers (jq, JavaScript's
    JSON.parse, Go, Rust's serde) refuse bare NaN. Readers of metric files turn null back into NaN
    (`nan_for_null`)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(item) for item in value]
    return value


def nan_for_null(record: dict[str, Any]) -> dict[str, Any]:
    """A metrics record read back: a null value (a metric that was not a number when written) is NaN again."""
    return {key: math.nan if value is None else value for key, value in record.items()}


def json_text(data: Any, indent: int | None = None) -> str:
    """Strict JSON: non-finite floats written as null, never as bare NaN."""
    return json.dumps(strict_json(data), indent=indent, default=str, allow_nan=False)


def save_json(data: Any, path: Path) -> None:
    """Write strict JSON atomically (NaN and inf as null)."""
    with atomic_path(path) as tmp, tmp.open("w") as handle:
        handle.write(json_text(data, indent=2))
        handle.write("\n")


class _Checksummed:
    """A binary file whose bytes are counted and CRC32-summed as they are written (no second read)."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.size = 0
        self.crc32 = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        self.crc32 = zlib.crc32(data, self.crc32)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


def save_torch(data: Any, path: Path) -> tuple[int, int]:
    """torch.save atomically; returns the file's (size, CRC32)."""
    import torch  # here, so the JSON helpers serve commands that import no torch

    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        summed = _Checksummed(handle)
        torch.save(data, summed)  # type: ignore[arg-type]  # torch only calls write/flush
    return summed.size, summed.crc32


def file_crc32(path: Path, chunk_bytes: int = 16 << 20) -> int:
    """CRC32 of a file's bytes, read in chunks."""
    crc = 0
    with path.open("rb") as handle:
        while block := handle.read(chunk_bytes):
            crc = zlib.crc32(block, crc)
    return crc


def link_or_copy(source: Path, target: Path) -> None:
    """Make `target` the same file as `source` (hard link, else copy), replacing it atomically."""
    tmp = _temp_path(target)
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)


def read_json(path: Path) -> dict[str, Any]:
    """A run file's JSON object; {} when the file is missing or unreadable (a run that stopped early)."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def read_scores(path: Path) -> dict[str, Any]:
    """A metrics file (test_metrics.json, an inference metrics.json) with null read back as NaN; {} when missing."""
    return nan_for_null(read_json(path))


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """The epoch records of metrics.jsonl (null read back as NaN), skipping a last line cut by a kill; [] without
    the file."""
    try:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    except OSError:
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "epoch" in record:
            records.append(nan_for_null(record))
    return records
