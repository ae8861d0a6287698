"""Samples and batches as records of named fields: every transform, step, head and metric reads fields by name."""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch

IGNORE_FRAME = -100
"""Target of a padded frame in per-frame targets (B, T): cross-entropy's ignore_index, skipped by the metrics."""

Sample = dict[str, Any]
"""One sample as named fields: INPUT and TARGETS always; LABEL_MAP, TARGET_IMAGE, ID and others when the dataset has
them. A dataset may yield a Sample or an (input, target) pair (read as {INPUT: input, TARGETS: target})."""

INPUT = "input"
"""The model's input (a PIL image, a tensor, a video record, before the modality's transform)."""
TARGETS = "targets"
"""What the task predicts: class indices, multi-hot rows, regression values or per-frame classes."""
LABEL_MAP = "label_map"
"""A dense label map of class indices over the input's pixels or voxels; moved with the input by every geometric
transform (nearest interpolation) and left alone by photometric ones."""
TARGET_IMAGE = "target_image"
"""An image to predict from the input (image-to-image tasks); moved with the input by geometric transforms."""
ID = "id"
"""The sample's traceable id (a path, a slide or case id)."""
SPATIAL_FIELDS = (LABEL_MAP, TARGET_IMAGE)
"""Fields that cover the input's pixels: a modality's transform must move them with the input, or refuse them."""


def present(targets: torch.Tensor) -> torch.Tensor:
    """(B,) True where a sample has a target: class indices >= 0, value rows without NaN."""
    if targets.is_floating_point():
        return ~torch.isnan(targets.reshape(len(targets), -1)).any(dim=1)
    return targets.reshape(len(targets), -1).min(dim=1).values >= 0


def as_sample(item: Any) -> Sample:
    """A dataset item as a Sample: records pass through, (input, target) pairs are named."""
    if isinstance(item, dict):
        return item
    inputs, targets = item
    return {INPUT: inputs, TARGETS: targets}


@dataclass(frozen=True)
class Batch:
    """A batch with named fields; `fields` holds the others by their sample name (e.g. LABEL_MAP), moved with it.

    inputs: images (B, C, H, W), volumes (B, C, D, H, W), series (B, C, T), clips (B, C, T, H, W), feature vectors
        (B, D) or padded bags (B, N, D).
    targets: class indices (B,), soft or multilabel targets (B, K), regression values (B, K), or per-frame classes
        (B, T) padded with IGNORE_FRAME.
    valid: what is padding: (B, N) for bags, (B, T) for frames and time steps, True where an element is real.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    valid: torch.Tensor | None = None
    fields: dict[str, torch.Tensor] = field(default_factory=dict)
    ids: list[str] | None = None

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def to(self, device: torch.device, memory_format: torch.memory_format | None = None) -> "Batch":
        """The batch on `device`; inputs in `memory_format` when one is given (the modality's choice)."""
        non_blocking = device.type == "cuda"

        def move(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.to(device, non_blocking=non_blocking)

        inputs = move(self.inputs)
        if memory_format is not None:
            inputs = inputs.contiguous(memory_format=memory_format)
        valid = None if self.valid is None else move(self.valid)
        fields = {name: move(value) for name, value in self.fields.items()}
        return Batch(inputs, move(self.targets), valid, fields, self.ids)

    def pin_memory(self) -> "Batch":
        """Called by DataLoader(pin_memory=True) for custom batch types."""
        valid = None if self.valid is None else self.valid.pin_memory()
        fields = {name: value.pin_memory() for name, value in self.fields.items()}
        return Batch(self.inputs.pin_memory(), self.targets.pin_memory(), valid, fields, self.ids)

    def with_fields(self, **changes: Any) -> "Batch":
        """A copy with some fields replaced (e.g. mixed inputs and soft targets)."""
        return replace(self, **changes)

    def read(self, name: str) -> torch.Tensor:
        """A field by its sample name (TARGETS, LABEL_MAP, ...); a missing one names what the batch has."""
        if name == TARGETS:
            return self.targets
        if name not in self.fields:
            raise KeyError(f"The batch has no field {name!r} (it has {', '.join([TARGETS, *sorted(self.fields)])}).")
        return self.fields[name]


def covering_fields(sample: Sample) -> list[str]:
    """The fields of `sample` that cover its input (SPATIAL_FIELDS): a transform must move them with it."""
    return [name for name in SPATIAL_FIELDS if name in sample]


def on_input(transform: Callable[[Any], Any], kind: str) -> Callable[[Sample], Sample]:
    """A transform of the input alone as a sample transform; a sample that also carries a field covering the input
    (SPATIAL_FIELDS) is refused, since this transform would leave it behind (misaligned)."""

    def apply(sample: Sample) -> Sample:
        covering = covering_fields(sample)
        if covering:
            raise ValueError(
                f"The {kind} transforms move the input alone, and this sample also carries {', '.join(covering)}: "
                f"{kind} with a {covering[0]} are not supported yet."
            )
        return {**sample, INPUT: transform(sample[INPUT])}

    return apply


def collate_samples(samples: list[Any]) -> Batch:
    """Samples (records or (input, target) pairs) of equal shapes -> Batch: inputs and targets stacked (targets:
    ints, float tensors or tuples of floats), ids listed, every other field stacked under its name."""
    from torch.utils.data import default_collate

    records = [as_sample(item) for item in samples]
    first = records[0]
    inputs = default_collate([r[INPUT] for r in records])
    targets = default_collate([r[TARGETS] for r in records])
    ids = [str(r[ID]) for r in records] if ID in first else None
    named = [name for name in first if name not in (INPUT, TARGETS, ID)]
    fields = {name: default_collate([r[name] for r in records]) for name in named}
    return Batch(inputs, targets, fields=fields, ids=ids)
