"""Every value derived at run time, computed here and written to resolved_config.json."""

import os
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from glovita.configs.data import PrecomputedFeaturesConfig
from glovita.configs.dataloading import DataloadingConfig
from glovita.configs.model import PrecomputedEncoderConfig
from glovita.configs.optimizer import AdamwOptimizerConfig, LbfgsOptimizerConfig, OptimizerConfig
from glovita.configs.root import RootConfig
from glovita.modalities.images import ResolvedAugmentation
from glovita.modalities.series import ResolvedSeriesAugmentation
from glovita.modalities.volumes import ResolvedVolumeAugmentation
from glovita.runtime.loaders import ResolvedDataloading
from glovita.tasks.factory import build_named_tasks, build_task
from glovita.tasks.keys import resolve_best_metric
from glovita.training.distributed import DistContext, broadcast


@dataclass(frozen=True)
class ResolvedRun:
    """The derived state of a run; `to_json()` is resolved_config.json. `resolve_run` fixes what is known before
    data and model exist; run.py completes it once, with `dataclasses.replace`, from what it built."""

    run_dir: Path
    group: str
    fold: int
    seed: int
    device: str
    precision: str
    task: str
    num_outputs: int
    best_metric: str
    best_metric_mode: str
    class_names: list[str] = field(default_factory=list)
    head_class_names: dict[str, list[str]] = field(default_factory=dict)
    """Named heads' class names in index order, where a manifest column named them."""
    pos_weight: list[float] | None = None
    class_weight: list[float] | None = None
    target_statistics: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    """Regression heads with standardize_targets: the training targets' mean and std per output, by head ('' is the
    main head)."""
    world_size: int = 1
    global_batch_size: int = 0
    optimizer_steps_per_epoch: int = 0
    encoder_out_dim: int = 0
    encoder_preprocessing: dict[str, Any] = field(default_factory=dict)
    input_mask: dict[str, Any] | None = None
    """model.input_mask's segmenter: its model config, classes, input size and statistics (rebuilds it)."""
    augmentation: ResolvedAugmentation | ResolvedVolumeAugmentation | ResolvedSeriesAugmentation | None = None
    dataloading: ResolvedDataloading | None = None
    dataset_sizes: dict[str, int] = field(default_factory=dict)
    steps_per_epoch: int = 0
    total_steps: int = 0
    fused_optimizer: bool = False
    parameters: dict[str, int] = field(default_factory=dict)
    logger: dict[str, str] = field(default_factory=dict)
    ema_decay: float | None = None
    optimizer: dict[str, Any] = field(default_factory=dict)
    """The optimizer settings the run uses (L-BFGS where data.probe_optimizer chose it, weight decay resolved)."""
    warnings: list[str] = field(default_factory=list)
    """What the start of the run warned about (also printed once)."""

    def to_json(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def with_feature_dim(cfg: RootConfig, feature_dim: int | None, description: str) -> RootConfig:
    """The config with the precomputed encoder's feature_dim taken from the feature files when it is unset; a set
    value must match them. Other encoders, and data without a feature dim, pass through."""
    encoder = cfg.model.encoder
    if not isinstance(encoder, PrecomputedEncoderConfig) or feature_dim is None:
        return cfg
    if encoder.feature_dim is not None and encoder.feature_dim != feature_dim:
        raise ValueError(
            f"model.encoder.feature_dim={encoder.feature_dim} but {description} has dim {feature_dim}. "
            f"Set --model.encoder.feature_dim {feature_dim} (or leave it unset to take it from the files)."
        )
    model = cfg.model.model_copy(update={"encoder": encoder.model_copy(update={"feature_dim": feature_dim})})
    return cfg.model_copy(update={"model": model})


def resolve_device(device: str, local_rank: int | None = None, setting: str = "training.device") -> torch.device:
    """`auto`, `cpu` or `cuda` (the flag `setting`) -> the device to use; under torchrun, CUDA device `local_rank`."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{setting}='cuda' but no CUDA device is visible. Use --{setting} cpu (or auto).")
    kind = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    if kind == "cuda" and local_rank is not None:
        return torch.device("cuda", local_rank)
    return torch.device(kind)


def resolve_precision(precision: str, device: torch.device) -> str:
    if precision == "16-mixed" and device.type != "cuda":
        raise ValueError(
            "training.precision='16-mixed' needs CUDA (float16 on CPU is slow and unscaled). "
            "Use --training.precision bf16-mixed on CPU."
        )
    return precision


def encoder_name(cfg: RootConfig) -> str:
    """The model name of the encoder (timm/torchvision `type`), or its family for the precomputed encoder."""
    encoder = cfg.model.encoder
    return getattr(encoder, "type", encoder.encoder_type).replace("/", "-")


def resolve_shared_group(cfg: RootConfig, dist: DistContext, now: datetime) -> str:
    """The run group, derived by rank 0 and sent to every process (all ranks of a torchrun job, and all folds of a
    CV run, write into one group)."""
    if cfg.group is not None:
        return cfg.group
    if cfg.training.effective_resume_mode == "auto":  # every rank reads the same job id: no broadcast needed
        return auto_resume_group()
    return broadcast(dist, resolve_group(cfg, cfg.experiments_dir, now) if dist.is_main else None)


def auto_resume_group() -> str:
    """The group of a --training.resume_mode auto run without --group: slurm-<job id> (slurm-<array job>_<task> for
    an array task), the same when SLURM requeues the job."""
    import os

    array_job, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if array_job and task:
        return f"slurm-{array_job}_{task}"
    job = os.environ.get("SLURM_JOB_ID")
    if job:
        return f"slurm-{job}"
    raise ValueError(
        "training.resume_mode auto needs a fixed run folder, so that running the same command again finds it: pass "
        "--group NAME (outside SLURM; under SLURM the job id names it)."
    )


def resolve_group(cfg: RootConfig, experiments_dir: Path, now: datetime) -> str:
    """The user's group, else <encoder type>_<head>_<timestamp> (made unique when runs start the same second)."""
    if cfg.group is not None:
        return cfg.group
    if cfg.training.effective_resume_mode == "auto":
        return auto_resume_group()
    base = f"{encoder_name(cfg)}_{cfg.model.head.head_type}_{now:%Y%m%d-%H%M%S}"
    parent = experiments_dir / cfg.data.dataset
    group, n = base, 1
    while (parent / group).exists():
        n += 1
        group = f"{base}-{n}"
    return group


def run_directory(cfg: RootConfig, group: str) -> Path:
    """<experiments_dir>/<dataset>/<group>/<fold>."""
    return cfg.experiments_dir / cfg.data.dataset / group / str(cfg.data.fold)


def resolve_target_statistics(values: list) -> dict[str, list[float]]:
    """Mean and std (population; 1 where the targets do not vary) per output of regression targets (numbers, tuples
    or tensors; an unlabelled sample — None, or NaN as a manifest's empty cell reads — left out)."""
    rows = [torch.as_tensor(v, dtype=torch.float64).reshape(-1) for v in values if v is not None]
    known = [row for row in rows if not torch.isnan(row).any()]
    if not known:
        raise ValueError("No training sample has a regression target, so its scale cannot be learned. Label some "
                         "training samples, or set --model.head.no_standardize_targets.")  # fmt: skip
    table = torch.stack(known)
    std = table.std(dim=0, unbiased=False)
    return {"mean": table.mean(dim=0).tolist(), "std": torch.where(std > 1e-12, std, 1.0).tolist()}


def resolve_pos_weight(train_targets: list, num_classes: int) -> list[float]:
    """Per-label negatives / positives in the training split (1.0 for a label without positives)."""
    counts = torch.as_tensor([list(t) for t in train_targets], dtype=torch.float64).reshape(-1, num_classes)
    positives = counts.sum(0)
    negatives = counts.shape[0] - positives
    return torch.where(positives > 0, negatives / positives.clamp(min=1), torch.ones_like(positives)).tolist()


def class_counts(train_targets: list, num_classes: int) -> torch.Tensor:
    """Training samples per class (single-label targets)."""
    targets = torch.as_tensor([int(t) for t in train_targets], dtype=torch.long)
    return torch.bincount(targets, minlength=num_classes).double()


def resolve_class_weight(train_targets: list, num_classes: int) -> list[float]:
    """N / (K * count) per class ("balanced" weights; 1.0 for a class without training samples)."""
    counts = class_counts(train_targets, num_classes)
    weights = counts.sum() / (num_classes * counts.clamp(min=1))
    return torch.where(counts > 0, weights, torch.ones_like(weights)).tolist()


def balanced_sample_weights(train_targets: list, num_classes: int) -> torch.Tensor:
    """Per-sample drawing weights 1 / count(class): every class is drawn equally often in expectation."""
    counts = class_counts(train_targets, num_classes)
    targets = torch.as_tensor([int(t) for t in train_targets], dtype=torch.long)
    return 1.0 / counts[targets]


def logger_names(cfg: RootConfig, group: str) -> dict[str, str]:
    """Default tracking names: experiment/project glovita_<dataset>, group <group>, run <group>_fold<fold>."""
    names = {
        "backend": cfg.logger.backend,
        "experiment": f"glovita_{cfg.data.dataset}",
        "group": group,
        "run_name": f"{group}_fold{cfg.data.fold}",
    }
    for key, field_name in (("experiment", "experiment_name"), ("experiment", "project"), ("run_name", "run_name")):
        value = getattr(cfg.logger, field_name, None)
        if value is not None:
            names[key] = value
    return names


def resolve_optimizer(cfg: RootConfig, train_samples: int) -> tuple[OptimizerConfig, str | None]:
    """The optimizer the run uses, and a note when it is not the configured one.

    A linear head on feature files with the --optimizer block at its defaults trains with full-batch L-BFGS
    (data.probe_optimizer); L-BFGS's unset weight_decay becomes 1 / training samples (scikit-learn's C=1)."""
    optimizer, note = cfg.optimizer, None
    probe = isinstance(cfg.data, PrecomputedFeaturesConfig) and cfg.data.probe_optimizer == "lbfgs"
    linear = getattr(cfg.model.head, "hidden_dim", 0) is None
    if probe and linear and optimizer == AdamwOptimizerConfig() and not cfg.full_batch_obstacles():
        optimizer = LbfgsOptimizerConfig()
        note = (
            "a linear head on feature files trains with full-batch L-BFGS (data.probe_optimizer='lbfgs'); pass "
            "--data.probe_optimizer configured for mini-batch adamw, or set --optimizer.* to choose."
        )
    if isinstance(optimizer, LbfgsOptimizerConfig) and optimizer.weight_decay is None:
        optimizer = optimizer.model_copy(update={"weight_decay": 1.0 / max(1, train_samples)})
    return optimizer, note


FEW_OPTIMIZER_STEPS = 100
"""Below this many optimizer steps in a whole run, a model (even a linear head) rarely converges."""


def few_steps_warning(total_steps: int, epochs: int, steps_per_epoch: int) -> str | None:
    """A warning when the whole run makes fewer than FEW_OPTIMIZER_STEPS optimizer steps, else None."""
    if total_steps >= FEW_OPTIMIZER_STEPS:
        return None
    return (
        f"the run makes only {total_steps} optimizer steps ({epochs} epochs x {steps_per_epoch}); models rarely "
        f"converge in fewer than {FEW_OPTIMIZER_STEPS}. Raise --training.epochs or lower --dataloading.batch_size."
    )


_USUAL_LR_AT_256 = {"adamw": (1e-5, 1e-2), "adam": (1e-5, 1e-2), "sgd": (1e-3, 1.0)}
"""Peak learning rates runs of each optimizer family usually use at a global batch of 256 (from fine-tuning to
from-scratch training); scaled with sqrt(batch / 256) for Adam-type optimizers and linearly for SGD."""


_FAR = 10.0
"""A learning rate this many times outside the usual range is warned about."""


def lr_range_warning(optimizer: OptimizerConfig, global_batch: int) -> str | None:
    """A warning when the peak learning rate is more than 10x outside the range the optimizer family usually
    uses at this global batch size, else None. L-BFGS sets its step by line search and is not checked."""
    if optimizer.name not in _USUAL_LR_AT_256:
        return None
    low, high = _USUAL_LR_AT_256[optimizer.name]
    scale = global_batch / 256 if optimizer.name == "sgd" else (global_batch / 256) ** 0.5
    low, high = low * scale, high * scale
    if low / _FAR <= optimizer.lr <= high * _FAR:
        return None
    side = "above" if optimizer.lr > high else "below"
    return (
        f"optimizer.lr={optimizer.lr:g} with {optimizer.name} at a global batch of {global_batch} is more than "
        f"{_FAR:g}x {side} the usual range ({low:.1g} .. {high:.1g} at this batch size); such runs often "
        f"{'diverge' if side == 'above' else 'barely move'}. Check --optimizer.lr and --dataloading.batch_size."
    )


DROP_LAST_MAX_FRACTION = 0.1
"""drop_last may discard at most this share of an epoch's training samples; beyond it the last batch is kept."""


def resolve_drop_last(loading: ResolvedDataloading, samples: int) -> tuple[ResolvedDataloading, str | None]:
    """Keep the last, smaller training batch when drop_last would discard more than 10 % of this process's
    `samples`, or the split is smaller than two batches; a last batch of one sample is still dropped (BatchNorm
    cannot train on it). Returns the loader settings and the warning to give, if any."""
    rest = samples % loading.batch_size
    small = samples < 2 * loading.batch_size
    if not loading.drop_last or rest <= 1 or not (rest > DROP_LAST_MAX_FRACTION * samples or small):
        return loading, None
    warning = (
        f"dataloading.drop_last would discard {rest} of {samples} training samples every epoch "
        f"({rest / samples:.0%}); the last batch of {rest} is kept instead. Choose --dataloading.batch_size "
        "to divide the split more evenly to keep equal batches."
    )
    return replace(loading, drop_last=False), warning


def resolve_dataloading(cfg: DataloadingConfig, device: torch.device, in_memory: bool = False) -> ResolvedDataloading:
    """Loader settings with every default decided. Data held in memory (`in_memory`: feature files loaded whole)
    is read without worker processes unless dataloading.num_workers says otherwise: a batch is one gather, and
    sending it from a worker costs far more (12x slower epochs over a 1M x 768 float16 file with 2 workers)."""
    default_workers = 0 if in_memory else min(8, os.cpu_count() or 1)
    workers = cfg.num_workers if cfg.num_workers is not None else default_workers
    return ResolvedDataloading(
        batch_size=cfg.batch_size,
        eval_batch_size=cfg.eval_batch_size or cfg.batch_size,
        num_workers=workers,
        pin_memory=cfg.pin_memory if cfg.pin_memory is not None else device.type == "cuda",
        persistent_workers=cfg.persistent_workers if cfg.persistent_workers is not None else workers > 0,
        prefetch_factor=cfg.prefetch_factor or (2 if workers > 0 else None),
        drop_last=cfg.drop_last,
    )


def resolve_run(
    cfg: RootConfig, now: datetime, group: str | None = None, local_rank: int | None = None, world_size: int = 1
) -> ResolvedRun:
    """What can be derived before any data or model is touched (best metric checked here, before training).

    `group` is passed when it was already fixed (by rank 0 of a torchrun job, or for the folds of a CV run)."""
    device = resolve_device(cfg.training.device, local_rank)
    if cfg.training.sync_batchnorm and device.type != "cuda":
        raise ValueError(
            "training.sync_batchnorm needs CUDA processes (PyTorch's SyncBatchNorm has no CPU kernel). "
            "Leave it off for CPU (gloo) runs."
        )
    best_metric, mode = resolve_best_metric(
        cfg.training.best_checkpoint_metric,
        build_task(cfg.data),
        ema=cfg.training.ema_decay is not None,
        step_keys=cfg.training.step.eval_log_keys,
        named=build_named_tasks(cfg.model),
    )
    group = group if group is not None else resolve_group(cfg, cfg.experiments_dir, now)
    return ResolvedRun(
        run_dir=run_directory(cfg, group),
        group=group,
        fold=cfg.data.fold,
        seed=cfg.training.seed,
        device=str(device),
        precision=resolve_precision(cfg.training.precision, device),
        task=cfg.data.task,
        num_outputs=cfg.data.num_classes,
        best_metric=best_metric,
        best_metric_mode=mode,
        logger=logger_names(cfg, group),
        ema_decay=cfg.training.ema_decay,
        world_size=world_size,
        global_batch_size=cfg.dataloading.batch_size * world_size * cfg.training.accumulate_grad_batches,
    )
