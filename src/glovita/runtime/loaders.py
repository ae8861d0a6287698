"""DataLoaders whose augmentation randomness depends only on (seed, epoch, sample), not on worker layout.

Each training index travels with its own seed, so a resumed run, or one with another number of workers,
draws exactly the same augmentations.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, Subset

from glovita.runtime.batch import Sample, as_sample


@dataclass(frozen=True)
class ResolvedDataloading:
    """DataLoader settings with every default decided (dataloading.* and the device)."""

    batch_size: int
    eval_batch_size: int
    num_workers: int
    pin_memory: bool
    persistent_workers: bool
    prefetch_factor: int | None
    drop_last: bool


def epoch_order(
    size: int, seed: int, epoch: int, shuffle: bool, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Generator]:
    """The sample order of an epoch and the generator that drew it: a permutation when shuffling, `size` draws
    with replacement when `weights` (per-sample probabilities) are given, else 0..size-1."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    if weights is not None:
        order = torch.multinomial(weights, size, replacement=True, generator=generator)
    elif shuffle:
        order = torch.randperm(size, generator=generator)
    else:
        order = torch.arange(size)
    return order, generator


def shard(values: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank `rank`'s share of an epoch: every world_size-th entry, padded by wrapping so all ranks get as many.

    Global batch i of a run with P processes holds the same samples as batch i of one process with P times
    the batch size, so a multi-process run follows the single-process one."""
    if world_size == 1:
        return values
    total = -(-len(values) // world_size) * world_size
    padded = torch.cat([values, values[: total - len(values)]]) if total > len(values) else values
    return padded[rank::world_size]


@dataclass
class EpochPlan:
    """What fixes an epoch's sample order: dataset size, seed, shuffling or weighted draws, this process's share
    under torchrun, and the epoch (set by the loop)."""

    size: int
    seed: int
    shuffle: bool
    weights: torch.Tensor | None = None
    rank: int = 0
    world_size: int = 1
    epoch: int = 0
    skip: int = 0
    """Leading samples of this process's share to leave out of the current pass (a run resumed inside an epoch:
    the batches it had consumed); set_epoch clears it."""

    @property
    def per_rank(self) -> int:
        return -(-self.size // self.world_size)

    def start_pass(self, epoch: int) -> None:
        self.epoch, self.skip = epoch, 0

    def order(self) -> tuple[torch.Tensor, torch.Generator]:
        """This process's indices for the current epoch, and the generator that drew them (for sample seeds)."""
        order, generator = epoch_order(self.size, self.seed, self.epoch, self.shuffle, self.weights)
        return shard(order, self.rank, self.world_size), generator


class SeededSampler(Sampler):
    """Yields (index, sample seed), or plain indices without `with_seeds`; a function of (seed, epoch).

    The plan's `weights` switch to weighted sampling with replacement (class-balanced epochs); its
    `rank`/`world_size` give this process its share under torchrun."""

    def __init__(self, plan: EpochPlan, with_seeds: bool = True) -> None:
        self.plan = plan
        self.with_seeds = with_seeds

    def set_epoch(self, epoch: int) -> None:
        self.plan.start_pass(epoch)

    def skip_batches(self, batches: int, batch_size: int) -> None:
        """Leave the first `batches` batches of this pass out (resuming inside an epoch)."""
        self.plan.skip = batches * batch_size

    def __len__(self) -> int:
        return max(self.plan.per_rank - self.plan.skip, 0)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        plan = self.plan
        indices, generator = plan.order()
        if not self.with_seeds:
            return iter(indices[plan.skip :].tolist())
        seeds = shard(torch.randint(0, 2**62, (plan.size,), generator=generator), plan.rank, plan.world_size)
        return iter(zip(indices[plan.skip :].tolist(), seeds[plan.skip :].tolist(), strict=True))


class SeededBatchSampler(Sampler[torch.Tensor]):
    """Batches of indices as tensors (slices of a (seed, epoch) permutation), for datasets that fetch whole
    batches at once: no per-sample Python work at all."""

    def __init__(self, plan: EpochPlan, batch_size: int, drop_last: bool) -> None:
        self.plan = plan
        self.batch_size = batch_size
        self.drop_last = drop_last

    def set_epoch(self, epoch: int) -> None:
        self.plan.start_pass(epoch)

    def skip_batches(self, batches: int, batch_size: int) -> None:
        """Leave the first `batches` batches of this pass out (resuming inside an epoch)."""
        self.plan.skip = batches * self.batch_size

    def _batches(self) -> int:
        full, rest = divmod(self.plan.per_rank, self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def __len__(self) -> int:
        return self._batches() - self.plan.skip // self.batch_size

    def __iter__(self) -> Iterator[torch.Tensor]:
        mine, _ = self.plan.order()
        first = self.plan.skip // self.batch_size
        return iter(mine[i * self.batch_size : (i + 1) * self.batch_size] for i in range(first, self._batches()))


class ShardSampler(Sampler[int]):
    """Evaluation under torchrun: rank r reads samples r, r + P, r + 2P, ... (no padding, nothing counted twice)."""

    def __init__(self, size: int, rank: int, world_size: int) -> None:
        self.indices = range(rank, size, world_size)

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)


