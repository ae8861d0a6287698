"""The check before training: every file every split lists is read whole (images decoded, videos decoded to their
last frame, label maps read and fitted) in parallel, and what passed is remembered by path, size and modification
time, so a second run over unchanged files pays nothing.

A dataset takes part by having `samples` [(path, target), ...] and `check_file(path) -> dict | None` (the full
check; the dict is what it learned and wants back next time, e.g. a video's frame count). Optional: `check_inputs
(path)` (the files that check reads, default [path]: a label map's changes count too), `restore_check(path,
record)` (a remembered record given back; it may still refuse the file, e.g. too few frames for a clip) and
`check_notices()` (lines to print after the check, e.g. videos that will be padded)."""

import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset, Subset

_SHOWN = 20
"""Bad files named in the message (all are counted)."""

_SETTLED_SECONDS = 2.0
"""Files modified more recently than this are checked again next time rather than remembered: file systems stamp
mtimes coarsely, and a rewrite within the same tick, of the same size, would otherwise look unchanged."""

CHECK_VERSION = 2
"""Part of every remembered key: raising it forgets what older checks passed."""


def cache_dir() -> Path:
    """GloViTa's cache folder: $GLOVITA_CACHE_DIR, else $XDG_CACHE_HOME/glovita, else ~/.cache/glovita."""
    explicit = os.environ.get("GLOVITA_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "glovita"


def file_key(path: Path) -> str:
    """A file as it is now: absolute path, size and modification time (a rewrite changes the key)."""
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


class CheckedFiles:
    """checked_files.json in the cache folder: {key: record} of every file set that passed a full check."""

    def __init__(self) -> None:
        self.path = cache_dir() / "checked_files.json"
        try:
            loaded = json.loads(self.path.read_text())
        except (OSError, ValueError):
            loaded = {}
        self.known: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
        self.passed: dict[str, Any] = {}

    @staticmethod
    def key(kind: str, inputs: list[Path]) -> str | None:
        """The key of a check of `inputs` by `kind`; None when a file is missing or too fresh to trust its mtime."""
        try:
            if any(time.time() - p.stat().st_mtime < _SETTLED_SECONDS for p in inputs):
                return None
            return "||".join([f"{kind}#{CHECK_VERSION}", *(file_key(p) for p in inputs)])
        except OSError:
            return None

    def save(self) -> None:
        """Add what passed this time, in one atomic write (a cache that cannot be written is skipped); entries of
        deleted files are forgotten."""
        if not self.passed:
            return
        from glovita.runtime.io import save_json

        def exists(key: str) -> bool:
            return all(Path(part.split("|")[0]).exists() for part in key.split("||")[1:])

        try:
            kept = {key: record for key, record in self.known.items() if exists(key)}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            save_json({**kept, **self.passed}, self.path)
        except (OSError, ValueError):
            pass


def _files(dataset: Dataset) -> tuple[list[Path], Dataset | None]:
    """The files a dataset reads, and the dataset that checks them (none for in-memory datasets and feature files,
    which were read when the dataset was built)."""
    if isinstance(dataset, Subset):
        paths, checker = _files(dataset.dataset)
        return [paths[i] for i in dataset.indices] if paths else [], checker
    samples = getattr(dataset, "samples", None)
    if getattr(dataset, "check_file", None) is None or samples is None:
        return [], None
    return [Path(path) for path, _ in samples], dataset


@dataclass(frozen=True)
class FileProblem:
    """A file of a split that cannot be used, and why (the check's one-line message)."""

    split: str
    path: Path
    message: str


def _checker(dataset: Any, cache: CheckedFiles) -> Callable[[Path], None]:
    """One file's check through the cache: a remembered record is given back (restore_check), else the full
    check runs and its record is remembered."""
    kind = type(dataset).__name__
    restore = getattr(dataset, "restore_check", None)
    inputs = getattr(dataset, "check_inputs", lambda path: [path])

    def check(path: Path) -> None:
        key = cache.key(kind, inputs(path))
        if key is not None and key in cache.known:
            if restore is not None:
                restore(path, cache.known[key])
            return
        record = dataset.check_file(path)
        if restore is not None and record is not None:
            restore(path, record)
        if key is not None:
            cache.passed[key] = record

    return check


def find_file_problems(
    splits: dict[str, Dataset | None], workers: int = 8, notices: list[str] | None = None
) -> tuple[list[FileProblem], int]:
    """Check every listed file of every split in parallel (read whole; label maps must fit their image); returns
    the problems, in split order, and the number of files checked. Datasets' notices are added to `notices`."""
    cache = CheckedFiles()
    jobs: list[tuple[str, Path, Callable[[Path], None]]] = []
    checkers: list[Any] = []
    for split, dataset in splits.items():
        if dataset is None:
            continue
        paths, checker = _files(dataset)
        if checker is not None:
            check = _checker(checker, cache)
            checkers.append(checker)
            jobs += [(split, path, check) for path in paths]

    def problem(job: tuple[str, Path, Callable[[Path], None]]) -> FileProblem | None:
        split, path, check = job
        try:
            check(path)
        except (FileNotFoundError, ValueError) as err:
            return FileProblem(split, path, str(err))
        return None

    with ThreadPoolExecutor(max_workers=workers) as pool:
        problems = [p for p in pool.map(problem, jobs) if p is not None]
    cache.save()
    if notices is not None:
        for checker in checkers:
            notices += getattr(checker, "check_notices", lambda: [])()
    return problems, len(jobs)


def check_split_files(splits: dict[str, Dataset | None], workers: int = 8) -> int:
    """Check every listed file of every split; raise once, listing the bad files (up to 20) with the split each is
    in; print the datasets' notices (e.g. short videos that will be padded). Returns the number of files checked."""
    notices: list[str] = []
    problems, checked = find_file_problems(splits, workers, notices)
    if problems:
        listed = [f"{p.split}: {p.message}" for p in problems]
        shown = "; ".join(listed[:_SHOWN]) + ("; ..." if len(listed) > _SHOWN else "")
        raise ValueError(
            f"{len(problems)} of {checked} files of the dataset cannot be used: {shown}. Fix or remove them (the "
            "split and label files name them), or pass --data.no_check_files to skip this check. glovita_check_dataset "
            "lists them all."
        )
    from glovita.runtime.progress import print_line

    for notice in dict.fromkeys(notices):  # a dataset shared by two splits says it once
        print_line(f"warning: {notice}")
    return checked
