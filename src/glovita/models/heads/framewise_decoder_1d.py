"""Framewise decoder: a label per frame from per-frame features, with dilated temporal 1D convolutions in the
style of MS-TCN (Farha & Gall, 2019): a prediction stage and refinement stages that re-read the previous stage's
probabilities; loss = per-frame cross-entropy + smoothing_weight * the truncated MSE of neighbouring frames'
log-probabilities, summed over stages."""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from glovita.runtime.batch import IGNORE_FRAME, Batch


class _DilatedResidual(nn.Module):
    def __init__(self, dilation: int, width: int, dropout: float) -> None:
        super().__init__()
        self.dilated = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.pointwise = nn.Conv1d(width, width, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (x + self.dropout(self.pointwise(F.relu(self.dilated(x))))) * mask


class _Stage(nn.Module):
    def __init__(self, layers: int, width: int, in_dim: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.inp = nn.Conv1d(in_dim, width, 1)
        self.layers = nn.ModuleList(_DilatedResidual(2**i, width, dropout) for i in range(layers))
        self.out = nn.Conv1d(width, num_classes, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.inp(x) * mask  # padded frames are zero, as beyond either end of the video, for every layer
        for layer in self.layers:
            x = layer(x, mask)
        return self.out(x) * mask


class FramewiseDecoder1dHead(nn.Module):
    """per-frame features (B, T, D) + mask (B, T) -> stage logits (S, B, T, K); the last stage is the prediction."""

    consumes: Literal["frames"] = "frames"

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        num_stages: int,
        num_layers: int,
        hidden_dim: int,
        dropout: float,
        smoothing_weight: float,
        smoothing_clamp: float,
    ) -> None:
        super().__init__()
        self.stages = nn.ModuleList(
            [_Stage(num_layers, hidden_dim, in_dim, num_classes, dropout)]
            + [_Stage(num_layers, hidden_dim, num_classes, num_classes, dropout) for _ in range(num_stages - 1)]
        )
        self.smoothing_weight = smoothing_weight
        self.smoothing_clamp = smoothing_clamp

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask[:, None, :].to(features.dtype)  # (B, 1, T)
        x = self.stages[0](features.transpose(1, 2), keep)
        outputs = [x]
        for stage in self.stages[1:]:
            x = stage(F.softmax(x.float(), dim=1).to(features.dtype) * keep, keep)
            outputs.append(x)
        return torch.stack(outputs).transpose(2, 3)  # (S, B, T, K)

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Per-frame cross-entropy (padding ignored) + smoothing over neighbouring real frames, summed over stages."""
        targets = batch.targets
        assert batch.valid is not None
        pairs = (batch.valid[:, 1:] & batch.valid[:, :-1]).float()
        total = outputs.new_zeros((), dtype=torch.float32)
        for logits in outputs.float():
            total = total + F.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_FRAME
            )
            if self.smoothing_weight:
                log_probs = F.log_softmax(logits, dim=-1)
                squared = (log_probs[:, 1:] - log_probs[:, :-1].detach()) ** 2
                truncated = squared.clamp(max=self.smoothing_clamp**2).mean(dim=-1)
                total = total + self.smoothing_weight * (truncated * pairs).sum() / pairs.sum().clamp(min=1)
        return total

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """Class probabilities per frame (B, T, K) of the last stage."""
        return outputs[-1].float().softmax(dim=-1)

    def logits(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs[-1]
