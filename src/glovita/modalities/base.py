"""What every data kind provides: the resolved sample pipeline and the Modality interface."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from glovita.augmentation.preprocessing import Preprocessing
from glovita.runtime.batch import Batch, Sample, collate_samples, on_input
from glovita.runtime.loaders import EpochPlan, TransformedDataset

__all__ = ["Modality", "Pipeline", "collate_samples"]


@dataclass(frozen=True)
class Pipeline:
    """Per-sample transforms of a modality, resolved for one model; `resolved` goes to resolved_config.json."""

    train: Callable[[Any], Any] | None
    """Training transform of the input (seeded per sample); None passes samples through."""
    eval: Callable[[Any], Any] | None
    """Evaluation, inference and extraction transform of the input."""
    resolved: Any
    """What was derived (policies, sizes, statistics); None for kinds without transforms."""
    seed_numpy: bool = False
    """Also seed numpy per sample (batchgeneratorsv2 draws from it)."""
    display: Callable[[torch.Tensor], np.ndarray] | None = None
    """A transformed sample as a picture (H, W) or (H, W, 3) in [0, 1]; None: nothing to draw."""
    display_labels: Callable[[torch.Tensor], np.ndarray] | None = None
    """A label map as the picture `display` draws its sample (the same slices, same layout), class indices kept."""
    display_map: Callable[[torch.Tensor], np.ndarray] | None = None
    """A map of values over a sample's pixels or voxels (a saliency map) as `display` draws its sample, values kept."""
    display_values: Callable[[torch.Tensor], np.ndarray] | None = None
    """A target or predicted image (C, ...) of [0, 1] values (label-free tasks) as `display` draws its sample, clipped
    to [0, 1]."""
    size_text: str = ""
    """Sample size for titles (e.g. 224x224)."""
    size_tag: str = ""
    """Sample size for file names (e.g. 224, or 64x64x64)."""
    encoder_preprocessing: dict[str, Any] = field(default_factory=dict)
    """The encoder's preprocessing defaults the pipeline was resolved from ({} where they do not apply)."""
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    """(mean, std) per channel that the transforms apply last, in [0, 1] pixel units (images); a step that works in
    pixel space (an attack) undoes and redoes it. None where samples are not normalised by fixed statistics."""

    sample_train: Callable[[Sample], Sample] | None = None
    """The training transform of a whole sample, moving every field that covers the input with it (images: one
    torchvision v2 call on tv_tensors); None applies `train` to the input and refuses such fields."""
    sample_eval: Callable[[Sample], Sample] | None = None
    """The evaluation transform of a whole sample (see sample_train)."""
    kind: str = "sample"
    """What the samples are, for messages (images, volumes, series, ...)."""

    def train_dataset(self, dataset: Dataset) -> Dataset:
        transform = self.sample_train or (on_input(self.train, self.kind) if self.train is not None else None)
        return dataset if transform is None else TransformedDataset(dataset, transform, seed_numpy=self.seed_numpy)

    def eval_dataset(self, dataset: Dataset) -> Dataset:
        transform = self.sample_eval or (on_input(self.eval, self.kind) if self.eval is not None else None)
        return dataset if transform is None else TransformedDataset(dataset, transform)


class Modality(Protocol):
    """Answers every "what kind of data is this?" question once; callers never test a data-kind tag."""

    name: str
    """images, volumes, instances or bags (for messages and resolved_config.json)."""
    spatial_dims: int | None
    flips: bool
    """A left-right flip of a sample shows the same kind of thing (images, volumes, clips): glovita_infer's
    --tta hflip averages over it; series and feature vectors have no such symmetry."""
    """2 for images, 3 for volumes, None for feature vectors and bags."""
    sample_noun: str
    """What one sample is called in messages (images, volumes, feature vectors, bags)."""
    bags: bool
    """Samples are bags of instances (batches carry a mask); bag heads need them, other heads refuse them."""

    def pipeline(
        self, preprocessing: Preprocessing | None, input_channels: int, record: dict[str, Any] | None = None
    ) -> Pipeline:
        """The train and eval transforms for an encoder with these preprocessing defaults, or as a trained run
        recorded them (`record`: resolved_config.json's `augmentation`)."""
        ...

    def train_sampler(self, plan: EpochPlan, batch_size: int, drop_last: bool) -> Sampler:
        """The seeded training sampler over `plan`: an epoch's order is a function of (seed, epoch)."""
        ...

    def collate(self, samples: Any) -> Batch:
        """Samples (or an already stacked batch) -> Batch."""
        ...

    def memory_format(self, channels_last: bool) -> torch.memory_format | None:
        """The memory format of the model and its inputs (None keeps the default)."""
        ...
