"""Split helpers shared by datasets: stratified hold-out and subsampling with a fixed seed."""

from collections.abc import Sequence

import numpy as np


def _groups(targets: Sequence[object], stratify: bool) -> list[np.ndarray]:
    """Item indices per class (in sorted class order) when `stratify`, else all items as one group."""
    indices = np.arange(len(targets))
    if not stratify:
        return [indices]
    labels = np.asarray([str(t) for t in targets])
    return [indices[labels == label] for label in np.unique(labels)]


def stratified_split(
    targets: Sequence[object], fraction: float, seed: int, stratify: bool
) -> tuple[list[int], list[int]]:
    """Indices (kept, held_out) with `fraction` of the items held out, per class when `stratify`."""
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for group in _groups(targets, stratify):
        shuffled = rng.permutation(group)
        n_held = int(round(len(group) * fraction))
        held.extend(shuffled[:n_held].tolist())
    held_set = set(held)
    return [i for i in range(len(targets)) if i not in held_set], sorted(held)


def subsample(targets: Sequence[object], fraction: float, seed: int, stratify: bool) -> list[int]:
    """Indices of a `fraction` subset (per class when `stratify`), at least one item per group."""
    if fraction >= 1.0:
        return list(range(len(targets)))
    _, kept = stratified_split(targets, fraction, seed, stratify)
    return kept or [0]


def kfold_partition(
    targets: Sequence[object], folds: int, fold: int, seed: int, stratify: bool
) -> tuple[list[int], list[int]]:
    """Indices (kept, held_out) of fold `fold` of `folds`: items are shuffled (per class when `stratify`) and dealt
    to the folds in turn, so the held-out folds partition the items and keep the class proportions."""
    rng = np.random.default_rng(seed)
    held: list[int] = []
    dealt = 0
    for group in _groups(targets, stratify):
        for item in rng.permutation(group):
            if dealt % folds == fold:
                held.append(int(item))
            dealt += 1
    held_set = set(held)
    return [i for i in range(len(targets)) if i not in held_set], sorted(held)
