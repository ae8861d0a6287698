"""Adversarial training: PGD / FGSM examples (Madry et al. 2018) or TRADES (Zhang et al. 2019), and robust accuracy
under PGD in evaluation. See models/attacks.py for the attacks in pixel units."""

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from glovita.configs.training import AdversarialStepConfig
from glovita.models.attacks import PixelSpace, pgd, trades_adversary
from glovita.runtime.batch import Batch
from glovita.training.steps.base import ExtraOptimizer, StepContext, StepOutput


class AdversarialStep:
    """Training: the attack runs on the plain model in eval mode (BatchNorm statistics untouched, no parameter
    gradient), then the update forwards the adversarial batch (TRADES: clean and adversarial images as one batch) in
    train mode through the model the Trainer wraps. Evaluation: clean outputs for the task's metrics, and
    robust_accuracy under PGD (eval_steps, random start from a generator seeded per pass) over at most
    robust_eval_max_samples samples, every robust_eval_every_n_epochs epochs in validation and always in the test
    pass; skipped passes log NaN."""

    eval_needs_grad = True
    manual_optimization = False

    def __init__(
        self, cfg: AdversarialStepConfig, normalization: tuple[tuple[float, ...], tuple[float, ...]], epochs: int,
        seed: int,
    ) -> None:  # fmt: skip
        self.cfg = cfg
        self.space = PixelSpace(*normalization)
        self.epochs = epochs
        self.seed = seed
        self.step_size = cfg.step_size if cfg.step_size is not None else 2.5 * cfg.epsilon / cfg.steps
        if cfg.epsilon == 0 and cfg.method == "trades":
            raise ValueError(
                "training.step.method='trades' with epsilon 0 has no adversary; use --training.step.method pgd with "
                "epsilon 0 (and --training.step.eval_epsilon) for a plain baseline."
            )
        self._robust_left: int | None = 0
        """Samples this evaluation pass may still attack (None: no cap); 0 skips the robust evaluation."""
        self._generator: torch.Generator | None = None
        self._pass_seed = seed

    @staticmethod
    def _logits_of(forward: nn.Module, context: StepContext, valid: torch.Tensor | None) -> Any:
        """Normalised inputs -> the main head's logits, through `forward` (the plain model, or the weights under
        evaluation)."""
        module = context.module
        return lambda inputs: module.head.logits(module.main_outputs(forward(inputs, valid)))

    def _attack_training(self, batch: Batch, context: StepContext, clean_logits: torch.Tensor | None) -> torch.Tensor:
        module = context.module
        was_training = module.training
        module.eval()
        try:
            with context.autocast():
                logits_of = self._logits_of(module, context, batch.valid)
                cfg = self.cfg
                if cfg.method == "trades":
                    assert clean_logits is not None
                    return trades_adversary(logits_of, self.space, batch.inputs, clean_logits, cfg.epsilon,
                                            self.step_size, cfg.steps, cfg.norm)  # fmt: skip
                if cfg.method == "fgsm":
                    return pgd(logits_of, self.space, batch.inputs, batch.targets, cfg.epsilon, cfg.epsilon, 1,
                               cfg.norm, start=False)  # fmt: skip
                return pgd(logits_of, self.space, batch.inputs, batch.targets, cfg.epsilon, self.step_size, cfg.steps,
                           cfg.norm)  # fmt: skip
        finally:
            module.train(was_training)

    def train_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        module = context.module
        if self.cfg.method != "trades":
            adversarial = self._attack_training(batch, context, None)
            with context.autocast():
                outputs = model(adversarial, batch.valid)
            loss, _ = module.loss_terms(outputs, batch)
            return StepOutput(loss, outputs)
        with torch.no_grad(), context.autocast():  # the clean prediction the attack moves away from (eval mode)
            module.eval()
            clean_reference = module.head.logits(module.main_outputs(module(batch.inputs, batch.valid)))
            module.train()
        adversarial = self._attack_training(batch, context, clean_reference)
        size = len(batch)
        with context.autocast():
            both = model(torch.cat([batch.inputs, adversarial]), None if batch.valid is None else
                         torch.cat([batch.valid, batch.valid]))  # fmt: skip
        logits = module.head.logits(module.main_outputs(both)).float()
        clean, robust = logits[:size], logits[size:]
        natural = module.head.loss(clean, batch)
        kl = F.kl_div(F.log_softmax(robust, dim=1), F.softmax(clean, dim=1), reduction="batchmean")
        loss = natural + self.cfg.trades_beta * kl
        return StepOutput(loss, clean, logs={"trades_kl": kl.detach()})

    def begin_evaluation(self, description: str, epoch: int) -> None:
        """A new evaluation pass (Trainer.evaluate): whether and on how many samples it measures robustness, and
        the seed of its random starts (the same pass of a resumed run draws the same starts)."""
        cfg = self.cfg
        testing = description.startswith("test")
        due = testing or (epoch + 1) % cfg.robust_eval_every_n_epochs == 0 or epoch + 1 >= self.epochs
        self._robust_left = cfg.robust_eval_max_samples if due else 0
        self._generator = None
        self._pass_seed = self.seed * 7919 + epoch * 2 + int(testing)

    def eval_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        with torch.no_grad(), context.autocast():
            outputs = model(batch.inputs, batch.valid)
            loss, _ = context.module.loss_terms(outputs, batch)
        count = len(batch) if self._robust_left is None else min(self._robust_left, len(batch))
        if count == 0:
            nothing = torch.zeros((), device=batch.inputs.device)
            return StepOutput(loss, outputs, logs={"robust_accuracy": nothing}, log_counts={"robust_accuracy": 0})
        if self._robust_left is not None:
            self._robust_left -= count
        if self._generator is None or self._generator.device != batch.inputs.device:
            self._generator = torch.Generator(batch.inputs.device).manual_seed(self._pass_seed)
        inputs, targets = batch.inputs[:count], batch.targets[:count]
        valid = None if batch.valid is None else batch.valid[:count]
        cfg = self.cfg
        radius = cfg.eval_epsilon if cfg.eval_epsilon is not None else cfg.epsilon
        with torch.enable_grad(), context.autocast():
            logits_of = self._logits_of(model, context, valid)
            step = 2.5 * radius / cfg.eval_steps
            adversarial = pgd(logits_of, self.space, inputs, targets, radius, step, cfg.eval_steps, cfg.norm,
                              generator=self._generator)  # fmt: skip
        with torch.no_grad(), context.autocast():
            predicted = self._logits_of(model, context, valid)(adversarial).argmax(dim=1)
        accuracy = (predicted == targets).float().mean()
        return StepOutput(loss, outputs, logs={"robust_accuracy": accuracy}, log_counts={"robust_accuracy": count})

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
            raise ValueError(f"The adversarial step keeps no state, but the checkpoint holds {sorted(state)}.")
