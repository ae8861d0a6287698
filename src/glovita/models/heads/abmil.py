"""ABMIL: gated-attention multiple-instance learning (Ilse, Tomczak and Welling, ICML 2018)."""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from glovita.models.heads.mil import GatedAttention, MilOutput, masked_softmax
from glovita.runtime.batch import Batch


class AbmilHead(nn.Module):
    """bags (B, N, D) + mask (B, N) -> MilOutput with logits (B, K) and attention (B, 1, N)."""

    consumes: Literal["bag"] = "bag"

    def __init__(
        self, in_dim: int, num_classes: int, hidden_dim: int, attention_dim: int, gated: bool, dropout: float
    ) -> None:
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Dropout(dropout))
        self.attention = GatedAttention(hidden_dim, attention_dim, 1, gated, dropout)
        self.classifier = nn.Linear(hidden_dim, num_classes)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> MilOutput:
        embeddings = self.embed(features)
        weights = masked_softmax(self.attention(embeddings).transpose(1, 2), mask.unsqueeze(1))
        pooled = (weights.to(embeddings.dtype) @ embeddings).squeeze(1)
        return MilOutput(self.classifier(pooled), weights, embeddings, mask)

    def loss(self, outputs: MilOutput, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(outputs.logits.float(), batch.targets)

    def instance_attention(self, outputs: MilOutput) -> tuple[torch.Tensor, torch.Tensor]:
        """(attention (B, A, N) over each bag's instances, mask (B, N) of real instances): what glovita_infer writes
        per bag."""
        return outputs.attention, outputs.mask

    def logits(self, outputs: MilOutput) -> torch.Tensor:
        return outputs.logits

    def predict(self, outputs: MilOutput) -> torch.Tensor:
        return outputs.logits.float().softmax(dim=-1)
