"""DataLoaders whose augmentation randomness depends only on (seed, epoch, sample), not on worker layout.

Each training index travels with its own seed, so a resumed run, or one with another number of workers,
draws exactly the same augmentations.
"""

from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def epoch_order(size: int, seed: int, epoch: int, shuffle: bool) -> tuple[torch.Tensor, torch.Generator]:
    """The sample order of an epoch (a permutation when shuffling) and the generator that drew it."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(size, generator=generator) if shuffle else torch.arange(size)
    return order, generator


class SeededSampler(Sampler):
    """Yields (index, sample seed), or plain indices without `with_seeds`; a function of (seed, epoch)."""

    def __init__(self, size: int, seed: int, shuffle: bool, with_seeds: bool = True) -> None:
        self.size = size
        self.seed = seed
        self.shuffle = shuffle
        self.with_seeds = with_seeds
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order, generator = epoch_order(self.size, self.seed, self.epoch, self.shuffle)
        if not self.with_seeds:
            return iter(order.tolist())
        seeds = torch.randint(0, 2**62, (self.size,), generator=generator)
        return iter(zip(order.tolist(), seeds.tolist(), strict=True))


class SeededBatchSampler(Sampler[torch.Tensor]):
    """Batches of indices as tensors (slices of a (seed, epoch) permutation), for datasets that fetch whole
    batches at once: no per-sample Python work at all."""

    def __init__(self, size: int, batch_size: int, seed: int, shuffle: bool, drop_last: bool) -> None:
        self.size = size
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        full, rest = divmod(self.size, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __iter__(self) -> Iterator[torch.Tensor]:
        order, _ = epoch_order(self.size, self.seed, self.epoch, self.shuffle)
        return iter(order[i * self.batch_size : (i + 1) * self.batch_size] for i in range(len(self)))


class TransformedDataset(Dataset):
    """Applies `transform` to the image of (image, target); a (index, seed) key fixes the transform's RNG."""

    def __init__(self, base: Dataset, transform: Callable[[Any], torch.Tensor]) -> None:
        self.base = base
        self.transform = transform

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, Any]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        image, target = self.base[index]
        if seed is None:
            return self.transform(image), target
        # Only the CPU default generator: torch.manual_seed also seeds every device backend (~100x slower per
        # sample) and the transforms draw from this generator alone. Same stream, so results are unchanged.
        generator = torch.default_generator
        state = generator.get_state()
        generator.manual_seed(seed)
        try:
            return self.transform(image), target
        finally:
            generator.set_state(state)


def make_loader(
    dataset: Dataset,
    batch_size: int | None,
    sampler: Sampler | None,
    num_workers: int,
    pin_memory: bool,
    persistent_workers: bool,
    prefetch_factor: int | None,
    drop_last: bool,
    collate: Callable | None = None,
) -> DataLoader:
    """A DataLoader; a SeededBatchSampler as `sampler` makes it batch-sampled (batch_size then comes from it)."""
    if isinstance(sampler, SeededBatchSampler):
        return DataLoader(
            dataset,
            collate_fn=collate,
            batch_sampler=sampler,
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers and num_workers > 0,
            prefetch_factor=prefetch_factor if num_workers > 0 else None,
        )
    return DataLoader(
        dataset,
        collate_fn=collate,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=pin_memory,
        persistent_workers=persistent_workers and num_workers > 0,
        prefetch_factor=prefetch_factor if num_workers > 0 else None,
        drop_last=drop_last,
    )
