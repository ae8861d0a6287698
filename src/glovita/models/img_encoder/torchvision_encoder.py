"""torchvision classification models as encoders (last linear layer removed)."""

from pathlib import Path
from typing import Any

import torch
from torch import nn

from glovita.augmentation.preprocessing import Preprocessing
from glovita.models.preprocessing import torchvision_preprocessing
from glovita.models.weights import check_weights_file, find_torchvision_weights, load_state_dict_file

_RESNET_TRUNK = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
"""The feature trunk of torchvision's ResNet / ResNeXt / Wide ResNet, in forward order."""


def replace_module(root: nn.Module, dotted: str, new: nn.Module) -> None:
    """Put `new` where the submodule named `dotted` is."""
    parent_name, _, child = dotted.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, new)


def build_torchvision_model(
    name: str,
    family: Any,
    kind: str,
    pretrained: bool,
    pretrained_file: Path | None,
    model_kwargs: dict[str, Any],
) -> tuple[nn.Module, Any]:
    """(model, its default weights enum or None) of a torchvision model of `family` (torchvision.models or
    torchvision.models.video), with the weights of `pretrained_file` or the torch hub cache loaded when
    `pretrained` (never downloaded); names outside the family and weights that do not fit are refused."""
    from torchvision import models

    available = models.list_models(module=family)
    if name not in available:
        import difflib

        close = difflib.get_close_matches(name, available, n=3)
        raise ValueError(
            f"model.encoder.type={name!r} is not a torchvision {kind} model. Closest: {', '.join(close) or 'none'}. "
            f"See torchvision.models.list_models(module={family.__name__})."
        )
    weights_enum = models.get_model_weights(name)
    default_weights = weights_enum.DEFAULT if weights_enum else None
    model = models.get_model(name, weights=None, **model_kwargs)
    if pretrained:
        file = (
            check_weights_file(pretrained_file) if pretrained_file else find_torchvision_weights(name, default_weights)
        )
        field = "model.encoder.pretrained_path" if pretrained_file else "model.encoder.type"
        try:
            missing, unexpected = model.load_state_dict(load_state_dict_file(file, field), strict=False)
        except RuntimeError as err:  # size mismatches
            raise ValueError(
                f"Weights file '{file}' does not fit torchvision model {name!r} "
                f"({' '.join(str(err).split())[:300]}). Is it the weights of another architecture?"
            ) from err
        if missing or unexpected:
            raise ValueError(
                f"Weights file '{file}' does not fit torchvision model {name!r}: "
                f"missing keys {missing[:5]}, unexpected keys {unexpected[:5]}."
            )
    return model, default_weights


def _first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise ValueError("model.encoder.input_channels: this torchvision model has no Conv2d stem to adapt.")


def adapt_first_conv(model: nn.Module, input_channels: int, pretrained: bool) -> None:
    """Give `model` a first convolution that takes `input_channels`; pretrained kernels are averaged over the RGB
    channels and spread over the new ones (the summed response stays the same)."""
    conv_name, conv = _first_conv(model)
    new = nn.Conv2d(
        input_channels,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]  # a Conv2d's own 2-tuples
        conv.stride,  # type: ignore[arg-type]
        conv.padding,  # type: ignore[arg-type]
        conv.dilation,  # type: ignore[arg-type]
        conv.groups,
        conv.bias is not None,
    )
    if pretrained:
        with torch.no_grad():
            mean_kernel = conv.weight.mean(dim=1, keepdim=True)
            new.weight.copy_(mean_kernel.repeat(1, input_channels, 1, 1) * 3 / input_channels)
    replace_module(model, conv_name, new)


class TorchvisionImgEncoder(nn.Module):
    """A torchvision classification model whose last nn.Linear is replaced by identity."""

    def __init__(
        self,
        name: str,
        pretrained: bool,
        pretrained_file: Path | None,
        input_channels: int,
        model_kwargs: dict[str, int | float | bool | str],
    ) -> None:
        super().__init__()
        from torchvision import models

        self.model, default_weights = build_torchvision_model(
            name, models, "classification", pretrained, pretrained_file, model_kwargs
        )
        last_linear = [(n, m) for n, m in self.model.named_modules() if isinstance(m, nn.Linear)][-1]
        replace_module(self.model, last_linear[0], nn.Identity())
        self.out_dim = int(last_linear[1].in_features)
        if input_channels != 3:
            adapt_first_conv(self.model, input_channels, pretrained)
        self.preprocessing: Preprocessing = torchvision_preprocessing(default_weights)

    def forward_features(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> the feature map (B, D, h, w) before the classifier's pooling: the model's
        `features` trunk (MobileNet, EfficientNet, ConvNeXt, VGG, DenseNet, ...) or a ResNet's layer1..layer4."""
        model = self.model
        trunk = getattr(model, "features", None)
        if isinstance(trunk, nn.Module):
            return trunk(images)
        if all(hasattr(model, name) for name in _RESNET_TRUNK):
            for name in _RESNET_TRUNK:
                images = getattr(model, name)(images)
            return images
        raise ValueError(
            f"{type(model).__name__} has no feature trunk GloViTa knows (a `features` module or ResNet layers), so "
            "its unpooled features are not available. Use --model.encoder.encoder_type timm for this model."
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> features (B, out_dim)."""
        return self.model(images)
