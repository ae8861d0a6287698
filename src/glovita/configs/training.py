"""Trainer-loop behaviour: epochs, precision, checkpointing, best-metric selection, resume."""

import re
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, field_validator

from glovita.configs.base import GlovitaConfig, choice

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds of a duration: 90m, 4h, 45s, 1.5h, 02:30:00 / 30:00 (HH:MM:SS / MM:SS) or D-HH:MM:SS (SLURM's)."""
    value = text.strip().lower()
    suffixed = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd])", value)
    if suffixed:
        return float(suffixed.group(1)) * _UNITS[suffixed.group(2)]
    clock = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", value)
    if clock and (clock.group(3) is not None or clock.group(1) is not None):
        days, first, second, third = (int(g) if g is not None else None for g in clock.groups())
        if third is not None:  # [D-]HH:MM:SS
            seconds = (first or 0) * 3600 + (second or 0) * 60 + third
        elif days is not None:  # D-HH[:MM]
            seconds = (first or 0) * 3600 + (second or 0) * 60
        else:  # MM:SS
            seconds = (first or 0) * 60 + (second or 0)
        return float((days or 0) * 86400 + seconds)
    raise ValueError(
        f"training.time_limit={text!r} is not a duration. Write e.g. 90m, 4h, 02:30:00 or 1-12:00:00 (days-hh:mm:ss)."
    )


class SupervisedStepConfig(GlovitaConfig):
    """Supervised learning: the head's loss on each batch (mixed first when task.mixup_alpha/cutmix_alpha are set)."""

    eval_log_keys: ClassVar[tuple[str, ...]] = ()
    """What the step logs in evaluation (val_<key>, test_<key>), selectable as training.best_checkpoint_metric."""
    step_type: Literal["supervised"] = "supervised"
    """Training step: what one batch does (training.step)."""


class SaliencyGuidedStepConfig(GlovitaConfig):
    """Classification whose saliency maps are pulled onto annotated segments (data.masks_dir): loss = cross-entropy
    + saliency_weight x a saliency-vs-mask term, differentiable (double backward through the saliency map)."""

    eval_log_keys: ClassVar[tuple[str, ...]] = ("saliency_iou", "pointing_game", "saliency_loss")
    """What the step logs in evaluation (val_<key>, test_<key>), selectable as training.best_checkpoint_metric."""
    step_type: Literal["saliency_guided"] = "saliency_guided"
    """Training step: what one batch does (training.step)."""
    method: Literal["hirescam", "gradcam", "gradcam++", "input_gradient"] = "hirescam"
    """Saliency of the true class: HiResCAM, Grad-CAM or Grad-CAM++ at target_layer, or input gradients of the
    summed log-probabilities (Ross et al. 2017, "right for the right reasons")."""
    term: Literal["overlap", "soft_iou"] = "overlap"
    """CAM methods: overlap = 1 - sum(S*M)/sum(S) (the share of saliency outside the mask); soft_iou = 1 - soft IoU
    of the max-normalised map S and the mask M. input_gradient always penalises squared gradients outside M."""
    saliency_weight: float = Field(1.0, ge=0)
    """lambda: the weight of the saliency term beside the cross-entropy."""
    mask_dilation: int = Field(0, ge=0)
    """Grow each annotated segment by this many pixels before comparing (a thin stroke is not where a coarse CAM,
    or the edges a classifier reads, can fall; the masks in the metrics stay as annotated)."""
    target_layer: str | None = None
    """Module of the encoder's model whose output the CAM weighs (e.g. layer3 of a ResNet, blocks.11 of a ViT);
    unset takes its last feature stage."""


StepConfigMembers = SupervisedStepConfig | SaliencyGuidedStepConfig
"""The members of StepConfig, written once: the type checker sees this union, the CLI the named choice."""
if TYPE_CHECKING:
    StepConfig = StepConfigMembers
else:
    StepConfig = choice(StepConfigMembers, discriminator="step_type")


class TrainingConfig(GlovitaConfig):
    """How the loop runs."""

    @property
    def effective_resume_mode(self) -> str | None:
        """--training.resume is resume_mode strict."""
        return "strict" if self.resume else self.resume_mode

    @field_validator("time_limit")
    @classmethod
    def _time_limit_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    epochs: int = Field(10, gt=0)
    """Number of training epochs."""
    precision: Literal["32", "bf16-mixed", "16-mixed"] = "32"
    """Numeric precision: 32, bf16-mixed (CPU or CUDA) or 16-mixed (CUDA, with gradient scaling)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train: auto picks CUDA when available."""
    gradient_clip_norm: float | None = Field(None, gt=0)
    """Clip the global gradient norm to this value; unset disables clipping."""
    seed: int = 42
    """Seed for weights, shuffling, augmentation and mixing."""
    deterministic: bool = False
    """Use deterministic algorithms only (slower; fails on ops that have none)."""
    channels_last: bool = True
    """Keep image tensors and the model in channels-last memory format (faster convolutions)."""
    best_checkpoint_metric: str | None = None
    """Validation metric that selects best.pt (e.g. val_accuracy, F1, val_loss); unset picks one for the task."""
    checkpoint_every_n_epochs: int = Field(1, ge=0)
    """Also keep checkpoints/epoch_NNNN.pt every N epochs; 0 keeps only last.pt and best.pt."""
    max_epoch_checkpoints: int | None = Field(3, gt=0)
    """Keep only the newest N epoch_NNNN.pt files (each holds the full training state); unset keeps all."""
    resume: bool = False
    """Continue the run in --group from its checkpoints/last.pt (the same as --training.resume_mode strict)."""
    resume_mode: Literal["strict", "auto", "best", "restart"] | None = None
    """What to do with the run already in the run folder. strict: continue it from last.pt (it must exist). auto:
    continue it when it has an intact checkpoint, start it when it has none, exit at once when it completed (a
    requeued cluster job runs the same command; the group comes from --group or SLURM's job id). best: continue from
    best.pt, after copying the run aside to <fold>.after-best-<time>. restart: move the run aside to
    <fold>.restarted-<time> and start again. Unset: a new run (refused when the folder holds one)."""
    checkpoint_every_n_steps: int | None = Field(None, gt=0)
    """Also write last.pt every N optimizer steps inside an epoch; a resume continues from that step, with the
    weights an uninterrupted run reaches. Unset: checkpoints at epoch ends only."""
    checkpoint_every_n_minutes: float | None = Field(None, gt=0)
    """Also write last.pt inside an epoch once this many minutes have passed since the last checkpoint."""
    time_limit: str | None = None
    """Wall-clock budget of this attempt (e.g. 90m, 4h, 02:30:00, 1-12:00:00 as SLURM writes it): after the first
    epoch the run says whether its expected end fits. Under SLURM the job's end time is used when unset."""
    accumulate_grad_batches: int = Field(1, ge=1)
    """Sum gradients over N batches before each optimizer step (effective batch = N x batch_size x processes)."""
    ema_decay: float | None = Field(None, gt=0, lt=1)
    """Keep an exponential moving average of the weights with this decay (e.g. 0.999); it is validated, tested
    and checkpointed beside the raw weights (metrics val_ema_*, test_ema_*). Unset disables EMA."""
    early_stopping_patience: int | None = Field(None, gt=0)
    """Stop when the best-checkpoint metric has not improved for this many epochs; unset trains every epoch."""
    compile: bool = False
    """Compile the model with torch.compile (first steps are slow while it compiles; needs a C++ compiler on CPU)."""
    step: StepConfig = SupervisedStepConfig()
    """What one training and evaluation batch does; the loop around it stays the same."""
    sync_batchnorm: bool = False
    """Multi-process (torchrun) runs: convert BatchNorm layers to SyncBatchNorm (statistics over all processes)."""
