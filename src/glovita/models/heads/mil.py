"""Building blocks shared by the MIL heads: gated attention, masked softmax, the structured output."""

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class MilOutput:
    """What a MIL head returns: bag logits (B, K), attention (B, A, N) over instances, embeddings, mask."""

    logits: torch.Tensor
    attention: torch.Tensor
    embeddings: torch.Tensor
    mask: torch.Tensor


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim where padded positions (mask False) get exactly zero weight."""
    scores = scores.float().masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


class GatedAttention(nn.Module):
    """Attention scores (B, N, branches) from instance embeddings (B, N, L) (Ilse et al., 2018, eq. 9)."""

    def __init__(self, in_dim: int, hidden_dim: int, branches: int, gated: bool, dropout: float) -> None:
        super().__init__()
        self.value = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.Tanh(), nn.Dropout(dropout))
        self.gate = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.Sigmoid(), nn.Dropout(dropout)) if gated else None
        self.score = nn.Linear(hidden_dim, branches)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        hidden = self.value(embeddings)
        if self.gate is not None:
            hidden = hidden * self.gate(embeddings)
        return self.score(hidden)
