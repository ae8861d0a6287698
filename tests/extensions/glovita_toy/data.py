"""The toy signal dataset and its modality (transforms, sampler, collate)."""

import math
from typing import Any

import torch
from torch.utils.data import Dataset, Sampler

from glovita.datasets.factory import DatasetSplits
from glovita.modalities.base import Pipeline, collate_samples
from glovita.runtime.batch import INPUT, TARGETS, Batch, Sample
from glovita.runtime.loaders import EpochPlan, SeededSampler
from glovita_toy.config import ToySignalsConfig


class ToySignals(Dataset):
    """Samples with named fields drawn from a fixed generator: the signal (1, L), its class, and its frequency
    (a second target, for a named regression head; missing, NaN, for every fifth signal)."""

    def __init__(self, count: int, length: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.targets = [k % 2 for k in range(count)]
        t = torch.arange(length, dtype=torch.float32) / length
        self.signals = []
        self.frequencies = []
        for k, label in enumerate(self.targets):
            frequency = 1 + 3 * float(torch.rand((), generator=generator))
            self.frequencies.append(torch.tensor([frequency if k % 5 else float("nan")]))
            phase = 2 * math.pi * float(torch.rand((), generator=generator))
            wave = torch.sin(2 * math.pi * frequency * t + phase)
            self.signals.append((wave + 1.0 if label else wave)[None])
        self.ids = [f"signal_{k:03d}" for k in range(count)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> Sample:
        return {INPUT: self.signals[index], TARGETS: self.targets[index], "frequency": self.frequencies[index]}


class ToyModality:
    """Signals (B, 1, L); training adds seeded noise and a random circular shift."""

    name = "toy signals"
    spatial_dims: int | None = 1
    flips = False
    sample_noun = "signals"
    bags = False

    def __init__(self, noise: float) -> None:
        self.noise = noise

    def pipeline(self, preprocessing: Any, input_channels: int, record: dict[str, Any] | None = None) -> Pipeline:
        noise = float((record or {}).get("noise", self.noise))

        def train(signal: torch.Tensor) -> torch.Tensor:
            shift = int(torch.randint(signal.shape[-1], ()))
            return signal.roll(shift, -1) + noise * torch.randn(signal.shape)

        return Pipeline(train, None, {"noise": noise}, size_text=f"{noise}", size_tag="toy")

    def train_sampler(self, plan: EpochPlan, batch_size: int, drop_last: bool) -> Sampler:
        return SeededSampler(plan, with_seeds=True)

    def collate(self, samples: Any) -> Batch:
        return collate_samples(samples)

    def memory_format(self, channels_last: bool) -> torch.memory_format | None:
        return None


def build_toy_signals(cfg: ToySignalsConfig, input_channels: int | None) -> DatasetSplits:
    n = cfg.samples_per_split * 2
    train = ToySignals(n, cfg.length, seed=1)
    return DatasetSplits(
        train=train,
        val=ToySignals(n // 2, cfg.length, seed=2),
        test=ToySignals(n // 2, cfg.length, seed=3),
        class_names=["sine", "raised"],
        train_targets=train.targets,
        modality=ToyModality(cfg.noise),
    )
