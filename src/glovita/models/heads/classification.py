"""Classification head: (optional MLP) linear classifier, cross-entropy with label smoothing and soft targets."""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from glovita.runtime.batch import Batch


def mlp(in_dim: int, out_dim: int, dropout: float, hidden_dim: int | None) -> nn.Sequential:
    """Dropout -> [Linear -> GELU -> Dropout] -> Linear."""
    layers: list[nn.Module] = [nn.Dropout(dropout)]
    if hidden_dim is not None:
        layers += [nn.Linear(in_dim, hidden_dim), nn.GELU(), nn.Dropout(dropout)]
        in_dim = hidden_dim
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class ClassificationHead(nn.Module):
    """features (B, D) -> logits (B, K). Single-label: softmax cross-entropy; multilabel: per-class sigmoid BCE.

    Args:
        class_weight: per-class loss weight: cross-entropy class weights (single-label), or BCE pos_weight,
            the weight of each label's positives (multilabel). A plain attribute, not a buffer, so checkpoints
            load without it (inference, extraction).
    """

    consumes: Literal["vector"] = "vector"

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        dropout: float,
        hidden_dim: int | None,
        label_smoothing: float,
        multilabel: bool = False,
        class_weight: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.net = mlp(in_dim, num_classes, dropout, hidden_dim)
        self.label_smoothing = label_smoothing
        self.multilabel = multilabel
        self.class_weight = class_weight

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net(features)

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Cross-entropy against class indices (B,) or mixed soft targets (B, K); multilabel: BCE on (B, K)."""
        targets = batch.targets
        weight = None if self.class_weight is None else self.class_weight.to(outputs.device)
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(outputs.float(), targets.float(), pos_weight=weight)
        return F.cross_entropy(outputs.float(), targets, weight=weight, label_smoothing=self.label_smoothing)

    def training_logs(self, outputs: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """Accuracy on a training batch of class indices; nothing for mixed (soft) targets or multilabel rows."""
        targets = batch.targets
        if self.multilabel or targets.is_floating_point() or targets.shape != outputs.shape[:1]:
            return {}
        return {"accuracy": (outputs.detach().argmax(dim=-1) == targets).float().mean()}

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """Class probabilities (B, K): softmax, or independent sigmoids for multilabel."""
        return outputs.float().sigmoid() if self.multilabel else outputs.float().softmax(dim=-1)

    def logits(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs
