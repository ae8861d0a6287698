"""torchvision's segmentation models (FCN, DeepLabV3, LR-ASPP): the backbone as encoder, the classifier for the
torchvision_segmentation head; whole-model weights load into both."""

from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from glovita.augmentation.preprocessing import Preprocessing
from glovita.models.img_encoder.torchvision_encoder import adapt_first_conv, build_torchvision_model
from glovita.models.preprocessing import torchvision_preprocessing


class TorchvisionSegmentationEncoder(nn.Module):
    """The backbone of a torchvision segmentation model: pyramid() gives [input, its levels] (FCN/DeepLab: the
    output stride 8 map; LR-ASPP: the low and high levels), forward() their last level averaged (B, out_dim).

    The model's classifier (with pretrained weights when a file was loaded) is kept aside, not as a submodule, for
    the torchvision_segmentation head to take with its last convolution resized (take_classifier)."""

    def __init__(self, name: str, pretrained: bool, pretrained_file: Path | None, input_channels: int) -> None:
        super().__init__()
        from torchvision.models import segmentation

        # The whole-model weights hold the auxiliary FCN classifier of FCN and DeepLab; build it so they load, then
        # leave it out (GloViTa trains the main output).
        kwargs: dict[str, object] = {"weights_backbone": None}
        if not name.startswith("lraspp"):
            kwargs["aux_loss"] = True
        model, _ = build_torchvision_model(name, segmentation, "segmentation", pretrained, pretrained_file, kwargs)
        self.name = name
        self.backbone: nn.Module = cast(nn.Module, model.backbone)
        if not name.startswith("lraspp"):
            cast(Any, self.backbone).return_layers = {"layer4": "out"} if "resnet" in name else {"16": "out"}
        if input_channels != 3:
            adapt_first_conv(self.backbone, input_channels, pretrained)
        self.__dict__["_classifier"] = model.classifier  # not a submodule: the head owns it once taken
        self.takes_levels = name.startswith("lraspp")
        with torch.no_grad():
            levels = self.backbone.eval()(torch.zeros(1, input_channels, 64, 64)).values()
        self.backbone.train()
        self.pyramid_channels = [input_channels, *(int(level.shape[1]) for level in levels)]
        self.out_dim = self.pyramid_channels[-1]
        # The segmentation weights' transforms resize the shorter side to 520 without cropping; their statistics
        # are ImageNet's, which the classification defaults carry.
        self.preprocessing: Preprocessing = torchvision_preprocessing(None)

    def take_classifier(self, num_classes: int) -> nn.Module:
        """The model's classifier with its last convolution(s) giving `num_classes` scores (fresh weights there)."""
        classifier: Any = self.__dict__.pop("_classifier")

        def resized(conv: nn.Module) -> nn.Conv2d:
            assert isinstance(conv, nn.Conv2d)
            return nn.Conv2d(conv.in_channels, num_classes, kernel_size=1, bias=conv.bias is not None)

        if isinstance(classifier, nn.Sequential):  # FCNHead, DeepLabHead: the last layer scores the classes
            classifier[-1] = resized(classifier[-1])
        else:  # LRASPPHead scores the classes from both levels
            classifier.low_classifier = resized(classifier.low_classifier)
            classifier.high_classifier = resized(classifier.high_classifier)
        return classifier

    def pyramid(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images (B, C, H, W) -> [images, the backbone's levels (B, D_l, h_l, w_l)]."""
        return [images, *self.backbone(images).values()]

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> the last level (B, out_dim, h, w)."""
        return self.pyramid(images)[-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> the last level averaged (B, out_dim)."""
        return self.forward_features(images).mean(dim=(-2, -1))
