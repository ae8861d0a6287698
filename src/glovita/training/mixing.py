"""Mixup / cutmix of training batches (torchvision transforms v2)."""

import torch
from torchvision.transforms import v2


class BatchMixer:
    """Mixes a batch with probability `prob`; labels become soft targets (B, K) then."""

    def __init__(self, num_classes: int, mixup_alpha: float, cutmix_alpha: float, prob: float) -> None:
        choices = []
        if mixup_alpha > 0:
            choices.append(v2.MixUp(alpha=mixup_alpha, num_classes=num_classes))
        if cutmix_alpha > 0:
            choices.append(v2.CutMix(alpha=cutmix_alpha, num_classes=num_classes))
        self.transform = v2.RandomChoice(choices) if choices else None
        self.prob = prob

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.transform is None or torch.rand(()) >= self.prob:
            return images, targets
        return self.transform(images, targets)
