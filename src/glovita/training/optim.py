"""Optimizer and learning-rate schedule from the optimizer config."""

import math

import torch
from torch import nn

from glovita.configs.optimizer import AdamOptimizerConfig, AdamwOptimizerConfig, OptimizerConfig, SgdOptimizerConfig


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on biases and normalisation weights (1-D parameters)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(cfg: OptimizerConfig, model: nn.Module, fused: bool) -> torch.optim.Optimizer:
    """The optimizer of `cfg.name`; `fused` selects PyTorch's fused kernel where the optimizer has one."""
    groups = _param_groups(model, cfg.weight_decay)
    if not any(group["params"] for group in groups):
        raise ValueError("No parameter is trainable: the PEFT method froze everything. Check --peft.method.")
    match cfg:
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
