"""Semi-supervised classification: FixMatch and mean teacher, with the unlabeled pool drawn from its own seeded
loader (weak and strong views of each image), so a resumed run continues exactly."""

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from glovita.configs.training import SemiSupervisedStepConfig
from glovita.runtime.batch import INPUT, Batch, as_sample
from glovita.training.steps.base import ExtraOptimizer, StepContext, StepFacts, StepOutput

STRONG = "strong_view"
"""The batch field holding the strong view of each unlabeled image (its input is the weak view)."""
UNLABELED = "unlabeled"
"""The step's extra loader."""


class TwoViews(Dataset):
    """Each unlabeled image under the weak (the run's training transform) and the strong policy, each with its own
    seed derived from the sample's (index, seed) key: the weak view is the input, the strong one the STRONG field."""

    def __init__(self, weak: Dataset, strong: Dataset) -> None:
        self.weak = weak
        self.strong = strong

    def __len__(self) -> int:
        return len(self.weak)  # type: ignore[arg-type]

    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = key if isinstance(key, tuple) else (key, 0)
        weak = as_sample(self.weak[(index, seed)])
        strong = as_sample(self.strong[(index, (seed * 6364136223846793005 + 1442695040888963407) % 2**62)])
        return {**weak, STRONG: strong[INPUT]}


def build_semi_supervised_step(
    cfg: SemiSupervisedStepConfig, facts: StepFacts, batch_size: int, channels: int
) -> "SemiSupervisedStep":
    """The step with its unlabeled loader: the pool data.data_fraction leaves out, under the weak and strong views."""
    pool = facts.unlabeled_pool
    if cfg.unlabeled_dir is not None:
        from glovita.datasets.factory import image_mode
        from glovita.datasets.generic_image import unlabeled_images

        try:
            pool = unlabeled_images(cfg.unlabeled_dir, image_mode(channels))
        except (OSError, ValueError) as err:
            raise ValueError(f"training.step.unlabeled_dir: {err}") from err
    if pool is None:
        raise ValueError(
            "training.step.step_type='semi_supervised' learns from the training images data.data_fraction leaves "
            "out (used without their labels): pass --data.data_fraction below 1 (e.g. 0.1 keeps 10 % labeled), or "
            "--training.step.unlabeled_dir with a folder of unlabeled images."
        )
    strong_modality = getattr(facts.modality, "with_train_policy", None)
    if strong_modality is None or facts.pipeline is None:
        raise ValueError(
            f"training.step.step_type='semi_supervised' draws weak and strong views of 2D images; the "
            f"{facts.modality.sample_noun} of this dataset have no strong policy. Train it on an image dataset."
        )
    strong = strong_modality(cfg.strong_policy).pipeline(facts.model.encoder.preprocessing, channels)
    views = TwoViews(facts.pipeline.train_dataset(pool), strong.train_dataset(pool))
    loader = facts.training_loader(views, UNLABELED, batch_size * cfg.unlabeled_ratio, True)
    return SemiSupervisedStep(cfg, loader)


class SemiSupervisedStep:
    """One step = a labeled batch and mu times as many unlabeled images, forwarded together (BatchNorm sees both, as
    FixMatch does). FixMatch: loss = CE(labeled) + lambda_u x mean over unlabeled of 1[max p_weak >= threshold] x
    CE(strong view, argmax p_weak). Mean teacher: loss = CE(labeled) + w(t) x mean squared difference of the
    student's softmax on the strong view and the EMA teacher's on the weak view, w ramping up over rampup_epochs.
    Training logs: unlabeled_loss, mask_rate (FixMatch: the share of confident pseudo-labels)."""

    eval_needs_grad = False
    manual_optimization = False

    def __init__(self, cfg: SemiSupervisedStepConfig, unlabeled: DataLoader) -> None:
        self.cfg = cfg
        self.unlabeled = unlabeled
        self.steps_done = 0
        """Optimizer steps so far (the mean teacher's ramp-up), kept in checkpoints."""

    def _rampup(self) -> float:
        length = self.cfg.rampup_epochs * len(self.unlabeled)
        if length <= 0:
            return 1.0
        t = min(self.steps_done / length, 1.0)
        return math.exp(-5.0 * (1.0 - t) ** 2)

    def train_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        unlabeled = context.draw(UNLABELED)
        weak, strong = unlabeled.inputs, unlabeled.read(STRONG)
        module = context.module
        size, count = len(batch), len(weak)
        fixmatch = self.cfg.method == "fixmatch"
        together = torch.cat([batch.inputs, weak, strong] if fixmatch else [batch.inputs, strong])
        with context.autocast():
            logits = module.head.logits(module.main_outputs(model(together, None))).float()
        labeled = logits[:size]
        supervised = module.head.loss(labeled, batch)
        if fixmatch:
            weak_logits, strong_logits = logits[size : size + count], logits[size + count :]
            confidence, pseudo = F.softmax(weak_logits.detach(), dim=1).max(dim=1)
            mask = (confidence >= self.cfg.threshold).float()
            per_image = F.cross_entropy(strong_logits, pseudo, reduction="none")
            unsupervised = (per_image * mask).mean()
            weight = self.cfg.unlabeled_weight
            logs = {"unlabeled_loss": unsupervised.detach(), "mask_rate": mask.mean()}
        else:
            if context.ema is None:
                raise ValueError(
                    "training.step.method='mean_teacher' uses the EMA weights as its teacher: pass "
                    "--training.ema_decay (e.g. 0.99)."
                )
            with torch.no_grad(), context.autocast():
                teacher = context.ema
                teacher_logits = module.head.logits(module.main_outputs(teacher(weak, None))).float()
            student = F.softmax(logits[size:], dim=1)
            unsupervised = F.mse_loss(student, F.softmax(teacher_logits, dim=1), reduction="sum") / count
            weight = self.cfg.unlabeled_weight * self._rampup()
            logs = {"unlabeled_loss": unsupervised.detach(), "consistency_weight": logits.new_tensor(weight)}
        self.steps_done += 1
        return StepOutput(supervised + weight * unsupervised, labeled, logs=logs)

    def eval_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        with context.autocast():
            outputs = model(batch.inputs, batch.valid)
        loss, _ = context.module.loss_terms(outputs, batch)
        return StepOutput(loss, outputs)

    def epoch_length(self, batches: int) -> int:
        return len(self.unlabeled)

    def modules(self) -> dict[str, nn.Module]:
        return {}

    def extra_optimizers(self) -> dict[str, ExtraOptimizer]:
        return {}

    def extra_loaders(self) -> dict[str, DataLoader]:
        return {UNLABELED: self.unlabeled}

    def state_dict(self) -> dict[str, Any]:
        return {"steps_done": self.steps_done}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps_done = int(state.get("steps_done", 0))
