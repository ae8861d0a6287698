"""glovita_check_dataset: every split built as training builds it, every file checked as training checks it before
its first step (but all problems listed, not the first 20), samples and classes counted per split, and for label
maps the share of pixels of each class."""

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset, Subset

from glovita.configs.check_dataset import CheckDatasetConfig
from glovita.datasets.checks import FileProblem, find_file_problems
from glovita.datasets.factory import build_datasets
from glovita.tasks.factory import build_task


@dataclass(frozen=True)
class SplitCounts:
    samples: int
    classes: dict[str, int] = field(default_factory=dict)
    """Samples per class name (positives per label for multilabel); empty for regression and label maps."""
    pixel_share: dict[str, float] = field(default_factory=dict)
    """Label maps: the share of labelled pixels per class name (pixels of the ignore index left out)."""


@dataclass(frozen=True)
class DatasetCheck:
    counts: dict[str, SplitCounts]
    problems: list[FileProblem]
    checked_files: int


def _base(dataset: Dataset) -> tuple[Dataset, list[int] | None]:
    if isinstance(dataset, Subset):
        return dataset.dataset, list(dataset.indices)
    return dataset, None


def _class_counts(targets: list, class_names: list[str]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for target in targets:
        values = target.tolist() if hasattr(target, "tolist") else target
        if isinstance(values, list | tuple):  # multilabel rows: positives per label
            counts.update(class_names[k] for k, v in enumerate(values) if v == 1)
        elif isinstance(values, int) and 0 <= values < len(class_names):
            counts[class_names[values]] += 1
    return {name: counts[name] for name in class_names}


def _pixel_share(dataset: Dataset, class_names: list[str], broken: set[Path]) -> dict[str, float]:
    base, indices = _base(dataset)
    reading = getattr(base, "masks", None)
    if reading is None:
        return {}
    paths = reading.paths if indices is None else [reading.paths[i] for i in indices]
    total = np.zeros(len(class_names), np.int64)
    for path in paths:
        if path in broken:
            continue
        values = base.load_label_map(path)  # type: ignore[attr-defined]  # datasets with masks have it
        total += np.bincount(values[values < len(class_names)], minlength=len(class_names))
    share = total / max(int(total.sum()), 1)
    return {name: float(value) for name, value in zip(class_names, share, strict=True)}


def check_dataset(cfg: CheckDatasetConfig) -> DatasetCheck:
    """Build the splits (a missing split file, a missing label or a label outside the classes stops here, as it
    stops training), then check every file and count."""
    task = build_task(cfg.data)
    splits = build_datasets(cfg.data, cfg.input_channels)
    named = {"train": splits.train, "val": splits.val, "test": splits.test}
    problems, checked = find_file_problems(named)
    broken_masks = {Path(p.message.split("'")[1]) for p in problems if p.message.startswith("Mask file '")}
    counts = {}
    for split, dataset in named.items():
        if dataset is None:
            continue
        targets = list(getattr(dataset, "targets", None) or (splits.train_targets if split == "train" else []))
        classes = _class_counts(targets, splits.class_names) if task.classifies else {}
        share = _pixel_share(dataset, splits.class_names, broken_masks) if task.dense else {}
        counts[split] = SplitCounts(len(dataset), classes, share)  # type: ignore[arg-type]
    return DatasetCheck(counts, problems, checked)


def report_lines(check: DatasetCheck, max_listed: int, id_root: Path | None = None) -> list[str]:
    """What glovita_check_dataset prints: counts per split, then every problem and the entries to drop (their ids
    relative to `id_root`, as split files list them, where the files are under it)."""

    def entry(path: Path) -> str:
        return (
            path.relative_to(id_root).as_posix() if id_root is not None and path.is_relative_to(id_root) else str(path)
        )

    lines = []
    for split, counts in check.counts.items():
        lines.append(f"{split}: {counts.samples} samples")
        if counts.classes:
            lines.append("  classes: " + ", ".join(f"{name} {n}" for name, n in counts.classes.items()))
        if counts.pixel_share:
            lines.append("  pixels: " + ", ".join(f"{name} {v:.1%}" for name, v in counts.pixel_share.items()))
    lines.append(f"{check.checked_files} files checked, {len(check.problems)} cannot be used.")
    for problem in check.problems[:max_listed]:
        lines.append(f"  {problem.split}: {problem.message}")
    if check.problems:
        lines.append("Entries to drop from the split/label files (or fix their files):")
        lines += [f"  {problem.split}\t{entry(problem.path)}" for problem in check.problems[:max_listed]]
    if len(check.problems) > max_listed:
        lines.append(f"  ... and {len(check.problems) - max_listed} more (raise --max_listed).")
    return lines
