"""Depth of encoder parameters (stem = 0, then blocks/stages, final norm last), for partial fine-tuning and
layer-wise learning-rate decay. timm models use their own group matcher; other families their block list."""

from typing import Any

from torch import nn

_BLOCK_LISTS = ("model.encoder.layer", "model.encoder.layers", "model.encoder.stages", "net.stages", "eva.blocks")
"""Where the sequential blocks live: HF ViT/DeiT/BEiT/DINOv2, HF Swin, HF ConvNeXt, residual encoder, Primus."""


def _block_list(encoder: nn.Module) -> str | None:
    for path in _BLOCK_LISTS:
        module: Any = encoder
        for part in path.split("."):
            module = getattr(module, part, None)
            if module is None:
                break
        if isinstance(module, nn.ModuleList | nn.Sequential) and len(module) > 0:
            return path
    return None


def encoder_depths(encoder: nn.Module) -> dict[str, int]:
    """{parameter name (as in encoder.named_parameters()): depth}, depths counted from 0 at the input."""
    inner = getattr(encoder, "model", None)
    if inner is not None and hasattr(inner, "group_matcher"):  # timm
        from timm.models import group_parameters

        groups = group_parameters(inner, inner.group_matcher(coarse=False), reverse=True)
        return {f"model.{name}": int(depth) for name, depth in groups.items()}
    path = _block_list(encoder)
    if path is None:
        raise ValueError(
            f"{type(encoder).__name__} has no block list GloViTa knows, so depth-based PEFT / layer decay cannot "
            "split it. Use full_finetuning, linear_probing, bitfit, lora or dora."
        )
    depths, seen_blocks = {}, False
    count = sum(1 for _ in _resolve(encoder, path))
    for name, _ in encoder.named_parameters():
        if name.startswith(f"{path}."):
            depths[name] = int(name[len(path) + 1 :].split(".")[0]) + 1
            seen_blocks = True
        else:
            depths[name] = count + 1 if seen_blocks else 0
    return depths


def _resolve(module: nn.Module, path: str) -> Any:
    """The submodule at dotted `path` (a block list: iterable)."""
    found: Any = module
    for part in path.split("."):
        found = getattr(found, part)
    return found
