"""Precomputed features: one vector per sample (instances) or a bag of vectors per sample (MIL bags)."""

from typing import Any

import torch
from torch.utils.data import Sampler

from glovita.augmentation.preprocessing import Preprocessing
from glovita.modalities.base import Pipeline
from glovita.runtime.batch import IGNORE_FRAME, Batch
from glovita.runtime.loaders import EpochPlan, SeededBatchSampler, SeededSampler


class _FeatureKind:
    """What instances and bags share: no transforms, nothing to draw, the default memory format."""

    spatial_dims: int | None = None
    flips = False

    def pipeline(
        self, preprocessing: Preprocessing | None, input_channels: int, record: dict[str, Any] | None = None
    ) -> Pipeline:
        return Pipeline(None, None, None)

    def memory_format(self, channels_last: bool) -> torch.memory_format | None:
        return None


class InstanceModality(_FeatureKind):
    """Feature vectors (D,) fetched a whole batch at a time (an index tensor per batch); batches (B, D)."""

    name = "instances"
    sample_noun = "feature vectors"
    bags = False

    def train_sampler(self, plan: EpochPlan, batch_size: int, drop_last: bool) -> Sampler:
        return SeededBatchSampler(plan, batch_size, drop_last)

    def collate(self, samples: Any) -> Batch:
        """A batch already stacked by the dataset's __getitems__ (features, targets), or a list of samples."""
        if isinstance(samples, tuple):
            features, targets = samples
            return Batch(features.float(), targets)
        return Batch(torch.stack([s[0] for s in samples]).float(), torch.stack([s[1] for s in samples]))


class BagModality(_FeatureKind):
    """Bags (N_i, D) of different sizes, padded per batch; batches (B, N, D) with a mask (B, N)."""

    name = "bags"
    sample_noun = "bags"
    bags = True

    def __init__(self, sampled: bool = False, framewise: bool = False) -> None:
        self.sampled = sampled
        """Training bags draw a random subset of their instances (data.max_instances): the sampler hands each
        one a seed."""
        self.framewise = framewise
        """Each instance is a video frame with its own label (data.subtask framewise): targets (B, N) padded with
        -100, for framewise heads (not bag heads)."""
        self.bags = not framewise

    def train_sampler(self, plan: EpochPlan, batch_size: int, drop_last: bool) -> Sampler:
        return SeededSampler(plan, with_seeds=self.sampled)

    def collate(self, samples: Any) -> Batch:
        bags = [sample[0] for sample in samples]
        if self.framewise:
            batch = self._padded(bags, torch.zeros(len(bags)))
            assert batch.valid is not None
            targets = torch.full(batch.valid.shape, IGNORE_FRAME, dtype=torch.long)
            for i, sample in enumerate(samples):
                targets[i, : len(sample[1])] = sample[1]
            return batch.with_fields(targets=targets)
        return self._padded(bags, torch.stack([torch.as_tensor(sample[1]) for sample in samples]))

    def _padded(self, bags: list[torch.Tensor], targets: torch.Tensor) -> Batch:
        longest = max(bag.shape[0] for bag in bags)
        if all(bag.shape[0] == longest for bag in bags):  # nothing to pad (always so at batch size 1)
            features = torch.stack(bags).float() if len(bags) > 1 else bags[0].float()[None]
            return Batch(features, targets, torch.ones(len(bags), longest, dtype=torch.bool))
        features = torch.zeros(len(bags), longest, bags[0].shape[1], dtype=torch.float32)
        mask = torch.zeros(len(bags), longest, dtype=torch.bool)
        for i, bag in enumerate(bags):
            features[i, : bag.shape[0]] = bag
            mask[i, : bag.shape[0]] = True
        return Batch(features, targets, mask)
