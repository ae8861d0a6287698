"""The step interface: what the Trainer calls for each batch, and what a step gets and returns."""

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from glovita.models.composite import GlovitaModel
from glovita.runtime.batch import Batch


@dataclass(frozen=True)
class StepContext:
    """What a step may use besides the model it is given and the batch."""

    module: GlovitaModel
    """The plain model (not wrapped by DDP or torch.compile): its head owns the loss."""
    autocast: Callable[[], AbstractContextManager[Any]]
    """Mixed-precision context for forward passes (training.precision)."""
    ema: nn.Module | None = None
    """The EMA copy of the model (training.ema_decay), e.g. as a teacher; None without EMA."""


@dataclass(frozen=True)
class StepOutput:
    """The loss to minimise (training) or report (evaluation), the model outputs, and extra values to log."""

    loss: torch.Tensor
    outputs: Any
    logs: dict[str, torch.Tensor] = field(default_factory=dict)
    extra_losses: dict[str, torch.Tensor] = field(default_factory=dict)
    """Losses of the step's own optimizers (see Step.extra_optimizers), by name; backpropagated with `loss`."""


ExtraOptimizer = tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]
"""An optimizer of a step's own modules (e.g. a discriminator) and its optional schedule."""


class Step(Protocol):
    """A training step and its evaluation step. The Trainer owns the loop around them: accumulation,
    precision scaling, DDP gradient sync, clipping, EMA, checkpoints and early stopping."""

    eval_needs_grad: bool
    """Whether evaluation runs with gradients enabled (adversarial or saliency evaluation does)."""

    def train_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        """Forward one training batch through `model` (possibly wrapped) and return the loss to backpropagate."""
        ...

    def eval_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        """Forward one evaluation batch; `outputs` feed the head's logits for metrics."""
        ...

    def extra_optimizers(self) -> dict[str, ExtraOptimizer]:
        """Optimizers of modules the step owns, beside the model's; the Trainer steps, clips, zeroes and
        checkpoints them with the model's optimizer ({} for steps that train the model alone)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """State the step keeps across epochs (saved in every checkpoint)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