class TransformedDataset(Dataset):
    """Applies a sample transform to each sample (a record of named fields; an (input, target) pair is read as one);
    a (index, seed) key fixes the transform's RNG."""

    def __init__(self, base: Dataset, transform: Callable[[Sample], Sample], seed_numpy: bool = False) -> None:
        self.base = base
        self.transform = transform
        self.seed_numpy = seed_numpy
        """Also seed numpy's global generator per sample (batchgeneratorsv2 draws some parameters from it)."""

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, key: int | tuple[int, int]) -> Sample:
        index, seed = key if isinstance(key, tuple) else (key, None)
        sample = as_sample(self.base[index])
        if seed is None:
            return self.transform(sample)
        # Only the CPU default generator: torch.manual_seed also seeds every device backend (~100x slower per
        # sample) and the transforms draw from this generator alone. Same stream, so results are unchanged.
        generator = torch.default_generator
        state = generator.get_state()
        generator.manual_seed(seed)
        numpy_state = None
        if self.seed_numpy:
            import numpy as np

            numpy_state = np.random.get_state()
            np.random.seed(seed % 2**32)
        try:
            return self.transform(sample)
        finally:
            generator.set_state(state)
            if numpy_state is not None:
                np.random.set_state(numpy_state)


def in_memory(*datasets: Dataset | None) -> bool:
    """Whether every given dataset (unwrapping Subsets and transforms) holds all its samples in memory (declares
    `in_memory` True, as feature files loaded whole do)."""
    for dataset in datasets:
        while isinstance(dataset, Subset | TransformedDataset):
            dataset = dataset.dataset if isinstance(dataset, Subset) else dataset.base
        if dataset is not None and not getattr(dataset, "in_memory", False):
            return False
    return True


class _DirectBatchLoader(DataLoader):
    """A batch-sampled loader without workers whose dataset fetches whole batches (`__getitems__`, e.g. feature
    arrays in memory): each batch is one fetch and one collate, without the DataLoader's per-batch machinery
    (about 20 us a batch, 8 % of an epoch over a 1M x 768 float16 array)."""

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        fetch = self.dataset.__getitems__  # type: ignore[attr-defined]
        collate = self.collate_fn
        for indices in self.batch_sampler:  # type: ignore[union-attr]
            yield collate(fetch(indices))


WORKER_GRACE_SECONDS = 30.0
"""How long a loader worker keeps serving batches after a SIGTERM (the training process stops at its next safe
point, writes its checkpoint and ends its workers itself well within this)."""


def _worker_keeps_running(_worker_id: int) -> None:
    """Loader workers outlive the signals a cluster sends to every process of a job: SIGUSR1 is ignored, and SIGTERM
    ends a worker only after WORKER_GRACE_SECONDS, so the training process (which handles both: training/
    preemption.py) can finish its step and checkpoint with its loader alive."""
    import signal

    if hasattr(signal, "SIGUSR1"):
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)

    def later(_signum: int, _frame: object) -> None:
        import os
        import threading

        timer = threading.Timer(WORKER_GRACE_SECONDS, os._exit, (0,))
        timer.daemon = True
        timer.start()
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one timer is enough

    signal.signal(signal.SIGTERM, later)


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
    if (
        isinstance(sampler, SeededBatchSampler)
        and num_workers == 0
        and not pin_memory
        and hasattr(dataset, "__getitems__")
    ):
        return _DirectBatchLoader(dataset, collate_fn=collate, batch_sampler=sampler)  # type: ignore[arg-type]
    if isinstance(sampler, SeededBatchSampler):
        return DataLoader(
            dataset,
            collate_fn=collate,
            batch_sampler=sampler,  # type: ignore[arg-type]  # yields index tensors, which __getitems__ takes
            num_workers=num_workers,
            pin_memory=pin_memory,
            persistent_workers=persistent_workers and num_workers > 0,
            prefetch_factor=prefetch_factor if num_workers > 0 else None,
            worker_init_fn=_worker_keeps_running if num_workers > 0 else None,
            generator=torch.Generator(),  # its own: starting a pass draws nothing from the global generator
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
        worker_init_fn=_worker_keeps_running if num_workers > 0 else None,
        generator=torch.Generator(),  # its own: starting a pass draws nothing from the global generator
    )


def one_pass_loader(dataset: Dataset, loading: ResolvedDataloading, collate: Callable | None = None) -> DataLoader:
    """An in-order loader at the evaluation batch size for a single pass (extraction, inference)."""
    return make_loader(
        dataset,
        loading.eval_batch_size,
        None,
        num_workers=loading.num_workers,
        pin_memory=loading.pin_memory,
        persistent_workers=False,
        prefetch_factor=loading.prefetch_factor,
        drop_last=False,
        collate=collate,
    )
