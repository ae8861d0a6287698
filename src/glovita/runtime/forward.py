"""The one forward loop over a loader, shared by evaluation, glovita_infer and glovita_extract_features."""

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch.utils.data import DataLoader

from glovita.runtime.batch import Batch
from glovita.runtime.progress import progress_bar

_PRECISION_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def autocast(precision: str, device: torch.device) -> AbstractContextManager[Any]:
    """The forward pass's numerics for a --training.precision: autocast to bf16 / fp16 for the mixed ones, none
    for 32. Training, its evaluation and glovita_infer all enter it here."""
    dtype = _PRECISION_DTYPES.get(precision)
    return nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def forward_loop(
    loader: DataLoader,
    forward: Callable[[Batch], Any],
    device: torch.device,
    memory_format: torch.memory_format | None,
    description: str,
    grad: bool = False,
) -> Iterator[tuple[Batch, Any]]:
    """Yield (batch on `device`, forward(batch)) for every batch, with a progress bar. Gradients are off unless
    `grad` (steps whose evaluation needs them, e.g. saliency); the caller's own code between batches runs with
    the same gradient mode."""
    with torch.set_grad_enabled(grad), progress_bar(description, len(loader)) as bar:
        for batch in loader:
            batch = batch.to(device, memory_format)
            yield batch, forward(batch)
            bar.update(1)
