"""Supervised learning: the head's own loss on each batch, with optional mixup/cutmix of training batches."""

from dataclasses import replace
from typing import Any

from torch import nn
from torch.utils.data import DataLoader

from glovita.runtime.batch import Batch
from glovita.training.mixing import BatchMixer
from glovita.training.steps.base import ExtraOptimizer, StepContext, StepOutput


class SupervisedStep:
    """loss = head.loss(model(batch), batch). Mixing (when configured) turns training targets into soft ones."""

    eval_needs_grad = False
    manual_optimization = False

    def __init__(self, mixer: BatchMixer | None) -> None:
        self.mixer = mixer

    def train_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        if self.mixer is not None:
            inputs, targets = self.mixer(batch.inputs, batch.targets)
            batch = batch.with_fields(inputs=inputs, targets=targets)
        out = self.eval_step(model, batch, context)
        return replace(out, logs={**out.logs, **context.module.training_logs(out.outputs, batch)})

    def eval_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        with context.autocast():
            outputs = model(batch.inputs, batch.valid)
        loss, named = context.module.loss_terms(outputs, batch)  # named heads' own losses are logged
        return StepOutput(loss, outputs, logs={f"{name}_loss": value.detach() for name, value in named.items()})

    def epoch_length(self, batches: int) -> int:
        return batches

    def modules(self) -> dict[str, nn.Module]:
        return {}

    def extra_optimizers(self) -> dict[str, ExtraOptimizer]:
        return {}

    def extra_loaders(self) -> dict[str, DataLoader]:
        return {}

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"The supervised step keeps no state, but the checkpoint holds {sorted(state)}.")
