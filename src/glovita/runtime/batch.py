"""The typed batch every loader yields and every step, head and metric reads by field name."""

from dataclasses import dataclass, replace
from typing import Any

import torch

IGNORE_FRAME = -100
"""Target of a padded frame in per-frame targets (B, T): cross-entropy's ignore_index, skipped by the metrics."""


@dataclass(frozen=True)
class Batch:
    """A batch with named fields.

    inputs: images (B, C, H, W), volumes (B, C, D, H, W), feature vectors (B, D) or padded bags (B, N, D).
    targets: class indices (B,), soft or multilabel targets (B, K), or regression values (B, K).
    mask: bags only: (B, N), True where an instance is real (not padding).
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def to(self, device: torch.device, memory_format: torch.memory_format | None = None) -> "Batch":
        """The batch on `device`; 4-D inputs in `memory_format` when one is given."""
        non_blocking = device.type == "cuda"
        inputs = self.inputs.to(device, non_blocking=non_blocking)
        if memory_format is not None and inputs.ndim == 4:
            inputs = inputs.contiguous(memory_format=memory_format)
        mask = None if self.mask is None else self.mask.to(device, non_blocking=non_blocking)
        return Batch(inputs, self.targets.to(device, non_blocking=non_blocking), mask)

    def pin_memory(self) -> "Batch":
        """Called by DataLoader(pin_memory=True) for custom batch types."""
        mask = None if self.mask is None else self.mask.pin_memory()
        return Batch(self.inputs.pin_memory(), self.targets.pin_memory(), mask)

    def with_fields(self, **changes: Any) -> "Batch":
        """A copy with some fields replaced (e.g. mixed inputs and soft targets)."""
        return replace(self, **changes)
