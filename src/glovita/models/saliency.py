"""Differentiable saliency maps of a model's class scores (HiResCAM, Grad-CAM, Grad-CAM++, input gradients), the
terms that compare them with annotated segments, and their agreement measures.

Training (the saliency-guided step), evaluation and glovita_infer --saliency all use these, so a map is the same map
everywhere. Gradients come from torch.autograd.grad (with create_graph=True in training), never from
backward(create_graph=True): the loss is then backpropagated once, as DDP expects.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

SaliencyMethod = Literal["hirescam", "gradcam", "gradcam++", "input_gradient"]
CAM_METHODS = ("hirescam", "gradcam", "gradcam++")
MIN_CAM_SIDE = 4
"""A CAM with fewer cells per side cannot tell a region from its neighbours (1x1 says nothing about where)."""
_EPS = 1e-6
_INTERPOLATION = {1: "linear", 2: "bilinear", 3: "trilinear"}
"""Upsampling of a CAM by the number of spatial dimensions."""
_MAX_POOL = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
"""Dilation of a mask by the number of spatial dimensions."""


@dataclass(frozen=True)
class CamLayer:
    """The module whose output a CAM weighs, and how its output becomes feature maps (B, D, h, w).

    to_map(output, input_size) reshapes tokens (B, N, D) of ViTs (prefix tokens dropped, the encoder's patch grid)
    or channels-last maps (B, h, w, D) of Swin-like models; CNN maps pass through."""

    name: str
    module: nn.Module
    to_map: Callable[[torch.Tensor, tuple[int, ...]], torch.Tensor]
    finer: list[tuple[str, int]]
    """(module name, reduction) of the shallower stages, deepest first: what to suggest when this one is too coarse."""


@contextmanager
def captured_output(module: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Holds module's latest forward output under 'output' while the context is open."""
    held: dict[str, torch.Tensor] = {}

    def hook(_: nn.Module, __: Any, output: torch.Tensor) -> None:
        held["output"] = output

    handle = module.register_forward_hook(hook)
    try:
        yield held
    finally:
        handle.remove()


def cam_from(method: SaliencyMethod, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """Activations and gradients of the class score (B, D, h, w), or (B, D, d, h, w) for volumes -> CAM (B, h, w) or
    (B, d, h, w), non-negative."""
    spatial = tuple(range(2, activations.dim()))
    if method == "hirescam":  # Draelos & Carin 2020: element-wise, so the map shows where the score came from
        cam = (gradients * activations).sum(dim=1)
    elif method == "gradcam":  # Selvaraju et al. 2017: channel weights = spatially averaged gradients
        cam = (gradients.mean(dim=spatial, keepdim=True) * activations).sum(dim=1)
    elif method == "gradcam++":  # Chattopadhay et al. 2018, in the closed form pytorch-grad-cam uses
        squared, cubed = gradients.pow(2), gradients.pow(3)
        sums = activations.sum(dim=spatial, keepdim=True)
        alpha = squared / (2 * squared + sums * cubed + 1e-6)
        alpha = torch.where(gradients != 0, alpha, torch.zeros_like(alpha))
        weights = (F.relu(gradients) * alpha).sum(dim=spatial, keepdim=True)
        cam = (weights * activations).sum(dim=1)
    else:
        raise ValueError(f"Saliency method {method!r} is not a CAM; choose one of {', '.join(CAM_METHODS)}.")
    return F.relu(cam)


def check_cam_resolution(layer: CamLayer, cam_size: tuple[int, ...], input_size: tuple[int, ...]) -> None:
    """Refuse a CAM too coarse to say where (fewer than MIN_CAM_SIDE cells per side), naming a finer layer."""
    if min(cam_size) >= MIN_CAM_SIDE:
        return
    side = min(input_size)
    fits = [name for name, reduction in layer.finer if side // reduction >= MIN_CAM_SIDE]
    hint = (
        f"--training.step.target_layer {fits[0]} (glovita_infer: --saliency_layer {fits[0]})"
        if fits
        else "larger images (--data.augmentation.image_size)"
    )
    raise ValueError(
        f"The CAM of layer {layer.name!r} is {'x'.join(map(str, cam_size))} on {'x'.join(map(str, input_size))} "
        f"inputs: too coarse to compare with a mask (at least {MIN_CAM_SIDE} per side). Use {hint}."
    )


def saliency_maps(
    forward: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    classes: torch.Tensor,
    method: SaliencyMethod,
    layer: CamLayer | None,
    create_graph: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits (B, K), saliency (B, H, W) or (B, D, H, W) >= 0 at the input's size) of `forward` on `inputs` (B, C,
    ...) for `classes` (B,).

    CAMs are upsampled (bi- or trilinearly) from the layer's grid. input_gradient gives |d sum_k log p_k / d x|
    summed over channels (Ross et al. 2017); its raw gradients (B, C, ...) come from `input_gradients`."""
    size = tuple(int(n) for n in inputs.shape[2:])
    if method == "input_gradient":
        logits, gradients = input_gradients(forward, inputs, create_graph)
        return logits, gradients.abs().sum(dim=1)
    assert layer is not None, "a CAM needs its layer"
    if not inputs.requires_grad:  # the layer's output then needs a gradient even where the encoder is frozen
        inputs = inputs.detach().requires_grad_(True)
    with captured_output(layer.module) as held:
        logits = forward(inputs)
    if "output" not in held:
        raise ValueError(f"Layer {layer.name!r} did not run in the model's forward pass; choose another target_layer.")
    output = held["output"]
    score = logits.gather(1, classes.long()[:, None]).sum()
    (gradients,) = torch.autograd.grad(score, output, create_graph=create_graph)
    activations = layer.to_map(output, size)
    cam = cam_from(method, activations, layer.to_map(gradients, size))
    check_cam_resolution(layer, tuple(int(n) for n in cam.shape[1:]), size)
    mode = _INTERPOLATION[len(size)]
    upsampled = F.interpolate(cam[:, None].float(), size=size, mode=mode, align_corners=False)[:, 0]
    return logits, upsampled.clamp_min(0)


def explained(
    model: Any,
    inputs: torch.Tensor,
    valid: torch.Tensor | None,
    classes: torch.Tensor,
    method: SaliencyMethod,
    layer: CamLayer | None,
) -> torch.Tensor:
    """Saliency maps (B, ...) of `classes` for a model whose head gives logits, detached: what evaluation pictures and
    glovita_infer draw (gradients on even where the caller runs without them)."""

    def forward(batch_inputs: torch.Tensor) -> torch.Tensor:
        return model.head.logits(model(batch_inputs, valid))

    with torch.enable_grad():
        _, maps = saliency_maps(forward, inputs, classes, method, layer, create_graph=False)
    return maps.detach()


def input_gradients(
    forward: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, create_graph: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, d sum_k log p_k / d inputs) with the inputs' shape (Ross et al. 2017's explanation)."""
    inputs = inputs.detach().requires_grad_(True)
    logits = forward(inputs)
    score = torch.log_softmax(logits.float(), dim=1).sum()
    (gradients,) = torch.autograd.grad(score, inputs, create_graph=create_graph)
    return logits, gradients


def normalised(maps: torch.Tensor) -> torch.Tensor:
    """Maps (B, ...) divided by their maxima, in [0, 1]; an all-zero map stays zero (no NaN)."""
    peaks = maps.flatten(1).amax(dim=1).clamp_min(_EPS)
    return maps / peaks.reshape(-1, *([1] * (maps.dim() - 1)))


def cam_term(maps: torch.Tensor, masks: torch.Tensor, valid: torch.Tensor, term: str) -> torch.Tensor:
    """Per-sample saliency-vs-mask loss (B,) in [0, 1] of maps (B, H, W) against binary masks, over valid pixels.

    overlap: 1 - sum(S*M) / sum(S), the share of saliency outside the segment (the spec's |S n M| / |S|, without
    its threshold, so it is differentiable); soft_iou: 1 - sum(S*M) / (sum(S) + sum(M) - sum(S*M)). S is the map
    divided by its maximum. An all-zero map counts 1 (nothing inside), without NaN."""
    saliency = normalised(maps) * valid
    masks = masks * valid
    inside = (saliency * masks).flatten(1).sum(dim=1)
    total = saliency.flatten(1).sum(dim=1)
    if term == "overlap":
        return 1 - inside / (total + _EPS)
    if term == "soft_iou":
        return 1 - inside / (total + masks.flatten(1).sum(dim=1) - inside + _EPS)
    raise ValueError(f"training.step.term={term!r} is not a saliency term; choose overlap or soft_iou.")


def gradient_penalty(gradients: torch.Tensor, masks: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-sample (B,) sum of squared input gradients (B, C, H, W) outside the segments (Ross et al. 2017's
    "right reasons" term, with the annotation A = not-in-mask)."""
    outside = ((1 - masks) * valid)[:, None]
    return (gradients * outside).pow(2).flatten(1).sum(dim=1)


def saliency_agreement(maps: torch.Tensor, masks: torch.Tensor, valid: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-sample agreement (B,) of maps with binary masks: iou of the map thresholded at half its maximum, and the
    pointing game (1 when the map's maximum lies in the segment)."""
    saliency = normalised(maps.detach()) * valid
    shown = (saliency >= 0.5) & valid.bool()
    truth = masks.bool() & valid.bool()
    intersection = (shown & truth).flatten(1).sum(dim=1).float()
    union = (shown | truth).flatten(1).sum(dim=1).float()
    peak = saliency.flatten(1).argmax(dim=1)
    hit = truth.flatten(1).gather(1, peak[:, None])[:, 0].float()
    return {"saliency_iou": intersection / union.clamp_min(1), "pointing_game": hit}


def foreground_masks(label_maps: torch.Tensor, ignore_index: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(masks, valid) float (B, ...) from annotated label maps: foreground = a class > 0; valid = not ignored."""
    valid = label_maps != ignore_index
    return ((label_maps > 0) & valid).float(), valid.float()


def dilated(masks: torch.Tensor, valid: torch.Tensor, pixels: int) -> torch.Tensor:
    """Masks (B, ...) grown by `pixels` (a square / cube neighbourhood), kept inside the valid pixels."""
    if pixels == 0:
        return masks
    pool = _MAX_POOL[masks.dim() - 1]
    return pool(masks[:, None], 2 * pixels + 1, stride=1, padding=pixels)[:, 0] * valid


def cam_layer_of(encoder: Any, method: SaliencyMethod, name: str | None) -> CamLayer | None:
    """The encoder's CAM layer for `method` (None for input gradients, which need no layer)."""
    if method == "input_gradient":
        return None
    find = getattr(encoder, "cam_layer", None)
    if find is None:
        raise ValueError(
            f"Saliency method {method!r} weighs the feature maps of an encoder layer, and {type(encoder).__name__} "
            "does not name its layers. Use --model.encoder.encoder_type timm, or the input_gradient method."
        )
    return find(name)
