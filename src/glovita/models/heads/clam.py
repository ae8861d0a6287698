"""CLAM: clustering-constrained attention MIL (Lu et al., Nature Biomedical Engineering 2021).

Follows the reference design (CLAM_SB / CLAM_MB): Linear+ReLU embedding, gated attention with one branch (sb)
or one per class (mb), attention pooling, and an instance-level clustering loss on the k most and least
attended instances of each bag. Unlike the reference, bags come in padded batches: padded instances get zero
attention and are never sampled, and k is clamped to each bag's real size (the reference fails on bags
smaller than k_sample).
"""

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from glovita.models.heads.mil import GatedAttention, MilOutput, masked_softmax
from glovita.runtime.batch import Batch

_WIDTHS = {"small": (512, 256), "big": (512, 384)}


def smooth_top1_svm(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 1.0, tau: float = 1.0) -> torch.Tensor:
    """Smooth top-1 SVM loss (Berrada, Zisserman and Kumar, ICLR 2018), as CLAM's `topk` dependency uses it."""
    margins = alpha * (1.0 - F.one_hot(targets, logits.shape[-1]).to(logits.dtype))
    smooth_max = tau * torch.logsumexp((logits + margins) / tau, dim=-1)
    return (smooth_max - logits.gather(-1, targets[:, None]).squeeze(-1)).mean()


class ClamHead(nn.Module):
    """bags (B, N, D) + mask (B, N) -> MilOutput with logits (B, K) and attention (B, 1 or K, N)."""

    consumes: Literal["bag"] = "bag"

    def __init__(
        self,
        in_dim: int,
        num_classes: int,
        variant: str,
        size: str,
        dropout: float,
        instance_eval: bool,
        k_sample: int,
        bag_weight: float,
        instance_loss: str,
        subtyping: bool,
    ) -> None:
        super().__init__()
        width, attention_width = _WIDTHS[size]
        self.multi_branch = variant == "mb"
        self.num_classes = num_classes
        self.embed = nn.Sequential(nn.Linear(in_dim, width), nn.ReLU(), nn.Dropout(dropout))
        self.attention = GatedAttention(width, attention_width, num_classes if self.multi_branch else 1, True, dropout)
        if self.multi_branch:
            self.classifiers = nn.ModuleList(nn.Linear(width, 1) for _ in range(num_classes))
        else:
            self.classifier = nn.Linear(width, num_classes)
        self.instance_classifiers = nn.ModuleList(nn.Linear(width, 2) for _ in range(num_classes))
        self.instance_eval = instance_eval
        self.k_sample = k_sample
        self.bag_weight = bag_weight
        self.instance_loss_fn = smooth_top1_svm if instance_loss == "svm" else F.cross_entropy
        self.subtyping = subtyping

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> MilOutput:
        embeddings = self.embed(features)
        attention = masked_softmax(self.attention(embeddings).transpose(1, 2), mask.unsqueeze(1))
        pooled = attention.to(embeddings.dtype) @ embeddings  # (B, branches, L)
        if self.multi_branch:
            logits = torch.cat([clf(pooled[:, c]) for c, clf in enumerate(self.classifiers)], dim=-1)
        else:
            logits = self.classifier(pooled[:, 0])
        return MilOutput(logits, attention, embeddings, mask)

    def _instance_loss(self, outputs: MilOutput, targets: torch.Tensor) -> torch.Tensor:
        """Mean over bags of the clustering loss on the top/bottom-k attended instances per class branch."""
        per_bag = []
        for b in range(targets.shape[0]):
            valid = outputs.mask[b]
            embeddings = outputs.embeddings[b][valid].float()
            k = min(self.k_sample, embeddings.shape[0])
            total = embeddings.new_zeros(())
            for c, classifier in enumerate(self.instance_classifiers):
                scores = outputs.attention[b, c if self.multi_branch else 0][valid]
                top = torch.topk(scores, k).indices
                if c == int(targets[b]):
                    bottom = torch.topk(-scores, k).indices
                    chosen = torch.cat([top, bottom])
                    labels = torch.cat([torch.ones(k), torch.zeros(k)]).long().to(chosen.device)
                elif self.subtyping:
                    chosen, labels = top, torch.zeros(k, dtype=torch.long, device=top.device)
                else:
                    continue
                total = total + self.instance_loss_fn(classifier(embeddings[chosen]).float(), labels)
            per_bag.append(total / self.num_classes if self.subtyping else total)
        return torch.stack(per_bag).mean()

    def loss(self, outputs: MilOutput, batch: Batch) -> torch.Tensor:
        targets = batch.targets
        bag_loss = F.cross_entropy(outputs.logits.float(), targets)
        if not self.instance_eval:
            return bag_loss
        return self.bag_weight * bag_loss + (1 - self.bag_weight) * self._instance_loss(outputs, targets)

    def instance_attention(self, outputs: MilOutput) -> tuple[torch.Tensor, torch.Tensor]:
        """(attention (B, A, N) over each bag's instances, mask (B, N) of real instances): what glovita_infer writes
        per bag."""
        return outputs.attention, outputs.mask

    def logits(self, outputs: MilOutput) -> torch.Tensor:
        return outputs.logits

    def predict(self, outputs: MilOutput) -> torch.Tensor:
        return outputs.logits.float().softmax(dim=-1)
