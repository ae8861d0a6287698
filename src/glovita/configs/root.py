"""RootConfig: the whole run, and where its directory goes."""

import re
from pathlib import Path
from typing import Annotated, Any

import tyro
from pydantic import Field, field_validator, model_validator

from glovita.configs.augmentation import POLICIES_3D
from glovita.configs.base import GlovitaConfig
from glovita.configs.data import DataConfig, DigitsConfig
from glovita.configs.dataloading import DataloadingConfig
from glovita.configs.logging import LoggerConfig, NoneLoggerConfig
from glovita.configs.model import ModelConfig
from glovita.configs.optimizer import AdamwOptimizerConfig, OptimizerConfig
from glovita.configs.peft import FullFinetuningConfig, PeftConfig
from glovita.configs.task import TaskConfig
from glovita.configs.training import TrainingConfig

_GROUP_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RootConfig(GlovitaConfig):
    """A whole training run. The run directory is <experiments_dir>/<dataset>/<group>/<fold>/."""

    data: DataConfig = DigitsConfig()
    """What samples exist and how dataset defaults behave."""
    model: ModelConfig = ModelConfig()
    """Encoder, head and feature aggregation."""
    peft: PeftConfig = FullFinetuningConfig()
    """Which parameters are trainable."""
    task: TaskConfig = TaskConfig()
    """Metrics and task-specific training behaviour."""
    training: TrainingConfig = TrainingConfig()
    """Trainer-loop behaviour."""
    dataloading: DataloadingConfig = DataloadingConfig()
    """DataLoader settings."""
    optimizer: OptimizerConfig = AdamwOptimizerConfig()
    """Optimizer and learning-rate schedule."""
    logger: LoggerConfig = NoneLoggerConfig()
    """Experiment-tracking backend."""
    experiments_dir: Path = Path("experiments")
    """Root folder of run directories."""
    group: str | None = None
    """Run group, shared by the folds of one CV run; unset derives <encoder>_<head>_<timestamp>."""
    folds: tuple[int, ...] = ()
    """Cross-validation: train these folds one after another in one group (--folds 0 1 2 sets data.fold for each),
    then write <dataset>/<group>/cv_summary.json. Empty trains data.fold only."""
    add_log: Annotated[dict[str, Any], tyro.conf.Suppress] = Field(default_factory=dict)
    """Logging-only metadata (--add_log.KEY VALUE, nested with dots); saved, never changes the run."""

    @field_validator("group")
    @classmethod
    def _check_group(cls, group: str | None) -> str | None:
        if group is not None and not _GROUP_PATTERN.match(group):
            raise ValueError(
                f"group={group!r} must be a single folder name of letters, digits, '.', '_' or '-'. "
                "Choose another --group."
            )
        return group

    def _check_dimensions(self) -> None:
        """Samples, encoder and policies agree on their spatial dims (each declares its own: `spatial_dims`)."""
        encoder = self.model.encoder
        data_dims, encoder_dims = self.data.spatial_dims, encoder.spatial_dims
        if (data_dims is None) != (encoder_dims is None):
            raise ValueError(
                f"data.dataset={self.data.dataset!r} with model.encoder.encoder_type="
                f"{encoder.encoder_type!r}: precomputed_features and the precomputed encoder go together. "
                "Use --data.dataset precomputed_features --model.encoder.encoder_type precomputed, or neither."
            )
        data_temporal, encoder_temporal = self.data.temporal, getattr(encoder, "temporal", False)
        if data_temporal != encoder_temporal:
            if data_temporal:
                raise ValueError(
                    f"data.dataset={self.data.dataset!r} yields video clips (B, C, T, H, W) but model.encoder."
                    f"encoder_type={encoder.encoder_type!r} takes single images. Use --model.encoder.encoder_type "
                    "torchvision_video (r3d_18, ...), framewise_image (any timm model per frame) or pytorchvideo."
                )
            raise ValueError(
                f"model.encoder.encoder_type={encoder.encoder_type!r} takes video clips, and data.dataset="
                f"{self.data.dataset!r} does not yield videos. Use --data.dataset generic_video_dataset."
            )
        if data_dims != encoder_dims:
            kind, fix = {
                1: ("time series (B, C, T)", "--model.encoder.encoder_type series_cnn"),
                3: (
                    "3D volumes (B, C, D, H, W)",
                    "--model.encoder.encoder_type residual_encoder --model.encoder.spatial_dims 3 (or primus)",
                ),
            }.get(
                data_dims or 2, ("2D images", "a 2D encoder (or --model.encoder.spatial_dims 2 with residual_encoder)")
            )
            raise ValueError(
                f"data.dataset={self.data.dataset!r} yields {kind} but model.encoder.encoder_type="
                f"{encoder.encoder_type!r} is {encoder_dims}D. Use {fix}."
            )
        augmentation = getattr(self.data, "augmentation", None)
        if augmentation is not None and not data_temporal:  # video policies are their own type
            for field in ("train_policy", "test_policy"):
                policy = getattr(augmentation, field)
                policy_dims = 3 if policy in POLICIES_3D else 2
                if policy_dims != data_dims:
                    valid = (
                        ", ".join(POLICIES_3D) if data_dims == 3 else "default, shared_default_2d, default_2d_1..5, ..."
                    )
                    raise ValueError(
                        f"data.augmentation.{field}={policy!r} is a {policy_dims}D policy "
                        f"and data.dataset={self.data.dataset!r} yields {'volumes' if data_dims == 3 else 'images'}. "
                        f"Choose one of: {valid}."
                    )
        input_shape = getattr(encoder, "input_shape", None)  # encoders built for one input size (Primus)
        volume_size = getattr(self.data, "volume_size", None)
        strides = getattr(encoder, "strides", None)  # nnU-Net encoders: their decoder undoes each stage's stride
        if self.model.head.consumes == "pyramid" and strides is not None and volume_size is not None:
            import math

            total = math.prod(strides)
            bad = [n for n in volume_size if n % total]
            if bad:
                sizes = sorted({max(total, n // total * total) for n in bad} | {(n // total + 1) * total for n in bad})
                raise ValueError(
                    f"data.volume_size={tuple(volume_size)}: the U-Net decoder of model.encoder.strides="
                    f"{tuple(strides)} takes sizes divisible by {total}. Use e.g. "
                    f"{' or '.join(map(str, sizes))} for {', '.join(map(str, bad))}."
                )
        if input_shape is not None and volume_size is not None and tuple(input_shape) != tuple(volume_size):
            raise ValueError(
                f"model.encoder.input_shape={tuple(input_shape)} must equal data.volume_size="
                f"{tuple(volume_size)} (Primus' position embeddings are built for one size)."
            )

    def full_batch_obstacles(self) -> list[str]:
        """Why this run cannot train with full-batch L-BFGS (optimizer.name='lbfgs'); empty when it can. The
        solver needs a loss that is the same function at every evaluation, over data held in memory."""
        head = self.model.head
        obstacles = []
        if self.model.encoder.spatial_dims is not None or head.consumes != "vector":
            obstacles.append(
                "it trains a classification/regression head on precomputed instance features (--data.dataset "
                "precomputed_features); for images, extract features first with glovita_extract_features"
            )
        if getattr(head, "dropout", 0.0) > 0:
            obstacles.append("model.head.dropout makes the loss random between evaluations: set it to 0")
        if self.training.precision != "32":
            obstacles.append("it needs --training.precision 32")
        if self.training.accumulate_grad_batches != 1:
            obstacles.append("it sums the whole split itself: leave training.accumulate_grad_batches at 1")
        if self.training.ema_decay is not None or self.training.gradient_clip_norm is not None:
            obstacles.append("training.ema_decay and training.gradient_clip_norm do not apply: unset them")
        if self.task.mixup_alpha > 0 or self.task.cutmix_alpha > 0:
            obstacles.append("task.mixup_alpha / cutmix_alpha make the loss random: set them to 0")
        if self.model.heads:
            obstacles.append("it solves for one head: leave model.heads empty")
        return obstacles

    def _check_resume_mode(self) -> None:
        """--training.resume is resume_mode strict; modes that continue or move a run need its group (auto may
        take it from SLURM's job id, checked when the run is resolved)."""
        training = self.training
        if training.resume and training.resume_mode not in (None, "strict"):
            raise ValueError(
                f"training.resume and training.resume_mode={training.resume_mode!r} disagree: --training.resume is "
                "resume_mode strict. Give one of them."
            )
        mode = training.effective_resume_mode
        if mode in ("strict", "best", "restart") and self.group is None:
            flag = "training.resume" if training.resume else f"training.resume_mode {mode}"
            raise ValueError(f"{flag} needs the run to act on: pass --group NAME (the <group> folder of the run).")
        if (
            training.checkpoint_every_n_steps or training.checkpoint_every_n_minutes
        ) and self.optimizer.name == "lbfgs":
            raise ValueError(
                "optimizer.name='lbfgs' solves each epoch at once: there is no step inside it to checkpoint. Unset "
                "--training.checkpoint_every_n_steps / --training.checkpoint_every_n_minutes."
            )

    def _require_one_class_per_image(self, does: str, no_heads: bool = False) -> None:
        """Steps that act on the true class of each image: single-label classification with a classification head
        (and, with `no_heads`, no named heads)."""
        single_label = self.data.task == "Classification" and self.data.subtask != "multilabel"
        if not single_label or self.model.head.head_type != "classification" or (no_heads and self.model.heads):
            raise ValueError(
                f"training.step.step_type={self.training.step.step_type!r} {does}: it needs --data.task "
                "Classification (single-label) and --model.head.head_type classification"
                f"{' and no model.heads' if no_heads else ''} (got {self.data.task}/{self.data.subtask}, head "
                f"{self.model.head.head_type!r}{', named heads' if self.model.heads else ''})."
            )

    def _check_semi_supervised_step(self) -> None:
        """FixMatch and mean teacher pseudo-label one class per image; mean teacher's teacher is the EMA model."""
        step = self.training.step
        if step.step_type != "semi_supervised":
            return
        self._require_one_class_per_image("pseudo-labels one class per image", no_heads=True)
        if getattr(step, "method", None) == "mean_teacher" and self.training.ema_decay is None:
            raise ValueError(
                "training.step.method='mean_teacher' uses the EMA weights as its teacher: pass --training.ema_decay "
                "(e.g. 0.99)."
            )
        if self.task.mixup_alpha > 0 or self.task.cutmix_alpha > 0:
            raise ValueError("training.step.step_type='semi_supervised' does not mix batches: set task.mixup_alpha and "
                             "task.cutmix_alpha to 0.")  # fmt: skip

    def _check_adversarial_step(self) -> None:
        """Adversarial training measures robust accuracy of one class per image."""
        if self.training.step.step_type != "adversarial":
            return
        self._require_one_class_per_image("attacks the true class of each image")
        if self.data.spatial_dims != 2:
            held = "feature vectors" if self.data.spatial_dims is None else "volumes or series"
            raise ValueError(
                f"training.step.step_type='adversarial' perturbs 2D images in pixel units; data.dataset="
                f"{self.data.dataset!r} holds {held}. Train it on an image dataset."
            )

    def _check_saliency_step(self) -> None:
        """The saliency-guided step needs annotated segments beside single labels, and a double backward."""
        if self.training.step.step_type != "saliency_guided":
            return
        self._require_one_class_per_image("explains one class per image", no_heads=True)
        if getattr(self.data, "masks_dir", None) is None:
            raise ValueError(
                "training.step.step_type='saliency_guided' compares saliency maps with annotated segments: pass "
                "--data.masks_dir masks (binary masks mirroring the images) with --data.dataset generic_image_dataset."
            )
        if self.training.precision == "16-mixed" or self.training.compile:
            raise ValueError(
                "training.step.step_type='saliency_guided' backpropagates through a gradient (double backward), which "
                "16-mixed gradient scaling and torch.compile do not support. Use --training.precision 32 or "
                "bf16-mixed, without --training.compile."
            )
        if self.task.mixup_alpha > 0 or self.task.cutmix_alpha > 0:
            raise ValueError("task.mixup_alpha / cutmix_alpha mix images but not their segments, which "
                             "training.step.step_type='saliency_guided' compares with. Set them to 0.")  # fmt: skip

    @field_validator("folds")
    @classmethod
    def _check_folds(cls, folds: tuple[int, ...]) -> tuple[int, ...]:
        if any(f < 0 for f in folds) or len(set(folds)) != len(folds):
            raise ValueError(f"folds={list(folds)} must be distinct fold numbers >= 0, e.g. --folds 0 1 2.")
        return folds

    @model_validator(mode="after")
    def _check_task_and_head(self) -> "RootConfig":
        head = self.model.head.head_type
        if self.data.task == "Regression" and head != "regression":
            raise ValueError(
                f"data.task='Regression' but model.head.head_type={head!r}. Pass --model.head.head_type regression."
            )
        if self.data.task == "Classification" and head == "regression":
            raise ValueError(
                "model.head.head_type='regression' but data.task='Classification'. "
                "Pass --data.task Regression --data.subtask regression --data.num_classes 1, "
                "or --model.head.head_type classification."
            )
        multilabel = self.data.subtask == "multilabel"
        if multilabel and (self.task.mixup_alpha > 0 or self.task.cutmix_alpha > 0 or self.task.label_smoothing > 0):
            raise ValueError(
                "task.mixup_alpha / cutmix_alpha / label_smoothing are for single-label classification; "
                "data.subtask='multilabel'. Set them to 0."
            )
        if self.task.multilabel_pos_weight and not multilabel:
            raise ValueError("task.multilabel_pos_weight needs data.subtask='multilabel'.")
        if self.data.task != "Classification" and (self.task.mixup_alpha > 0 or self.task.cutmix_alpha > 0):
            raise ValueError("task.mixup_alpha / task.cutmix_alpha apply to classification only. Set them to 0.")
        if self.data.task != "Classification" and self.task.label_smoothing > 0:
            raise ValueError("task.label_smoothing applies to classification only. Set it to 0.")
        if self.model.heads and (self.task.mixup_alpha > 0 or self.task.cutmix_alpha > 0):
            raise ValueError("task.mixup_alpha / cutmix_alpha mix the main head's targets only, and model.heads has "
                             f"{', '.join(self.model.heads)}. Set them to 0.")  # fmt: skip
        self._check_dimensions()
        precomputed = self.model.encoder.spatial_dims is None
        if precomputed and self.peft.method not in ("full_finetuning", "linear_probing"):
            raise ValueError(
                f"peft.method={self.peft.method!r} adapts an encoder, and the precomputed encoder has no weights. "
                "Use --peft.method full_finetuning (the head trains)."
            )
        bag_head = self.model.head.consumes == "bag"
        if bag_head and not precomputed:
            raise ValueError(
                f"model.head.head_type={head!r} takes bags of precomputed features. "
                "Use --data.dataset precomputed_features with a bag file, or a classification/regression head."
            )
        if bag_head and (self.task.mixup_alpha > 0 or self.task.cutmix_alpha > 0):
            raise ValueError(
                f"task.mixup_alpha / task.cutmix_alpha mix images, and model.head.head_type={head!r} trains on bags "
                "of features. Set them to 0."
            )
        dense_head = self.model.head.consumes == "pyramid"
        if dense_head != (self.data.task in ("Segmentation", "LabelFree")):
            raise ValueError(
                f"model.head.head_type={head!r} with data.task={self.data.task!r}: label maps (--data.task "
                "Segmentation) and target images (--data.task LabelFree) go with a dense head (--model.head.head_type "
                "unet, or torchvision_segmentation with --model.encoder.encoder_type torchvision_segmentation), and "
                "only with one."
            )
        if self.data.task == "LabelFree" and (self.task.mixup_alpha > 0 or self.task.cutmix_alpha > 0):
            raise ValueError("task.mixup_alpha / task.cutmix_alpha mix images with soft labels; a label-free target "
                             "image has no label to mix. Set them to 0.")  # fmt: skip
        if dense_head and self.task.class_balanced_sampling:
            raise ValueError("task.class_balanced_sampling needs one label per image; segmentation labels pixels. "
                             "Turn it off.")  # fmt: skip
        framewise_head = self.model.head.consumes == "frames"
        if framewise_head != (self.data.subtask == "framewise"):
            raise ValueError(
                f"model.head.head_type={head!r} with data.subtask={self.data.subtask!r}: per-frame labels "
                "(--data.subtask framewise --data.frame_labels_file FILE) go with --model.head.head_type "
                "framewise_decoder_1d, and only with it."
            )
        if self.data.subtask == "framewise" and (
            self.task.mixup_alpha > 0 or self.task.cutmix_alpha > 0 or self.task.class_balanced_sampling
        ):
            raise ValueError(
                "task.mixup_alpha / cutmix_alpha / class_balanced_sampling need one label per sample; "
                "data.subtask='framewise' labels every frame. Turn them off."
            )
        if self.task.cutmix_alpha > 0 and (self.data.spatial_dims != 2 or self.data.temporal):
            raise ValueError(
                f"task.cutmix_alpha cuts patches out of 2D images; data.dataset={self.data.dataset!r} does not yield "
                "2D images. Set --task.cutmix_alpha 0."
            )
        if bag_head and self.data.task != "Classification":
            raise ValueError(f"model.head.head_type={head!r} is a classifier; data.task must be Classification.")
        self._check_run_options()
        return self

    def _check_run_options(self) -> None:
        """Options that need a kind of labels, encoder or optimizer: class weights and sampling, folds, pad_mask,
        L-BFGS, resume."""
        head = self.model.head.head_type
        multilabel = self.data.subtask == "multilabel"
        single_label = self.data.task == "Classification" and not multilabel
        if self.task.class_weighted_loss and not (single_label and head == "classification"):
            raise ValueError(
                "task.class_weighted_loss needs single-label classification with model.head.head_type="
                f"'classification' (got {self.data.task}/{self.data.subtask}, head {head!r}). "
                "Multilabel runs use --task.multilabel_pos_weight."
            )
        if self.task.class_balanced_sampling and not single_label:
            raise ValueError(
                "task.class_balanced_sampling needs single-label classification "
                f"(got {self.data.task}/{self.data.subtask})."
            )
        if self.folds and self.data.fold != 0:
            raise ValueError(
                f"data.fold={self.data.fold} and folds={list(self.folds)}: give one. --folds runs every listed fold."
            )
        if getattr(self.data, "length_policy", None) == "pad_mask" and self.model.encoder.encoder_type != "series_cnn":
            raise ValueError(
                f"data.length_policy='pad_mask' masks padded time steps, which model.encoder.encoder_type="
                f"{self.model.encoder.encoder_type!r} does not take. Use series_cnn, or --data.length_policy pad."
            )
        obstacles = self.full_batch_obstacles() if self.optimizer.name == "lbfgs" else []
        if obstacles:
            reasons = "; ".join(obstacles)
            raise ValueError(f"optimizer.name='lbfgs' solves on the whole training split at once: {reasons}.")
        self._check_saliency_step()
        self._check_adversarial_step()
        self._check_semi_supervised_step()
        self._check_resume_mode()
