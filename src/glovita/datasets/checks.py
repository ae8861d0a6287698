"""The quick check before training: every file every split lists exists and its header decodes."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset, Subset

_SHOWN = 20
"""Bad files named in the message (all are counted)."""


def _files(dataset: Dataset) -> tuple[list[Path], Callable[[Path], None] | None]:
    """The files a dataset reads and its header check (none for in-memory datasets and feature files, which
    were read when the dataset was built)."""
    if isinstance(dataset, Subset):
        paths, check = _files(dataset.dataset)
        return [paths[i] for i in dataset.indices] if paths else [], check
    check = getattr(dataset, "check_file", None)
    samples = getattr(dataset, "samples", None)
    if check is None or samples is None:
        return [], None
    return [Path(path) for path, _ in samples], check


@dataclass(frozen=True)
class FileProblem:
    """A file of a split that cannot be used, and why (the check's one-line message)."""

    split: str
    path: Path
    message: str


def find_file_problems(splits: dict[str, Dataset | None], workers: int = 8) -> tuple[list[FileProblem], int]:
    """Check every listed file of every split in parallel (its header decodes; label maps are read whole and must
    fit their image); returns the problems, in split order, and the number of files checked."""
    jobs: list[tuple[str, Path, Callable[[Path], None]]] = []
    for split, dataset in splits.items():
        if dataset is None:
            continue
        paths, check = _files(dataset)
        if check is not None:
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
    return problems, len(jobs)


def check_split_files(splits: dict[str, Dataset | None], workers: int = 8) -> int:
    """Check every listed file of every split; raise once, listing the bad files (up to 20) with the split each is
    in. Returns the number of files checked."""
    problems, checked = find_file_problems(splits, workers)
    if problems:
        listed = [f"{p.split}: {p.message}" for p in problems]
        shown = "; ".join(listed[:_SHOWN]) + ("; ..." if len(listed) > _SHOWN else "")
        raise ValueError(
            f"{len(problems)} of {checked} files of the dataset cannot be used: {shown}. Fix or remove them (the "
            "split and label files name them), or pass --data.no_check_files to skip this check. glovita_check_dataset "
            "lists them all."
        )
    return checked
