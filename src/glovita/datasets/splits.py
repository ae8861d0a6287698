"""Split helpers shared by datasets: stratified hold-out and subsampling with a fixed seed."""

from collections.abc import Sequence

import numpy as np


def stratified_split(
    targets: Sequence[object], fraction: float, seed: int, stratify: bool
) -> tuple[list[int], list[int]]:
    """Indices (kept, held_out) with `fraction` of the items held out, per class when `stratify`."""
    rng = np.random.default_rng(seed)
    indices = np.arange(len(targets))
    groups = [indices]
    if stratify:
        labels = np.asarray([str(t) for t in targets])
        groups = [indices[labels == label] for label in np.unique(labels)]
    held: list[int] = []
    for group in groups:
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
