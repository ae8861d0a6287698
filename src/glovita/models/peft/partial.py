"""Partial fine-tuning and BitFit: a subset of the encoder's own parameters trains."""

from torch import nn

from glovita.models.composite import GlovitaModel
from glovita.models.layers import encoder_depths


def _frozen_batchnorms(encoder: nn.Module, frozen: set[str]) -> list[str]:
    """Model-level names of the encoder's BatchNorm layers whose weights are frozen."""
    return [
        f"encoder.{name}"
        for name, child in encoder.named_modules()
        if isinstance(child, nn.modules.batchnorm._BatchNorm) and f"{name}.weight" in frozen
    ]


def apply_partial_finetuning(model: GlovitaModel, trainable_blocks: int) -> GlovitaModel:
    """Train the encoder's last `trainable_blocks` depth groups and the head."""
    depths = encoder_depths(model.encoder_module)
    kept = sorted(set(depths.values()))[-trainable_blocks:]
    frozen = set()
    for name, param in model.encoder.named_parameters():
        param.requires_grad_(depths.get(name, 0) in kept)
        if not param.requires_grad:
            frozen.add(name)
    model.head.requires_grad_(True)
    model.frozen_norms = _frozen_batchnorms(model.encoder_module, frozen)  # their running statistics stay too
    return model


def apply_bitfit(model: GlovitaModel) -> GlovitaModel:
    """Train only the encoder's biases (and the head)."""
    for name, param in model.encoder.named_parameters():
        param.requires_grad_(name.endswith("bias"))
    model.head.requires_grad_(True)
    return model
