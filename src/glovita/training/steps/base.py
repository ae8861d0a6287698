"""The step interface: what the Trainer calls for each batch, what a step is built from, gets and returns."""

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from glovita.modalities.base import Modality
from glovita.models.composite import GlovitaModel
from glovita.runtime.batch import Batch
from glovita.tasks.base import Task

MODEL_OPTIMIZER = "model"
"""The name of the model's own optimizer in StepContext.optimizer_step (a step's optimizers take other names)."""


@dataclass(frozen=True)
class StepFacts:
    """What a step is built from besides its config: the run's model, task, data facts, device and counts."""

    model: GlovitaModel
    """The plain model (not wrapped by DDP or torch.compile)."""
    task: Task
    modality: Modality
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None
    """(mean, std) per channel the transforms applied last (images); None where samples have no fixed statistics."""
    device: torch.device
    steps_per_epoch: int
    """Batches of the training loader per epoch (this process's)."""
    epochs: int
    seed: int
    training_loader: Callable[..., DataLoader]
    """training_loader(dataset, name, batch_size=None, transformed=False): a seeded training loader over another
    dataset with the run's training transforms (`transformed`: the dataset applies its own, taking (index, seed)
    keys), collate and batch size (or `batch_size`); the name makes its seed differ from the main loader's (e.g.
    unlabeled images of a semi-supervised step)."""
    unlabeled_pool: Dataset | None = None
    """The training samples data.data_fraction left out (untransformed; their labels must not be used), or None."""
    pipeline: Any = None
    """The run's Pipeline (transforms of training and evaluation samples)."""


def _no_manual_step(name: str) -> None:
    raise RuntimeError("context.optimizer_step is for steps with manual_optimization = True.")


def _no_extra_loader(name: str) -> Batch:
    raise KeyError(f"The step draws from loader {name!r}, but its extra_loaders() names no such loader.")


@dataclass(frozen=True)
class StepContext:
    """What a step may use besides the model it is given and the batch."""

    module: GlovitaModel
    """The plain model (not wrapped by DDP or torch.compile): its head owns the loss."""
    autocast: Callable[[], AbstractContextManager[Any]]
    """Mixed-precision context for forward passes (training.precision)."""
    ema: nn.Module | None = None
    """The EMA copy of the model (training.ema_decay), e.g. as a teacher; None without EMA."""
    modules: dict[str, nn.Module] = field(default_factory=dict)
    """The step's own modules (Step.modules) on the device, DDP-wrapped under torchrun: call these in train_step."""
    backward: Callable[[torch.Tensor], None] = lambda loss: loss.backward()
    """Manual optimization: backpropagate a loss (scaled for 16-mixed precision)."""
    optimizer_step: Callable[[str], None] = _no_manual_step
    """Manual optimization: clip, step and zero one optimizer (MODEL_OPTIMIZER or a name of
    Step.extra_optimizers) and advance its schedule; the model's step also updates the EMA weights."""
    draw: Callable[[str], Batch] = _no_extra_loader
    """The next batch (on the device) of one of Step.extra_loaders; a loader that runs out starts its next pass."""


@dataclass(frozen=True)
class StepOutput:
    """The loss to minimise (training) or report (evaluation), the model outputs, and extra values to log."""

    loss: torch.Tensor
    outputs: Any
    logs: dict[str, torch.Tensor] = field(default_factory=dict)
    """Scalars logged as train_<key> (training) or val_<key> / test_<key> (evaluation), sample-weighted means."""
    log_counts: dict[str, int] = field(default_factory=dict)
    """Evaluation: how many of the batch's samples a log covers (default: all), e.g. a metric measured on a capped
    share of the split; a key whose counts sum to 0 over the pass is NaN."""
    extra_losses: dict[str, torch.Tensor] = field(default_factory=dict)
    """Losses of the step's own optimizers (see Step.extra_optimizers), by name; backpropagated with `loss`
    (automatic optimization only)."""


ExtraOptimizer = tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None]
"""An optimizer of a step's own modules (e.g. a discriminator) and its optional schedule."""


class Step(Protocol):
    """A training step and its evaluation step. The Trainer owns the loop around them: precision scaling, DDP
    wrapping and gradient sync, clipping, EMA, checkpoints (of the step's modules and optimizers too), resume and
    early stopping. With automatic optimization it also runs backward and steps every optimizer together (with
    accumulation); with `manual_optimization` the step calls context.backward / context.optimizer_step itself,
    e.g. several critic updates per generator update."""

    eval_needs_grad: bool
    """Whether evaluation runs with gradients enabled (adversarial or saliency evaluation does)."""
    manual_optimization: bool
    """The step runs its own backward and optimizer steps through the context (Lightning's manual optimization)."""

    def train_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        """Forward one training batch through `model` (possibly wrapped) and return the loss (automatic
        optimization: the loss to backpropagate; manual: the loss to report, already backpropagated)."""
        ...

    def eval_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        """Forward one evaluation batch; `outputs` feed the head's logits for metrics, `logs` become val_<key>."""
        ...

    def epoch_length(self, batches: int) -> int:
        """Training batches per epoch, given the training loader's; a step drawing from a larger extra loader may
        ask for more (the training loader then starts its next pass, ordered anew) or fewer. The schedule counts
        these."""
        ...

    def modules(self) -> dict[str, nn.Module]:
        """Modules the step owns beside the model (a critic, a teacher): the Trainer moves them to the device,
        wraps trainable ones for DDP and keeps their weights in every checkpoint ({} for none)."""
        ...

    def extra_optimizers(self) -> dict[str, ExtraOptimizer]:
        """Optimizers of modules the step owns, beside the model's; the Trainer clips, steps, zeroes and
        checkpoints them ({} for steps that train the model alone)."""
        ...

    def extra_loaders(self) -> dict[str, DataLoader]:
        """Loaders the step draws from besides the training loader (context.draw), by name ({} for none)."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """State the step keeps across epochs besides its modules and optimizers (saved in every checkpoint)."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    # Optional: `begin_evaluation(description: str, epoch: int) -> None` is called at the start of every evaluation
    # pass ("validate", "validate EMA", "test", "test EMA"), e.g. to cap or seed what the pass measures.
