"""3D volumes: (C, D, H, W) arrays -> 3D policies (batchgeneratorsv2), seeded per sample (torch and numpy)."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from glovita.augmentation.preprocessing import Preprocessing
from glovita.modalities.base import Pipeline, collate_samples
from glovita.runtime.batch import INPUT, LABEL_MAP, Batch, Sample, covering_fields
from glovita.runtime.loaders import EpochPlan, SeededSampler


@dataclass(frozen=True)
class ResolvedVolumeAugmentation:
    """3D policies at the volume size every volume is brought to (z-score normalisation per volume)."""

    train_policy: str
    test_policy: str
    volume_size: tuple[int, int, int]
    normalization: str = "zscore per volume and channel"


def mid_slices(volume: torch.Tensor) -> np.ndarray:
    """The three orthogonal middle slices of channel 0 of (C, D, H, W), side by side, scaled to [0, 1]."""
    first = volume[0].float()
    d, h, w = first.shape
    slices = [first[d // 2], first[:, h // 2], first[:, :, w // 2]]
    height = max(s.shape[0] for s in slices)
    padded = [torch.nn.functional.pad(s, (0, 1, 0, height - s.shape[0])) for s in slices]
    row = torch.cat(padded, dim=1)
    low, high = row.min(), row.max()
    return ((row - low) / (high - low).clamp_min(1e-6)).numpy()


def joint_volume_transform(policy: Any) -> Any:
    """A 3D policy on a whole sample: the volume and its label map move together (batchgeneratorsv2)."""

    def apply(sample: Sample) -> Sample:
        covering = covering_fields(sample)
        if not covering:
            return {**sample, INPUT: policy(sample[INPUT])}
        if covering != [LABEL_MAP]:
            raise ValueError(
                f"3D volume transforms move a {LABEL_MAP} with the volume; {covering} is not supported yet."
            )
        volume, label_map = policy.joint(sample[INPUT], torch.as_tensor(sample[LABEL_MAP]).long())
        return {**sample, INPUT: volume, LABEL_MAP: label_map}

    return apply


class VolumeModality:
    """(volume tensor (C, D, H, W), target) samples at one size; batches (B, C, D, H, W)."""

    name = "volumes"
    spatial_dims: int | None = 3
    flips = True
    sample_noun = "volumes"
    bags = False

    def __init__(self, train_policy: str, test_policy: str, volume_size: tuple[int, int, int]) -> None:
        self.train_policy = train_policy
        self.test_policy = test_policy
        self.volume_size = volume_size

    def pipeline(
        self, preprocessing: Preprocessing | None, input_channels: int, record: dict[str, Any] | None = None
    ) -> Pipeline:
        """The 3D policies at the dataset's volume size (the encoder's 2D preprocessing does not apply)."""
        from glovita.augmentation.policies.shared_3d import build_3d_policy

        train_policy = (record or {}).get("train_policy", self.train_policy)
        test_policy = (record or {}).get("test_policy", self.test_policy)
        resolved = ResolvedVolumeAugmentation(train_policy, test_policy, self.volume_size)
        train, evaluation = (
            build_3d_policy(train_policy, self.volume_size),
            build_3d_policy(test_policy, self.volume_size),
        )
        return Pipeline(
            train,
            evaluation,
            resolved,
            sample_train=joint_volume_transform(train),
            sample_eval=joint_volume_transform(evaluation),
            kind="volumes",
            seed_numpy=True,
            display=mid_slices,
            size_text="x".join(map(str, self.volume_size)),
            size_tag="x".join(map(str, self.volume_size)),
        )

    def train_sampler(self, plan: EpochPlan, batch_size: int, drop_last: bool) -> Sampler:
        return SeededSampler(plan, with_seeds=True)  # each sample's augmentation draws from its own seed

    def collate(self, samples: Any) -> Batch:
        return collate_samples(samples)

    def memory_format(self, channels_last: bool) -> torch.memory_format | None:
        return None  # channels_last is a 2D format; 5-D tensors keep the default layout
