"""LoRA and DoRA adapters on the encoder through Hugging Face peft (injected in place, no wrapper model).

The adapted model's state dict holds the frozen base weights (`...base_layer.weight`) and the adapters
(`...lora_A.default.weight`); building the same config again gives the same keys, so checkpoints reload for
inference and feature extraction. `merged_state_dict` folds the adapters into plain layers.
"""

import copy

import torch
from torch import nn

from glovita.models.composite import GlovitaModel

_STEM_NAMES = ("stem", "conv1", "patch_embed", "down_projection", "embeddings")


def default_targets(encoder: nn.Module) -> list[str]:
    """Every Linear layer of a transformer encoder, else every convolution except the stem's."""
    linear = [name for name, module in encoder.named_modules() if isinstance(module, nn.Linear)]
    if linear:
        return linear
    convs = [
        name
        for name, module in encoder.named_modules()
        if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d)
        and not any(part in _STEM_NAMES for part in name.split("."))
    ]
    if not convs:
        raise ValueError(f"{type(encoder).__name__} has no Linear or Conv layer to adapt. Set --peft.target_modules.")
    return convs


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
            module.merge(safe_merge=True)
    return {key.replace(".base_layer.", "."): value for key, value in merged.state_dict().items() if "lora_" not in key}
