"""Saliency-guided classification: cross-entropy plus a term that pulls each image's saliency map (of its true
class) onto its annotated segment, backpropagated through the map itself."""

from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from glovita.models.saliency import (
    CamLayer,
    SaliencyMethod,
    cam_term,
    dilated,
    explained,
    foreground_masks,
    gradient_penalty,
    input_gradients,
    normalised,
    saliency_agreement,
    saliency_maps,
)
from glovita.runtime.batch import LABEL_MAP, Batch
from glovita.training.steps.base import ExtraOptimizer, StepContext, StepOutput


class SaliencyGuidedStep:
    """loss = head loss + weight x mean over annotated images of the saliency term.

    CAM methods: the term compares the CAM (HiResCAM, Grad-CAM, Grad-CAM++) of the true class with the mask
    (cam_term); input_gradient: squared input gradients of the summed log-probabilities outside the mask
    (Ross et al. 2017). Evaluation logs saliency_iou, pointing_game and saliency_loss."""

    eval_needs_grad = True
    manual_optimization = False

    def __init__(
        self,
        method: SaliencyMethod,
        term: str,
        weight: float,
        layer: CamLayer | None,
        ignore_index: int,
        dilation: int = 0,
    ) -> None:
        self.dilation = dilation
        self.method = method
        self.term = term
        self.weight = weight
        self.layer = layer
        self.ignore_index = ignore_index

    def _terms(self, model: nn.Module, batch: Batch, context: StepContext, training: bool) -> StepOutput:
        masks, valid = foreground_masks(batch.read(LABEL_MAP), self.ignore_index)
        annotated = masks.flatten(1).amax(dim=1)  # images without a segment add no saliency term
        grown = dilated(masks, valid, self.dilation)

        def forward(inputs: torch.Tensor) -> torch.Tensor:
            with context.autocast():
                outputs = model(inputs, batch.valid)
            return context.module.head.logits(outputs)

        if self.method == "input_gradient":
            logits, gradients = input_gradients(forward, batch.inputs, create_graph=training)
            per_sample = gradient_penalty(gradients, grown, valid)
            maps = gradients.detach().abs().sum(dim=1)
        else:
            logits, maps = saliency_maps(forward, batch.inputs, batch.targets, self.method, self.layer, training)
            per_sample = cam_term(maps, grown, valid, self.term)
        saliency = (per_sample * annotated).sum() / annotated.sum().clamp_min(1)
        outputs = logits  # a classification head's outputs are its logits
        loss = context.module.head.loss(outputs, batch) + self.weight * saliency
        agreement = saliency_agreement(maps, masks, valid)
        logs = {key: (value * annotated).sum() / annotated.sum().clamp_min(1) for key, value in agreement.items()}
        logs["saliency_loss"] = saliency.detach()
        if not training:
            loss = loss.detach()
        return StepOutput(loss, outputs.detach() if not training else outputs, logs=logs)

    def maps(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """(saliency maps (B, ...) of the true classes scaled to [0, 1], annotated masks (B, ...)) of a batch, as the
        step's evaluation computes them; for the run directory's pictures."""
        masks, _ = foreground_masks(batch.read(LABEL_MAP), self.ignore_index)
        maps = explained(model, batch.inputs, batch.valid, batch.targets, self.method, self.layer)
        return normalised(maps), masks

    def train_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        return self._terms(model, batch, context, training=True)

    def eval_step(self, model: nn.Module, batch: Batch, context: StepContext) -> StepOutput:
        return self._terms(model, batch, context, training=False)

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
            raise ValueError(f"The saliency-guided step keeps no state, but the checkpoint holds {sorted(state)}.")
