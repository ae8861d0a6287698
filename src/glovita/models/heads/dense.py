"""Dense (segmentation) heads: a class per pixel from the encoder's multi-scale features; Dice + cross-entropy."""

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from glovita.runtime.batch import LABEL_MAP, TARGET_IMAGE, Batch


def soft_dice_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int, eps: float = 1.0) -> torch.Tensor:
    """1 - the mean over classes of the soft Dice between softmax(logits) (B, K, H, W) and labels (B, H, W), pixels
    labelled `ignore_index` left out (the smoothing `eps` keeps classes absent from the batch near 1)."""
    probabilities = logits.float().softmax(dim=1)
    valid = (labels != ignore_index).unsqueeze(1)
    onehot = F.one_hot(labels.where(labels != ignore_index, 0), logits.shape[1]).movedim(-1, 1)
    probabilities = probabilities * valid
    onehot = onehot * valid
    dims = (0, *range(2, logits.ndim))
    intersection = (probabilities * onehot).sum(dims)
    total = probabilities.sum(dims) + onehot.sum(dims)
    return 1 - ((2 * intersection + eps) / (total + eps)).mean()


class DenseLoss:
    """Cross-entropy (pixels labelled ignore_index skipped) + dice_weight * soft Dice, against the batch's label map."""

    def __init__(self, ignore_index: int, dice_weight: float) -> None:
        self.ignore_index = ignore_index
        self.dice_weight = dice_weight

    def __call__(self, logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        labels = batch.read(LABEL_MAP).long()
        loss = F.cross_entropy(logits.float(), labels, ignore_index=self.ignore_index)
        if self.dice_weight > 0:
            loss = loss + self.dice_weight * soft_dice_loss(logits, labels, self.ignore_index)
        return loss

    def predict(self, logits: torch.Tensor) -> torch.Tensor:
        """Class probabilities (B, K, ...)."""
        return logits.float().softmax(dim=1)


class ImageLoss:
    """Mean squared (`mse`) or absolute (`l1`) error of predicted images against the batch's target images
    (label-free tasks)."""

    def __init__(self, kind: str = "mse") -> None:
        self.kind = kind

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        loss = F.l1_loss if self.kind == "l1" else F.mse_loss
        return loss(outputs.float(), batch.read(TARGET_IMAGE).float())

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """Predicted images (B, C, ...) clipped to [0, 1]."""
        return outputs.float().clamp(0.0, 1.0)


class DenseHead(nn.Module):
    """pyramid [input (B, C, H, W), then feature maps coarser by level] -> logits (B, K, H, W) by its `decoder`;
    owns the dense loss (cross-entropy + soft Dice against the batch's label map)."""

    consumes: Literal["pyramid"] = "pyramid"

    def __init__(self, decoder: nn.Module, loss: "DenseLoss | ImageLoss") -> None:
        super().__init__()
        self.decoder = decoder
        self.dense_loss = loss

    def forward(self, pyramid: list[torch.Tensor]) -> torch.Tensor:
        return self.decoder(pyramid)

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.dense_loss(outputs, batch)

    def predict(self, outputs: torch.Tensor) -> torch.Tensor:
        """Class probabilities (B, K, H, W), or predicted images (label-free): as its loss reads the outputs."""
        return self.dense_loss.predict(outputs)

    def logits(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs


class UnetDecoder(nn.Module):
    """The U-Net decoder of segmentation_models_pytorch over the pyramid (each block upsamples to the next level's
    size, so any input size works), then a 3x3 convolution to the classes.

    Args:
        pyramid_channels: channels of each pyramid entry, the input's first.
        decoder_channels: channels of the decoder blocks, coarsest first; the first len(pyramid) - 1 are used.
    """

    def __init__(
        self, pyramid_channels: Sequence[int], num_classes: int, decoder_channels: Sequence[int], dropout: float
    ) -> None:
        super().__init__()
        from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder as SmpUnetDecoder

        levels = len(pyramid_channels) - 1
        channels = list(decoder_channels[:levels])
        self.decoder = SmpUnetDecoder(list(pyramid_channels), channels, n_blocks=levels)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(channels[-1], num_classes, kernel_size=3, padding=1)

    def forward(self, pyramid: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.dropout(self.decoder(pyramid)))


class TorchvisionClassifier(nn.Module):
    """The classifier of a torchvision segmentation model (FCN, DeepLabV3, LR-ASPP; its last convolution sized to
    the classes) over the model's own backbone levels, upsampled bilinearly to the input's size, as torchvision does.

    Args:
        classifier: the torchvision classifier module.
        takes_levels: LR-ASPP's classifier takes {"low", "high"} levels; FCN and DeepLab take the last level.
    """

    def __init__(self, classifier: nn.Module, takes_levels: bool) -> None:
        super().__init__()
        self.classifier = classifier
        self.takes_levels = takes_levels

    def forward(self, pyramid: list[torch.Tensor]) -> torch.Tensor:
        if self.takes_levels:
            scores = self.classifier({"low": pyramid[-2], "high": pyramid[-1]})
        else:
            scores = self.classifier(pyramid[-1])
        return F.interpolate(scores, size=pyramid[0].shape[-2:], mode="bilinear", align_corners=False)


class StagesDecoder(nn.Module):
    """A decoder that takes the encoder's stage maps (nnU-Net's UNetDecoder: the pyramid without the input), its
    output resized to the input's size where the first stage downsamples (2D bilinear, 3D trilinear)."""

    def __init__(self, decoder: nn.Module) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, pyramid: list[torch.Tensor]) -> torch.Tensor:
        scores = self.decoder(pyramid[1:])
        size = pyramid[0].shape[2:]
        if scores.shape[2:] != size:
            mode = "bilinear" if len(size) == 2 else "trilinear"
            scores = F.interpolate(scores, size=size, mode=mode, align_corners=False)
        return scores
