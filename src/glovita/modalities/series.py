"""Time series: (C, T) tensors held in memory -> series policies (seeded per sample); batches (B, C, T)."""

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from glovita.augmentation.policies.series import SeriesTransform, series_policy
from glovita.augmentation.preprocessing import Preprocessing
from glovita.modalities.base import Pipeline, collate_samples
from glovita.runtime.batch import Batch
from glovita.runtime.loaders import EpochPlan, SeededSampler


@dataclass(frozen=True)
class ResolvedSeriesAugmentation:
    """What a series run used (resolved_config.json `augmentation`)."""

    train_policy: str
    channels: int
    series_length: int
    normalization: str
    """How the dataset normalised the series (data.normalization with auto decided)."""


def _on_real_steps(transform: SeriesTransform) -> SeriesTransform:
    """`transform` applied to the real (non-NaN) steps of a NaN-padded series, the padding put back after."""

    def masked(series: torch.Tensor) -> torch.Tensor:
        steps = int((~torch.isnan(series[0])).sum())
        out = torch.full_like(series, float("nan"))
        out[:, :steps] = transform(series[:, :steps])
        return out

    return masked


def _curves(series: torch.Tensor) -> np.ndarray:
    """A series as a picture: its first four channels as curves (reports and previews)."""
    from glovita.reports.tiles import curve_picture

    return curve_picture(series.numpy())


class SeriesModality:
    """(series (C, T), target) samples, already brought to one length and normalised by the dataset."""

    name = "series"
    spatial_dims: int | None = 1
    flips = False
    sample_noun = "series"
    draws_curves = True
    """Previews draw each sample's channels as curves over time (no picture to show)."""
    bags = False

    def __init__(self, train_policy: str, channels: int, length: int, normalization: str, masked: bool) -> None:
        self.train_policy = train_policy
        self.channels = channels
        self.length = length
        self.normalization = normalization
        self.masked = masked
        """Padding is NaN in the samples (data.length_policy pad_mask): augmentation sees the real steps only, and
        batches carry a mask (B, T) of them with the padding set to zero."""

    def pipeline(
        self, preprocessing: Preprocessing | None, input_channels: int, record: dict[str, Any] | None = None
    ) -> Pipeline:
        """The training policy (none at evaluation: normalisation and length are the dataset's, the same for
        every split and for glovita_infer)."""
        if input_channels != self.channels:
            raise ValueError(
                f"model.encoder.input_channels={input_channels} but the series have {self.channels} channel(s). "
                f"Set --model.encoder.input_channels {self.channels}."
            )
        policy = (record or {}).get("train_policy", self.train_policy)
        resolved = ResolvedSeriesAugmentation(str(policy), self.channels, self.length, self.normalization)
        size = f"{self.channels}x{self.length}"
        transform = series_policy(policy)
        if transform is not None and self.masked:
            transform = _on_real_steps(transform)
        return Pipeline(transform, None, resolved, display=_curves, size_text=size, size_tag=size, kind="series")

    def train_sampler(self, plan: EpochPlan, batch_size: int, drop_last: bool) -> Sampler:
        return SeededSampler(plan, with_seeds=True)  # each sample's augmentation draws from its own seed

    def collate(self, samples: Any) -> Batch:
        batch = collate_samples(samples)
        if not self.masked:
            return batch
        real = ~torch.isnan(batch.inputs[:, 0, :])
        return batch.with_fields(inputs=torch.nan_to_num(batch.inputs, nan=0.0), valid=real)

    def memory_format(self, channels_last: bool) -> torch.memory_format | None:
        return None
