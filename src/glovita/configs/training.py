"""Trainer-loop behaviour: epochs, precision, checkpointing, best-metric selection, resume."""

import re
from pathlib import Path
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


class AdversarialStepConfig(GlovitaConfig):
    """Adversarial training (PGD / FGSM, Madry et al. 2018; TRADES, Zhang et al. 2019) with robust accuracy under
    PGD as an evaluation metric. Epsilon and step sizes are in pixel units of [0, 1] (8/255 = 0.0314): the step
    undoes the run's normalisation, attacks, clamps to [0, 1] and normalises again. The attack runs on the model in
    eval mode (BatchNorm statistics untouched), the update in train mode."""

    eval_log_keys: ClassVar[tuple[str, ...]] = ("robust_accuracy",)
    """What the step logs in evaluation (val_<key>, test_<key>), selectable as training.best_checkpoint_metric."""
    step_type: Literal["adversarial"] = "adversarial"
    """Training step: what one batch does (training.step)."""
    method: Literal["pgd", "fgsm", "trades"] = "pgd"
    """pgd: train on PGD examples; fgsm: on one-step examples of size epsilon; trades: cross-entropy on clean images
    plus trades_beta x KL(clean || adversarial)."""
    norm: Literal["linf", "l2"] = "linf"
    """The ball the perturbation stays in (training and robust evaluation)."""
    epsilon: float = Field(8 / 255, ge=0)
    """Radius of the ball in pixel units of [0, 1]."""
    step_size: float | None = Field(None, gt=0)
    """Ascent step of the training attack; unset: 2.5 x epsilon / steps (Madry et al.)."""
    steps: int = Field(7, ge=1)
    """Ascent steps of the training attack (pgd, trades)."""
    trades_beta: float = Field(6.0, ge=0)
    """TRADES: weight of the KL term."""
    eval_epsilon: float | None = Field(None, ge=0)
    """Radius of the robust evaluation; unset: epsilon. epsilon 0 with eval_epsilon set trains plainly and reports
    robustness (a baseline beside adversarial runs)."""
    eval_steps: int = Field(10, ge=1)
    """PGD steps of the robust evaluation (step 2.5 x the radius / eval_steps, a random start)."""
    robust_eval_every_n_epochs: int = Field(1, ge=1)
    """Validate robust accuracy every N epochs (and at the last); the test pass always does. Each robust
    evaluation costs eval_steps + 1 passes over its samples."""
    robust_eval_max_samples: int | None = Field(1000, gt=0)
    """Robust accuracy over at most this many samples per evaluation pass and process; unset: all."""


class SemiSupervisedStepConfig(GlovitaConfig):
    """Semi-supervised classification of images: FixMatch (Sohn et al. 2020) or mean teacher (Tarvainen and Valpola
    2017) on the labeled samples data.data_fraction keeps plus the training samples it leaves out, used without
    their labels. An epoch is one pass over the unlabeled pool (the labeled loader starts new passes as needed)."""

    eval_log_keys: ClassVar[tuple[str, ...]] = ()
    """What the step logs in evaluation (val_<key>, test_<key>), selectable as training.best_checkpoint_metric."""
    step_type: Literal["semi_supervised"] = "semi_supervised"
    """Training step: what one batch does (training.step)."""
    method: Literal["fixmatch", "mean_teacher"] = "fixmatch"
    """fixmatch: cross-entropy of the strong view against the weak view's confident predictions; mean_teacher:
    squared difference of the student's (strong view) and the EMA teacher's (weak view) probabilities."""
    unlabeled_ratio: int = Field(7, ge=1)
    """mu: unlabeled images per labeled image in a step (the unlabeled batch is mu x dataloading.batch_size)."""
    unlabeled_weight: float = Field(1.0, ge=0)
    """lambda_u (FixMatch) or the consistency weight after ramp-up (mean teacher)."""
    threshold: float = Field(0.95, gt=0, le=1)
    """FixMatch: the weak view's top probability a pseudo-label needs."""
    rampup_epochs: float = Field(5.0, ge=0)
    """Mean teacher: epochs of the sigmoid ramp-up exp(-5 (1 - t)^2) of the consistency weight."""
    strong_policy: Literal["randaugment", "default_2d_randaugment"] = "randaugment"
    """Training policy of the strong view (the weak view is data.augmentation.train_policy)."""
    unlabeled_dir: Path | None = None
    """A folder of unlabeled images (read recursively) instead of the training images data.data_fraction leaves
    out; it must not hold validation or test images (not checked)."""


StepConfigMembers = SupervisedStepConfig | SaliencyGuidedStepConfig | AdversarialStepConfig | SemiSupervisedStepConfig
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
