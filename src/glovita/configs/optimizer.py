"""Optimizer (discriminated by `name`) and learning-rate schedule."""

from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, model_validator

from glovita.configs.base import GlovitaConfig, choice


class _ScheduleFields(GlovitaConfig):
    """Learning rate, weight decay and schedule, shared by every optimizer."""

    full_batch: ClassVar[bool] = False
    """Each epoch is one solve on the whole training split (L-BFGS) instead of steps on batches."""

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


class LbfgsOptimizerConfig(_ScheduleFields):
    """Full-batch L-BFGS (strong-Wolfe line search) for heads on precomputed instance features: each epoch runs up
    to max_iter iterations on the loss of the whole training split plus weight_decay / 2 x ||W||^2, and training
    stops once an epoch converges (tolerances). Converges like logistic regression without tuning."""

    full_batch: ClassVar[bool] = True
    name: Literal["lbfgs"] = "lbfgs"
    """Optimizer tag."""
    lr: float = Field(1.0, gt=0)
    """Step length the line search starts from (1 is the usual choice for L-BFGS)."""
    weight_decay: float | None = Field(None, ge=0)  # type: ignore[assignment]
    """L2 strength: weight_decay / 2 x the squared norm of the weights (not biases) is added to the mean loss;
    unset = 1 / training samples, the penalty of scikit-learn's LogisticRegression with its default C=1."""
    scheduler: Literal["cosine", "step", "none"] = "none"
    """Learning-rate schedule; L-BFGS's line search sets the step length, so only none applies."""
    max_iter: int = Field(100, gt=0)
    """L-BFGS iterations per epoch (each one or more passes over the training split)."""
    history_size: int = Field(20, gt=0)
    """Past updates kept to approximate the curvature."""
    tolerance_grad: float = Field(1e-5, ge=0)
    """Converged when the largest gradient entry falls below this (scikit-learn's LogisticRegression stops at 1e-4)."""
    tolerance_change: float = Field(1e-9, ge=0)
    """Converged when the loss or the step changes by less than this."""
    l2_grid: tuple[float, ...] = ()
    """Choose weight_decay among these values by the validation split's best-checkpoint metric before training
    (the linear-probe protocol of CLIP-style evaluations), e.g. --optimizer.l2_grid 1e-5 1e-4 1e-3 1e-2 1e-1;
    empty keeps weight_decay."""

    @model_validator(mode="after")
    def _check_full_batch(self) -> "LbfgsOptimizerConfig":
        if self.scheduler != "none" or self.warmup_epochs > 0:
            raise ValueError(
                f"optimizer.name='lbfgs' sets its step length by line search; optimizer.scheduler={self.scheduler!r}"
                f" / warmup_epochs={self.warmup_epochs} do not apply. Use --optimizer.scheduler none."
            )
        if self.encoder_lr is not None or self.layer_decay is not None:
            raise ValueError(
                "optimizer.name='lbfgs' has one step length for all parameters; unset optimizer.encoder_lr and "
                "optimizer.layer_decay."
            )
        if any(value < 0 for value in self.l2_grid):
            raise ValueError(f"optimizer.l2_grid={list(self.l2_grid)} must hold values >= 0.")
        return self


OptimizerConfigMembers = AdamwOptimizerConfig | AdamOptimizerConfig | SgdOptimizerConfig | LbfgsOptimizerConfig
"""The members of OptimizerConfig, written once: the type checker sees this union, the CLI the named choice."""
if TYPE_CHECKING:
    OptimizerConfig = OptimizerConfigMembers
else:
    OptimizerConfig = choice(OptimizerConfigMembers, discriminator="name")
