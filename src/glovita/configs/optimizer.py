"""Optimizer (discriminated by `name`) and learning-rate schedule."""

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from glovita.configs.base import GlovitaConfig, choice


class _ScheduleFields(GlovitaConfig):
    """Learning rate, weight decay and schedule, shared by every optimizer."""

    lr: float = Field(1e-3, gt=0)
    """Peak learning rate."""
    encoder_lr: float | None = Field(None, gt=0)
    """Peak learning rate of the encoder's parameters (the head keeps lr), e.g. lower for fine-tuning; unset = lr."""
    layer_decay: float | None = Field(None, gt=0, le=1)
    """Layer-wise learning-rate decay (e.g. 0.75 for ViTs): the encoder's depth group d of L gets
    decay^(L - d) times its learning rate, so early layers change least; unset disables it."""
    weight_decay: float = Field(0.05, ge=0)
    """Weight decay (decoupled for adamw); not applied to biases and normalisation weights."""
    scheduler: Literal["cosine", "step", "none"] = "cosine"
    """Learning-rate schedule, stepped every optimizer step."""
    warmup_epochs: float = Field(0.0, ge=0)
    """Linear warm-up from 0 to lr over this many epochs (cosine and step)."""
    min_lr: float = Field(0.0, ge=0)
    """Final learning rate of the cosine schedule."""
    step_size_epochs: int = Field(30, gt=0)
    """Epochs between decays of the step schedule."""
    gamma: float = Field(0.1, gt=0, le=1)
    """Decay factor of the step schedule."""

    @model_validator(mode="after")
    def _check_min_lr(self) -> "_ScheduleFields":
        if self.min_lr > self.lr:
            raise ValueError(
                f"optimizer.min_lr={self.min_lr} exceeds optimizer.lr={self.lr}. Lower --optimizer.min_lr."
            )
        return self


class AdamwOptimizerConfig(_ScheduleFields):
    """AdamW (fused kernel where PyTorch has one)."""

    name: Literal["adamw"] = "adamw"
    """Optimizer tag."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam beta coefficients."""
    eps: float = Field(1e-8, gt=0)
    """Adam epsilon."""


class AdamOptimizerConfig(_ScheduleFields):
    """Adam with L2 weight decay."""

    name: Literal["adam"] = "adam"
    """Optimizer tag."""
    weight_decay: float = Field(0.0, ge=0)
    """L2 weight decay; not applied to biases and normalisation weights."""
    betas: tuple[float, float] = (0.9, 0.999)
    """Adam beta coefficients."""
    eps: float = Field(1e-8, gt=0)
    """Adam epsilon."""


class SgdOptimizerConfig(_ScheduleFields):
    """SGD with momentum."""

    name: Literal["sgd"] = "sgd"
    """Optimizer tag."""
    lr: float = Field(0.1, gt=0)
    """Peak learning rate."""
    weight_decay: float = Field(1e-4, ge=0)
    """L2 weight decay; not applied to biases and normalisation weights."""
    momentum: float = Field(0.9, ge=0, lt=1)
    """Momentum factor."""
    nesterov: bool = False
    """Use Nesterov momentum."""


if TYPE_CHECKING:  # the type checker sees the plain union; at run time it is the CLI-named one
    OptimizerConfig = AdamwOptimizerConfig | AdamOptimizerConfig | SgdOptimizerConfig
else:
    OptimizerConfig = choice(
        AdamwOptimizerConfig,
        AdamOptimizerConfig,
        SgdOptimizerConfig,
        discriminator="name",
    )
