"""Time-series augmentation policies on (C, T) tensors, after Um et al. (2017) and Le Guennec et al. (2016):
jitter, scaling, magnitude warping, time warping and window slicing. Every draw comes from torch's default
generator, which the training loader seeds per sample, so a sample's augmentation depends only on (seed, epoch,
index)."""

from collections.abc import Callable

import torch
import torch.nn.functional as F

SeriesTransform = Callable[[torch.Tensor], torch.Tensor]


def jitter(series: torch.Tensor, sigma: float = 0.03) -> torch.Tensor:
    """Add Gaussian noise of standard deviation `sigma` to every value."""
    return series + sigma * torch.randn(series.shape)


def scaling(series: torch.Tensor, sigma: float = 0.1) -> torch.Tensor:
    """Multiply each channel by a factor drawn from N(1, sigma)."""
    return series * (1 + sigma * torch.randn(series.shape[0], 1))


def _smooth_curve(channels: int, steps: int, sigma: float, knots: int = 4) -> torch.Tensor:
    """(C, T) random curves around 1: `knots` + 2 values from N(1, sigma), interpolated linearly over the steps."""
    points = 1 + sigma * torch.randn(1, channels, knots + 2)
    return F.interpolate(points, size=steps, mode="linear", align_corners=True)[0]


def magnitude_warp(series: torch.Tensor, sigma: float = 0.2) -> torch.Tensor:
    """Multiply by a smooth random curve per channel."""
    return series * _smooth_curve(series.shape[0], series.shape[1], sigma)


def time_warp(series: torch.Tensor, sigma: float = 0.2) -> torch.Tensor:
    """Resample along a smooth random time axis (speed varies along the series), same warp for every channel."""
    steps = series.shape[1]
    speed = _smooth_curve(1, steps, sigma)[0].clamp(min=0.1)
    warped = torch.cumsum(speed, 0)
    warped = (warped - warped[0]) / (warped[-1] - warped[0]) * (steps - 1)
    position = warped.clamp(0, steps - 1)
    left = position.floor().long().clamp(max=steps - 2) if steps > 1 else position.long()
    if steps == 1:
        return series
    weight = position - left
    return series[:, left] * (1 - weight) + series[:, left + 1] * weight


def window_slice(series: torch.Tensor, ratio: float = 0.9) -> torch.Tensor:
    """Crop a random window of `ratio` x T steps and stretch it back to T steps."""
    steps = series.shape[1]
    width = max(2, int(round(steps * ratio)))
    if width >= steps:
        return series
    start = int(torch.randint(0, steps - width + 1, ()).item())
    window = series[None, :, start : start + width]
    return F.interpolate(window, size=steps, mode="linear", align_corners=True)[0]


def _compose(*steps: SeriesTransform) -> SeriesTransform:
    def transform(series: torch.Tensor) -> torch.Tensor:
        for step in steps:
            series = step(series)
        return series

    return transform


POLICIES: dict[str, SeriesTransform | None] = {
    "none": None,
    "default_series_1": _compose(scaling, jitter),
    "default_series_2": _compose(magnitude_warp, time_warp, scaling, jitter),
    "default_series_3": _compose(window_slice, magnitude_warp, time_warp, scaling, jitter),
}
"""Training policies by name (data.train_policy of generic_timeseries_dataset)."""


def series_policy(name: str) -> SeriesTransform | None:
    """The transform of a series policy (None for `none`)."""
    if name not in POLICIES:
        raise ValueError(f"data.train_policy={name!r} has no implementation. Choose one of {', '.join(POLICIES)}.")
    return POLICIES[name]
