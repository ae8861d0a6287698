"""Optimizer and learning-rate schedule from the optimizer config."""

import math

import torch

from glovita.configs.optimizer import (
    AdamOptimizerConfig,
    AdamwOptimizerConfig,
    LbfgsOptimizerConfig,
    OptimizerConfig,
    SgdOptimizerConfig,
)
from glovita.models.composite import GlovitaModel


def param_groups(
    model: GlovitaModel, lr: float, weight_decay: float, encoder_lr: float | None, layer_decay: float | None = None
) -> list[dict]:
    """Encoder and head groups (each with its own peak lr; with layer decay one encoder group per depth), each
    split so that biases and normalisation weights (1-D parameters) get no weight decay. Empty groups are left
    out."""
    depths: dict[str, int] = {}
    if layer_decay is not None:
        from glovita.models.layers import encoder_depths

        depths = {f"encoder.{name}": depth for name, depth in encoder_depths(model.encoder_module).items()}
    deepest = max(depths.values(), default=0)
    split = encoder_lr is not None or layer_decay is not None
    groups: dict[tuple[str, bool], tuple[float, list[torch.nn.Parameter]]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if split and name.startswith("encoder."):
            depth = depths.get(name)
            part = "encoder" if depth is None else f"encoder_depth{depth:02d}"
            scale = 1.0 if depth is None else layer_decay ** (deepest + 1 - depth)  # type: ignore[operator]
            group_lr = (encoder_lr or lr) * scale
        else:
            part, group_lr = "model", lr
        groups.setdefault((part, param.ndim <= 1), (group_lr, []))[1].append(param)
    return [
        {
            "name": f"{part}{'_no_decay' if no_decay else ''}",
            "params": params,
            "lr": group_lr,
            "weight_decay": 0.0 if no_decay else weight_decay,
        }
        for (part, no_decay), (group_lr, params) in sorted(groups.items())
    ]


def build_optimizer(cfg: OptimizerConfig, model: GlovitaModel, fused: bool) -> torch.optim.Optimizer:
    """The optimizer of `cfg.name`; `fused` selects PyTorch's fused kernel where the optimizer has one."""
    groups = param_groups(model, cfg.lr, cfg.weight_decay or 0.0, cfg.encoder_lr, cfg.layer_decay)
    if not groups:
        raise ValueError("No parameter is trainable: the PEFT method froze everything. Check --peft.method.")
    match cfg:
        case LbfgsOptimizerConfig():
            # One group (L-BFGS keeps one curvature history); the L2 term is added to the loss by the Trainer's
            # full-batch epoch from the group's weight_decay, on the weights (ndim > 1) only.
            trainable = [p for group in groups for p in group["params"]]
            single = [{"params": trainable, "weight_decay": cfg.weight_decay or 0.0, "name": "model"}]
            return torch.optim.LBFGS(
                single,
                lr=cfg.lr,
                max_iter=cfg.max_iter,
                max_eval=2 * cfg.max_iter,
                tolerance_grad=cfg.tolerance_grad,
                tolerance_change=cfg.tolerance_change,
                history_size=cfg.history_size,
                line_search_fn="strong_wolfe",
            )
        case AdamwOptimizerConfig():
            return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, fused=fused or None)
        case AdamOptimizerConfig():
            return torch.optim.Adam(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, fused=fused or None)
        case SgdOptimizerConfig():
            return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov)
        case _:
            raise TypeError(f"No optimizer branch for {type(cfg).__name__} in glovita/training/optim.py.")


def lr_factor(
    step: int, total_steps: int, warmup_steps: int, kind: str, min_ratio: float, step_size: int, gamma: float
) -> float:
    """Multiplier of the peak learning rate at optimizer step `step`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == "cosine":
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    if kind == "step":
        return gamma ** ((step - warmup_steps) // step_size)
    return 1.0


def build_scheduler(
    cfg: OptimizerConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step schedule with linear warm-up; stepped after every optimizer step."""
    total = steps_per_epoch * epochs
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    min_ratio = cfg.min_lr / cfg.lr
    step_size = cfg.step_size_epochs * steps_per_epoch

    def factor(step: int) -> float:
        return lr_factor(step, total, warmup, cfg.scheduler, min_ratio, step_size, cfg.gamma)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
