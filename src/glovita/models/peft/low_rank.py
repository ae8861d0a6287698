"""LoRA and DoRA adapters on the encoder through Hugging Face peft (injected in place, no wrapper model).

The adapted model's state dict holds the frozen base weights (`...base_layer.weight`) and the adapters
(`...lora_A.default.weight`); building the same config again gives the same keys, so checkpoints reload for
inference and feature extraction. `merged_state_dict` folds the adapters into plain layers.
"""

import copy
from typing import TYPE_CHECKING

import torch
from torch import nn

from glovita.models.composite import GlovitaModel
from glovita.models.img_encoder.torchvision_encoder import replace_module

if TYPE_CHECKING:
    from peft.tuners.lora import LoraLayer

_STEM_NAMES = ("stem", "conv1", "patch_embed", "down_projection", "embeddings")


def default_targets(encoder: nn.Module) -> list[str]:
    """Every Linear layer of a transformer encoder, else every ungrouped convolution except the stem's."""
    linear = [name for name, module in encoder.named_modules() if isinstance(module, nn.Linear)]
    if linear:
        return linear
    convs = [
        name
        for name, module in encoder.named_modules()
        if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d)
        and module.groups == 1  # peft merges no grouped (depthwise) convolution and needs rank % groups == 0
        and not any(part in _STEM_NAMES for part in name.split("."))
    ]
    if not convs:
        raise ValueError(f"{type(encoder).__name__} has no Linear or Conv layer to adapt. Set --peft.target_modules.")
    return convs


_PLAIN_CONVS: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def _targeted(name: str, targets: list[str]) -> bool:
    """Whether peft adapts the module `name` for these target names (whole name or its last parts)."""
    return any(name == target or name.endswith(f".{target}") for target in targets)


def _plain_convolutions(encoder: nn.Module, targets: list[str]) -> None:
    """Swap each targeted convolution whose class subclasses nn.ConvNd only for its constructor (torchvision's
    video models: Conv3DSimple(in, out, midplanes, stride, padding)) for the plain nn.ConvNd holding the same
    parameters: peft builds the adapters with the targeted layer's own class and nn.ConvNd's arguments. Forward,
    parameter names and so checkpoints stay the same. A subclass with its own forward (weight standardisation,
    'same' padding) is left to peft as it is."""
    for name, module in list(encoder.named_modules()):
        if not _targeted(name, targets):
            continue
        plain = next((base for base in _PLAIN_CONVS if type(module) is not base and isinstance(module, base)), None)
        if plain is None or type(module).forward is not plain.forward:
            continue
        if getattr(type(module), "_conv_forward", None) is not getattr(plain, "_conv_forward", None):
            continue
        settings = {key: getattr(module, key) for key in ("stride", "padding", "dilation", "groups", "padding_mode")}
        with torch.device("meta"):
            replacement = plain(module.in_channels, module.out_channels, module.kernel_size, **settings, bias=False)
        replacement.weight, replacement.bias = module.weight, module.bias
        replacement.train(module.training)
        replace_module(encoder, name, replacement)


def apply_low_rank(
    model: GlovitaModel,
    rank: int,
    alpha: float,
    dropout: float,
    target_modules: tuple[str, ...],
    dora: bool,
) -> GlovitaModel:
    """Inject LoRA (or DoRA) adapters into the encoder; only adapters and head train."""
    from peft import LoraConfig, inject_adapter_in_model

    targets = list(target_modules) or default_targets(model.encoder_module)
    config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, use_dora=dora)  # type: ignore[arg-type]
    _plain_convolutions(model.encoder_module, targets)
    if dora:
        pointwise = [name for name, module in model.encoder_module.named_modules() if _targeted(name, targets)
                     and _pointwise_3d(module)]  # fmt: skip
        if pointwise:
            raise ValueError(
                f"peft.method=dora: peft cannot merge DoRA into 1x1x1 Conv3d layers ({', '.join(pointwise[:4])}). "
                "Use --peft.method lora, or leave them out with --peft.target_modules."
            )
    try:
        inject_adapter_in_model(config, model.encoder_module)
    except ValueError as err:
        raise ValueError(f"peft.target_modules={targets[:6]}: {err}") from err
    for name, param in model.encoder.named_parameters():
        param.requires_grad_("lora_" in name)
    model.head.requires_grad_(True)
    return model


def merged_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's weights with every adapter merged into its base layer, under plain layer names."""
    from peft.tuners.lora import LoraLayer

    merged = copy.deepcopy(model).cpu()
    for module in merged.modules():
        if isinstance(module, LoraLayer):
            if _pointwise_3d(module.get_base_layer()):
                _merge_pointwise_3d(module)
            else:
                module.merge(safe_merge=True)
    return {key.replace(".base_layer.", "."): value for key, value in merged.state_dict().items() if "lora_" not in key}


def _pointwise_3d(layer: nn.Module) -> bool:
    """A 1x1x1 Conv3d: peft 0.21 merges its adapter as if it were a 1x1 Conv2d and fails (X3D's pointwise
    convolutions, the shortcut convolutions of torchvision's video ResNets)."""
    return isinstance(layer, nn.Conv3d) and tuple(layer.kernel_size) == (1, 1, 1)


def _merge_pointwise_3d(layer: "LoraLayer") -> None:
    """Add the LoRA adapters' update B @ A (times the scaling) to a 1x1x1 Conv3d's weight."""
    weight = layer.get_base_layer().weight
    assert isinstance(weight, torch.Tensor)
    with torch.no_grad():
        for adapter in layer.active_adapters:
            if adapter not in layer.lora_A:
                continue
            down, up = layer.lora_A[adapter].weight, layer.lora_B[adapter].weight
            assert isinstance(down, torch.Tensor) and isinstance(up, torch.Tensor)
            update = (up.flatten(1) @ down.flatten(1)).view_as(weight)  # (out, rank) @ (rank, in)
            weight += update.to(weight.dtype) * layer.scaling[adapter]
