"""`run_training`, read top to bottom: resolve the run -> data -> model -> optimisation -> tracking -> trainer ->
fit -> test with best.pt. It never names a data kind: the dataset's modality answers those questions."""

import json
import random
import time
import zlib
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset

from glovita.configs.model import takes_bags
from glovita.configs.optimizer import OptimizerConfig
from glovita.configs.root import RootConfig
from glovita.datasets.checks import check_split_files
from glovita.datasets.factory import DatasetSplits, build_datasets, head_columns, left_out
from glovita.logging.base import ExperimentLogger, LoggerContext
from glovita.logging.factory import build_logger
from glovita.logging.none import NoneLogger
from glovita.metrics.base import TestPlots
from glovita.modalities.base import Modality, Pipeline
from glovita.models.composite import GlovitaModel
from glovita.models.factory import build_model, standardizes_features
from glovita.models.img_encoder.precomputed import PrecomputedEncoder
from glovita.runtime.batch import LABEL_MAP, Batch, as_sample
from glovita.runtime.io import read_scores, save_json
from glovita.runtime.loaders import EpochPlan, ResolvedDataloading, ShardSampler, in_memory, make_loader
from glovita.runtime.progress import print_line, print_summary, run_log, set_quiet
from glovita.runtime.timeline import Timeline
from glovita.tasks.base import Task
from glovita.tasks.factory import build_named_tasks, build_task
from glovita.tasks.heads import HeadsMetrics
from glovita.training import run_dir as rundir
from glovita.training.checkpoints import CheckpointWriter, ResumePoint, damage, load_checkpoint
from glovita.training.distributed import DistContext, barrier, broadcast, init_distributed
from glovita.training.loop import EvalResult, Trainer, TrainerOptions, TrainState, load_ema
from glovita.training.optim import build_optimizer, build_scheduler
from glovita.training.preemption import PREEMPTED_EXIT_CODE, StopSignals, TrainingPreempted
from glovita.training.resolve import (
    ResolvedRun,
    balanced_sample_weights,
    encoder_name,
    few_steps_warning,
    lr_range_warning,
    resolve_class_weight,
    resolve_dataloading,
    resolve_drop_last,
    resolve_optimizer,
    resolve_pos_weight,
    resolve_run,
    resolve_shared_group,
    resolve_target_statistics,
    with_feature_dim,
)
from glovita.training.steps.base import Step, StepFacts
from glovita.training.steps.factory import build_step


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGINT) during a run, after its status was recorded; the message says how to resume."""


class RunPreempted(Exception):
    """SIGTERM / SIGUSR1 stopped the run at a safe point, after its checkpoint and status were written; the message
    says how to continue it. The command exits with PREEMPTED_EXIT_CODE."""


def resume_command(argv: list[str], group: str) -> str:
    """The command line that continues this run: the same command when it resumes itself (resume_mode auto), else
    the same flags with its group and --training.resume."""
    import shlex

    words = list(argv) or ["glovita_train"]
    if "--group" not in words and not any(w.startswith("--group=") for w in words):
        words += ["--group", group]
    modes = [i for i, w in enumerate(words) if w == "--training.resume_mode" or w.startswith("--training.resume_mode=")]
    mode = None
    if modes:
        i = modes[-1]
        mode = words[i].split("=", 1)[1] if "=" in words[i] else (words[i + 1] if i + 1 < len(words) else None)
        if mode != "auto":  # best / restart did their move: continuing is strict
            del words[i : i + (1 if "=" in words[i] else 2)]
    if mode != "auto" and "--training.resume" not in words:
        words.append("--training.resume")
    return shlex.join(words)


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    test_metrics: dict[str, float]
    best_epoch: int | None


@dataclass(frozen=True)
class RunData:
    """The splits, their resolved pipeline, and the three loaders (test: None without a test split)."""

    splits: DatasetSplits
    pipeline: Pipeline
    loading: ResolvedDataloading
    train: DataLoader
    val: DataLoader
    test: DataLoader | None
    warnings: list[str]
    """What building the loaders warned about (recorded in resolved_config.json)."""
    training_loader: Callable[..., DataLoader]
    """A seeded, sharded training loader over another dataset (a step's extra data), named for its seed."""


@dataclass(frozen=True)
class RunModel:
    """The model on its device, what the training step calls (DDP / compiled), what evaluation calls, its EMA."""

    module: GlovitaModel
    train_model: nn.Module
    eval_model: nn.Module
    ema: AveragedModel | None


@dataclass(frozen=True)
class RunOptimisation:
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    fused: bool
    optimizer_steps_per_epoch: int
    settings: OptimizerConfig
    """The optimizer config the run uses (resolve_optimizer)."""
    batches_per_epoch: int
    """Training batches per epoch: the training loader's, or as many as the step asks (Step.epoch_length)."""

    @property
    def full_batch(self) -> bool:
        """L-BFGS: each epoch is one solve on the whole training split."""
        return self.settings.full_batch


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # Set both ways: an earlier in-process run must not leave its choice behind.
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.benchmark = not deterministic and torch.cuda.is_available()


def fused_optimizer_available(device: torch.device, name: str) -> bool:
    """Fused AdamW/Adam kernels exist for CPU and CUDA float parameters."""
    return name in ("adamw", "adam") and device.type in ("cpu", "cuda")


StopCheck = Callable[[dict[str, Any]], str | None]
"""Asked after every epoch with its metrics record; a returned reason stops training there (a sweep's pruner)."""


def run_training(
    cfg: RootConfig,
    argv: list[str] | None = None,
    dist: DistContext | None = None,
    should_stop: StopCheck | None = None,
) -> RunResult:
    """Train, validate every epoch, evaluate best.pt on the test split; everything lands in the run directory.

    Under torchrun every process calls this; `dist` says which one this is (joined here when not given)."""
    clock = Timeline()
    dist = dist if dist is not None else init_distributed(cfg.training.device)
    set_quiet(not dist.is_main)
    return _run_training(cfg, argv or [], dist, should_stop, clock)


def _run_training(
    cfg: RootConfig,
    argv: list[str],
    dist: DistContext,
    should_stop: StopCheck | None,
    clock: Timeline,
) -> RunResult:
    """Resolve the run, hold its directory (rank 0: one writer per run directory), then train in it."""
    started = datetime.now()
    group = resolve_shared_group(cfg, dist, started)
    plan = resolve_run(cfg, started, group, dist.local_rank if dist.enabled else None, dist.world_size)
    signals = StopSignals()
    with rundir.exclusive_run_dir(plan.run_dir) if dist.is_main else nullcontext(), signals.installed():
        return _train_in_run_dir(cfg, plan, argv, dist, started, should_stop, clock, signals)


def _train_in_run_dir(
    cfg: RootConfig,
    plan: ResolvedRun,
    argv: list[str],
    dist: DistContext,
    started: datetime,
    should_stop: StopCheck | None,
    clock: Timeline,
    signals: StopSignals,
) -> RunResult:
    wall_start = time.perf_counter()
    clock.mark("run_setup")
    begin = (
        rundir.settle_run_dir(plan.run_dir, cfg, cfg.training.effective_resume_mode, started) if dist.is_main else None
    )
    begin = broadcast(dist, begin)  # rank 0 moved what the mode moves before any rank reads the folder
    if begin == "completed":
        return _already_completed(plan.run_dir, dist)
    resume_from = rundir.prepare_run_dir(plan.run_dir, cfg, begin == "resume")
    barrier(dist)  # every rank has checked the folder before rank 0 writes into it
    with run_log(plan.run_dir / "train.log") if dist.is_main else nullcontext():
        return _train_prepared(cfg, plan, argv, dist, started, should_stop, clock, signals, resume_from, wall_start)


def _train_prepared(
    cfg: RootConfig,
    plan: ResolvedRun,
    argv: list[str],
    dist: DistContext,
    started: datetime,
    should_stop: StopCheck | None,
    clock: Timeline,
    signals: StopSignals,
    resume_from: Any,
    wall_start: float,
) -> RunResult:
    """Data, model, step, optimizer, tracking and trainer of a run whose directory is ready; then fit and test."""
    seed_everything(cfg.training.seed, cfg.training.deterministic)
    task = build_task(cfg.data)
    splits = _build_splits(cfg, task, dist)
    clock.mark("dataset")
    cfg = with_feature_dim(cfg, splits.feature_dim, splits.description)
    plan = _with_loss_weights(cfg, plan, splits)
    model = build_model(
        cfg.model,
        cfg.peft,
        cfg.data.num_classes,
        cfg.task.label_smoothing,
        task.multilabel,
        plan.pos_weight or plan.class_weight,
        standardize_features=standardizes_features(cfg.data),
        ignore_index=int(getattr(cfg.data, "ignore_index", 255)),
        image_targets=task.predicts_images,
    )
    if splits.standardization is not None:
        cast(PrecomputedEncoder, model.encoder).set_statistics(*splits.standardization)
    for name, statistics in plan.target_statistics.items():
        head = model.heads[name] if name else model.head
        cast(Any, head).set_target_statistics(statistics["mean"], statistics["std"])
    clock.mark("model")
    device = torch.device(plan.device)
    data = _build_data(cfg, splits, model, device, dist)
    if cfg.model.input_mask.checkpoint_path is not None:
        model.input_mask, record = _input_mask(cfg, data, plan.run_dir, resume_from is not None)
        plan = replace(plan, input_mask=record)
    placed = _place_model(cfg, model, splits.modality, device, dist)
    facts = StepFacts(
        model=placed.module,
        task=task,
        modality=splits.modality,
        normalization=data.pipeline.normalization,
        device=device,
        steps_per_epoch=len(data.train),
        epochs=cfg.training.epochs,
        seed=cfg.training.seed,
        training_loader=data.training_loader,
        unlabeled_pool=left_out(splits.train),
        pipeline=data.pipeline,
    )
    step = build_step(cfg, facts)
    optimisation = _build_optimisation(cfg, placed.module, data, step.epoch_length(len(data.train)), device, dist)
    resolved = _complete_resolved(plan, data, model, optimisation, cfg.training.epochs)
    info = rundir.runtime_info(argv, resolved.device, _device_name(device), started)
    info["world_size"] = dist.world_size
    info["earlier_attempts"] = rundir.earlier_attempts(resolved.run_dir)
    logger = _start_tracking(cfg, resolved, info, dist, resume_from is not None)
    trainer = _build_trainer(
        cfg, facts, step, resolved, placed, optimisation, logger, dist, should_stop, info, started.timestamp()
    )
    trainer.stop_signal = lambda: signals.received
    trainer.on_first_step = lambda: clock.mark("first_step")
    if resume_from is not None:
        _resume(cfg, trainer, resolved.run_dir, dist, resume_from)
    _announce(cfg, resolved, splits.modality, device, dist)
    if dist.is_main and not (resolved.run_dir / "augmentations.png").is_file():
        _preview_augmentation(data, resolved.run_dir, cfg.training.seed, logger)
    grid = getattr(optimisation.settings, "l2_grid", ())
    if grid and resume_from is None:  # a resumed run's solver state holds the value chosen before
        from glovita.training.probe import select_weight_decay

        chosen, rows = select_weight_decay(trainer, data.train, data.val, grid, cfg.training.epochs)
        if dist.is_main:
            save_json(
                {"chosen_weight_decay": chosen, "metric": resolved.best_metric, "candidates": rows},
                resolved.run_dir / "l2_selection.json",
            )
    clock.mark("loaders_optimizer_tracking")
    return _fit_and_test(cfg, trainer, data, resolved, logger, info, dist, wall_start, clock)


def _already_completed(run_dir: Path, dist: DistContext) -> RunResult:
    """--training.resume_mode auto on a run that completed: its results, read back; nothing is trained or tested."""
    info = rundir.completed_run(run_dir) or {}
    metrics = read_scores(run_dir / "test_metrics.json")
    if dist.is_main:
        print_line(f"'{run_dir}' completed at {info.get('finished_at')}; nothing to do (training.resume_mode auto).")
    return RunResult(run_dir=run_dir, test_metrics=metrics, best_epoch=info.get("best_epoch"))


def _build_splits(cfg: RootConfig, task: Task, dist: DistContext) -> DatasetSplits:
    """Rank 0 first (a dataset may write files on first use, e.g. digits), then the others; then the checks that
    need the data: a validation split, and heads and encoders that fit the samples."""
    channels = getattr(cfg.model.encoder, "input_channels", 3)
    columns = head_columns(cfg.model)
    splits = build_datasets(cfg.data, channels, columns) if dist.is_main else None
    barrier(dist)
    if splits is None:
        splits = build_datasets(cfg.data, channels, columns)
    if len(splits.val) == 0:  # type: ignore[arg-type]
        raise ValueError(
            f"The validation split of {cfg.data.dataset} under '{cfg.data.data_root_dir}' is empty. "
            "Add validation samples (or raise --data.val_fraction)."
        )
    _check_samples_fit_model(cfg, splits)
    if cfg.data.check_files and dist.is_main:
        check_split_files({"train": splits.train, "val": splits.val, "test": splits.test})
    _warn_missing_classes(splits, task)
    return splits


def _warn_missing_classes(splits: DatasetSplits, task: Task) -> None:
    """Name every class without samples (multilabel: every label without positives) in a split: its macro
    metrics average over the classes present."""
    named = {"train": splits.train_targets, "val": getattr(splits.val, "targets", None)}
    if splits.test is not None:
        named["test"] = getattr(splits.test, "targets", None)
    for split, targets in named.items():
        if targets is None:
            continue
        missing = task.absent_classes(targets, splits.class_names)
        if missing:
            what = "positives of label" if task.multilabel else "samples of class"
            print_line(
                f"warning: the {split} split has no {what} {', '.join(map(repr, missing[:10]))}"
                f"{' ...' if len(missing) > 10 else ''}; its macro metrics average over the classes present."
            )


def _check_samples_fit_model(cfg: RootConfig, splits: DatasetSplits) -> None:
    """The head takes what the samples are (bags or single samples)."""
    head = cfg.model.head
    if takes_bags(head) != splits.modality.bags:
        wanted = (
            "a bag file (bag_ptr / bag_lengths, or features of shape (B, N, D))"
            if takes_bags(head)
            else ("an instance file (features (N, D)), or --model.head.head_type clam or abmil for bags")
        )
        raise ValueError(f"model.head.head_type={head.head_type!r} cannot train on {splits.description}. Use {wanted}.")
    if cfg.model.heads:  # each named head's targets are a field of the samples
        fields = as_sample(splits.train[0])
        for name, spec in cfg.model.heads.items():
            if spec.target_field not in fields:
                raise ValueError(
                    f"model.heads.{name}.target_field={spec.target_field!r}, but the samples of {cfg.data.dataset} "
                    f"have the fields {', '.join(sorted(fields))}. Name one of them, or a dataset that gives it."
                )


def _with_loss_weights(cfg: RootConfig, plan: ResolvedRun, splits: DatasetSplits) -> ResolvedRun:
    """Class names and the loss weights derived from the training split's labels."""
    pos_weight = (
        resolve_pos_weight(splits.train_targets, cfg.data.num_classes) if cfg.task.multilabel_pos_weight else None
    )
    class_weight = (
        resolve_class_weight(splits.train_targets, cfg.data.num_classes) if cfg.task.class_weighted_loss else None
    )
    head_class_names = {
        name: splits.field_classes[spec.target_field]
        for name, spec in cfg.model.heads.items()
        if spec.target_field in splits.field_classes
    }
    return replace(
        plan,
        class_names=splits.class_names,
        head_class_names=head_class_names,
        pos_weight=pos_weight,
        class_weight=class_weight,
        target_statistics=_target_statistics(cfg, splits),
    )


def _target_statistics(cfg: RootConfig, splits: DatasetSplits) -> dict[str, dict[str, list[float]]]:
    """The training targets' mean and std of every head that standardises its targets ('' is the main head); a
    named head whose values the dataset does not list (made per sample) learns them as they are."""
    wanted = {"": (cfg.model.head, None)} | {
        name: (spec.head, spec.target_field) for name, spec in cfg.model.heads.items()
    }
    statistics = {}
    for name, (head, target_field) in wanted.items():
        if not getattr(head, "standardize_targets", False):
            continue
        values = splits.train_targets if target_field is None else splits.train_field_values(target_field)
        if values is not None:
            statistics[name] = resolve_target_statistics(values)
    return statistics


def _build_data(
    cfg: RootConfig, splits: DatasetSplits, model: GlovitaModel, device: torch.device, dist: DistContext
) -> RunData:
    """The modality's pipeline for this encoder, the seeded training loader and the sharded evaluation loaders."""
    modality = splits.modality
    pipeline = modality.pipeline(model.encoder.preprocessing, getattr(cfg.model.encoder, "input_channels", 3))
    loading = resolve_dataloading(cfg.dataloading, device, in_memory(splits.train, splits.val, splits.test))
    loader_args: dict[str, Any] = dict(
        num_workers=loading.num_workers,
        pin_memory=loading.pin_memory,
        persistent_workers=loading.persistent_workers,
        prefetch_factor=loading.prefetch_factor,
        collate=modality.collate,
    )
    size = len(splits.train)  # type: ignore[arg-type]
    weights = (
        balanced_sample_weights(splits.train_targets, cfg.data.num_classes)
        if cfg.task.class_balanced_sampling
        else None
    )
    plan = EpochPlan(size, cfg.training.seed, shuffle=True, weights=weights, rank=dist.rank, world_size=dist.world_size)
    loading, warning = resolve_drop_last(loading, plan.per_rank)
    if warning is not None:
        print_line(f"warning: {warning}")
    sampler = modality.train_sampler(plan, loading.batch_size, loading.drop_last)
    train = make_loader(
        pipeline.train_dataset(splits.train), loading.batch_size, sampler, drop_last=loading.drop_last, **loader_args
    )
    if size == 0:  # no batch size or drop_last helps here
        where = splits.description or f"data.data_root_dir '{getattr(cfg.data, 'data_root_dir', '')}'"
        raise ValueError(f"The training split has no samples ({where}). Put samples in it, or check the split files "
                         "and --data.data_root_dir.")  # fmt: skip
    if len(train) == 0:
        raise ValueError(
            f"The training split has {size} samples, fewer than dataloading.batch_size="
            f"{loading.batch_size} with drop_last. Lower --dataloading.batch_size or pass --dataloading.no_drop_last."
        )

    def eval_loader(dataset: Dataset) -> DataLoader:
        shard = ShardSampler(len(dataset), dist.rank, dist.world_size) if dist.enabled else None  # type: ignore[arg-type]
        return make_loader(
            pipeline.eval_dataset(dataset), loading.eval_batch_size, shard, drop_last=False, **loader_args
        )

    def training_loader(
        dataset: Dataset, name: str, batch_size: int | None = None, transformed: bool = False
    ) -> DataLoader:
        seed = cfg.training.seed + zlib.crc32(name.encode())  # its own order, fixed by the run's seed and the name
        extra = EpochPlan(len(dataset), seed, shuffle=True, rank=dist.rank, world_size=dist.world_size)  # type: ignore[arg-type]
        size = batch_size or loading.batch_size
        sampler = modality.train_sampler(extra, size, loading.drop_last)
        return make_loader(
            dataset if transformed else pipeline.train_dataset(dataset), size, sampler, drop_last=loading.drop_last,
            **loader_args,
        )  # fmt: skip

    test = eval_loader(splits.test) if splits.test is not None else None
    warnings = [warning] if warning else []
    return RunData(splits, pipeline, loading, train, eval_loader(splits.val), test, warnings, training_loader)


def _input_mask(cfg: RootConfig, data: RunData, run_dir: Path, resuming: bool) -> tuple[nn.Module, dict[str, Any]]:
    """model.input_mask's segmenter: read from its run when the run starts; a resumed run rebuilds it from its own
    resolved_config.json record (its checkpoint holds the weights), as glovita_infer does."""
    from glovita.training.input_mask import build_input_mask, rebuild_input_mask

    recorded = run_dir / "resolved_config.json"
    if resuming and recorded.is_file():
        record = json.loads(recorded.read_text()).get("input_mask")
        return rebuild_input_mask(cfg.model.input_mask, record, str(run_dir)), record
    channels = int(getattr(cfg.model.encoder, "input_channels", 3))
    return build_input_mask(cfg.model.input_mask, data.pipeline.normalization, channels)


def _place_model(
    cfg: RootConfig, model: GlovitaModel, modality: Modality, device: torch.device, dist: DistContext
) -> RunModel:
    """Device and memory format, SyncBatchNorm, EMA copy, DDP wrapper and torch.compile."""
    model.to(device)
    memory_format = modality.memory_format(cfg.training.channels_last)
    if memory_format is not None:
        model.to(memory_format=memory_format)
    if dist.enabled and cfg.training.sync_batchnorm:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)  # type: ignore[assignment]
    ema = None
    if cfg.training.ema_decay is not None:
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.training.ema_decay), use_buffers=True)
    train_model: nn.Module = model
    if dist.enabled:
        train_model = DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=takes_bags(cfg.model.head),  # MIL heads skip branches per bag
        )
    eval_model: nn.Module = model
    if cfg.training.compile:
        train_model = torch.compile(train_model)  # type: ignore[assignment]
        eval_model = torch.compile(model)  # type: ignore[assignment]
    return RunModel(model, train_model, eval_model, ema)


def _build_optimisation(
    cfg: RootConfig, model: GlovitaModel, data: RunData, batches: int, device: torch.device, dist: DistContext
) -> RunOptimisation:
    """The optimizer the run uses (resolve_optimizer: L-BFGS for a linear probe on feature files) and its
    schedule. L-BFGS makes one optimizer step (a solve of up to max_iter iterations) per epoch."""
    settings, note = resolve_optimizer(cfg, len(data.splits.train))  # type: ignore[arg-type]
    if note is not None:
        print_line(note)
    full_batch = settings.full_batch
    if full_batch and dist.enabled:
        raise ValueError(
            "optimizer.name='lbfgs' solves on the whole training split in one process; run it without torchrun."
        )
    fused = fused_optimizer_available(device, settings.name)
    optimizer = build_optimizer(settings, model, fused)
    optimizer_steps = 1 if full_batch else -(-batches // cfg.training.accumulate_grad_batches)
    scheduler = build_scheduler(settings, optimizer, optimizer_steps, cfg.training.epochs)
    return RunOptimisation(optimizer, scheduler, fused, optimizer_steps, settings, batches)


def _complete_resolved(
    plan: ResolvedRun, data: RunData, model: GlovitaModel, optimisation: RunOptimisation, epochs: int
) -> ResolvedRun:
    """resolved_config.json's values from what was built, set once."""
    splits = data.splits
    total_steps = optimisation.optimizer_steps_per_epoch * epochs
    few_steps = None
    if not optimisation.full_batch:  # an L-BFGS epoch is a whole solve, not one step
        few_steps = few_steps_warning(total_steps, epochs, optimisation.optimizer_steps_per_epoch)
    lr_range = lr_range_warning(optimisation.settings, plan.global_batch_size)
    for warning in (few_steps, lr_range):
        if warning is not None:
            print_line(f"warning: {warning}")
    return replace(
        plan,
        encoder_out_dim=model.encoder.out_dim,
        encoder_preprocessing=data.pipeline.encoder_preprocessing,
        warnings=[*plan.warnings, *data.warnings, *(w for w in (few_steps, lr_range) if w)],
        augmentation=data.pipeline.resolved,
        dataloading=data.loading,
        dataset_sizes={
            "train": len(splits.train),  # type: ignore[arg-type]
            "val": len(splits.val),  # type: ignore[arg-type]
            "test": len(splits.test) if splits.test is not None else 0,  # type: ignore[arg-type]
        },
        steps_per_epoch=optimisation.batches_per_epoch,
        optimizer_steps_per_epoch=optimisation.optimizer_steps_per_epoch,
        total_steps=total_steps,
        fused_optimizer=optimisation.fused,
        optimizer=optimisation.settings.model_dump(mode="json"),
        parameters={
            "total": sum(p.numel() for p in model.parameters()),
            "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        },
    )


def _device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def _previous_logger_run(run_dir: Path) -> str | None:
    """The tracking backend's run id of an earlier attempt of this run (runtime_info.json), for resume."""
    try:
        return json.loads((run_dir / "runtime_info.json").read_text()).get("logger_run_id")
    except (OSError, ValueError):
        return None


def _start_tracking(
    cfg: RootConfig, resolved: ResolvedRun, info: dict[str, Any], dist: DistContext, resumed: bool
) -> ExperimentLogger:
    """Rank 0 writes config.json, resolved_config.json and runtime_info.json, and starts the tracking backend."""
    if not dist.is_main:
        return NoneLogger()
    run_dir = resolved.run_dir
    rundir.write_config_files(run_dir, cfg, resolved.to_json())
    context = LoggerContext(
        experiment=resolved.logger["experiment"],
        group=resolved.group,
        run_name=resolved.logger["run_name"],
        run_dir=run_dir,
        experiments_dir=cfg.experiments_dir,
        resume_id=_previous_logger_run(run_dir) if resumed else None,
    )
    logger = build_logger(cfg.logger, context)
    info["logger_run_id"] = logger.run_id
    rundir.write_runtime_info(run_dir, info)
    logger.log_config(cfg.model_dump(mode="json"), cfg.add_log)
    return logger


def _build_trainer(
    cfg: RootConfig,
    facts: StepFacts,
    step: Step,
    resolved: ResolvedRun,
    placed: RunModel,
    optimisation: RunOptimisation,
    logger: ExperimentLogger,
    dist: DistContext,
    should_stop: StopCheck | None = None,
    info: dict[str, Any] | None = None,
    started: float = 0.0,
) -> Trainer:
    minutes = cfg.training.checkpoint_every_n_minutes
    options = TrainerOptions(
        precision=resolved.precision,
        gradient_clip_norm=cfg.training.gradient_clip_norm,
        memory_format=facts.modality.memory_format(cfg.training.channels_last),
        accumulate_grad_batches=cfg.training.accumulate_grad_batches,
        early_stopping_patience=cfg.training.early_stopping_patience,
        best_metric=resolved.best_metric,
        best_mode=resolved.best_metric_mode,
        full_batch=optimisation.full_batch,
        batches_per_epoch=optimisation.batches_per_epoch,
        checkpoint_every_n_steps=cfg.training.checkpoint_every_n_steps,
        checkpoint_every_seconds=minutes * 60 if minutes is not None else None,
    )
    run_dir = resolved.run_dir
    checkpoints = None
    if dist.is_main:
        checkpoints = CheckpointWriter(
            run_dir / "checkpoints", cfg.training.checkpoint_every_n_epochs, cfg.training.max_epoch_checkpoints
        )
    device = torch.device(resolved.device)
    return Trainer(
        module=placed.module,
        step=step,
        optimizer=optimisation.optimizer,
        scheduler=optimisation.scheduler,
        device=device,
        options=options,
        make_metrics=lambda: HeadsMetrics(
            facts.task.build_metrics(device),
            build_named_tasks(cfg.model, resolved.head_class_names),
            device,
            facts.task.target_field,
        ),
        checkpoints=checkpoints,
        logger=logger,
        on_epoch_end=_epoch_end(cfg, resolved, info, started) if dist.is_main and info else (lambda _: None),
        model=placed.train_model,
        eval_model=placed.eval_model,
        ema=placed.ema,
        dist=dist,
        should_stop=should_stop,
    )


def _epoch_end(
    cfg: RootConfig, resolved: ResolvedRun, info: dict[str, Any], started: float
) -> Callable[[dict[str, Any]], str]:
    """Rank 0 after each epoch: append its record to metrics.jsonl, update the run's expected end (and whether it
    fits its time limit) in runtime_info.json; the expected end is shown on the epoch's line."""
    from glovita.training.estimate import RunEstimate, deadline

    end, source = deadline(cfg.training.time_limit, started)
    sizes = resolved.dataset_sizes
    estimate = RunEstimate(cfg.training.epochs, sizes["val"], sizes["test"], end, source)

    def done(record: dict[str, Any]) -> str:
        rundir.append_metrics(resolved.run_dir, record)
        expected = estimate.after_epoch(record)
        info.update(expected)
        try:
            rundir.write_runtime_info(resolved.run_dir, info)
        except OSError as err:
            print_line(f"warning: could not update runtime_info.json ({err}).")
        warning = estimate.warning(expected)
        if warning:
            print_line(warning)
        _write_report(resolved.run_dir)  # live: a browser refresh (or the page's own) shows the run so far
        return estimate.note(expected)

    return done


def _resume(cfg: RootConfig, trainer: Trainer, run_dir: Path, dist: DistContext, start: ResumePoint) -> None:
    """Continue from the newest intact checkpoint (last.pt unless it is damaged; damaged ones are named), as
    prepare_run_dir found and read it."""
    folder = run_dir / "checkpoints"
    if start.passed_over:
        passed = "; ".join(start.passed_over)
        print_line(f"warning: passed over damaged checkpoints ({passed}); resuming from {start.path.name}.")
    trainer.load_state_dict(start.checkpoint)
    if (folder / "best.pt").is_file() and damage(folder / "best.pt") is not None:
        print_line("warning: best.pt is damaged too; the next epoch's checkpoint replaces it as best.pt.")
        trainer.state.best_value, trainer.state.best_epoch = None, None
    if dist.is_main:
        rundir.truncate_metrics(run_dir, trainer.state.epoch)
    inside = start.checkpoint.get("epoch_progress")
    where = f", step {inside['step']}" if inside is not None else ""
    print_line(f"Resuming {run_dir} at epoch {trainer.state.epoch + 1}/{cfg.training.epochs}{where}")


def _announce(
    cfg: RootConfig, resolved: ResolvedRun, modality: Modality, device: torch.device, dist: DistContext
) -> None:
    trainable, total = resolved.parameters["trainable"], resolved.parameters["total"]
    processes = f", {dist.world_size} processes" if dist.enabled else ""
    sizes = resolved.dataset_sizes
    print_line(f"Run directory: {resolved.run_dir}")
    print_line(
        f"Training {encoder_name(cfg)} on {cfg.data.dataset} ({sizes['train']} train / {sizes['val']} val "
        f"{modality.sample_noun}, {trainable:,}/{total:,} trainable parameters) on {_device_name(device)}{processes}"
    )


def _fit_and_test(
    cfg: RootConfig,
    trainer: Trainer,
    data: RunData,
    resolved: ResolvedRun,
    logger: ExperimentLogger,
    info: dict[str, Any],
    dist: DistContext,
    wall_start: float,
    clock: Timeline,
) -> RunResult:
    """Fit, test best.pt, merge adapters; runtime_info.json records how it ended, whatever happens."""
    run_dir = resolved.run_dir
    status = "failed"
    state: TrainState = trainer.state
    test_metrics: dict[str, float] = {}
    try:
        state = trainer.fit(data.train, data.val, cfg.training.epochs)
        clock.mark("training")
        if data.test is not None:
            test_metrics = _test(cfg, trainer, data, run_dir, logger, dist)
            clock.mark("test")
        else:
            print_line("No test split: test_metrics.json is not written.")
        task = build_task(cfg.data)
        if dist.is_main and task.dense:
            splits = {"val": data.val, **({"test": data.test} if data.test is not None else {})}
            if task.predicts_images:
                from glovita.training.pictures import save_predicted_images

                drawn = save_predicted_images(trainer.module, trainer.device, splits, data.pipeline, run_dir)
            else:
                drawn = _save_overlays(trainer, splits, data.pipeline, run_dir, cfg.data.num_classes)
            for plot in drawn:
                logger.log_artifact(plot)
        maps_of = getattr(trainer.step, "maps", None)  # steps that explain their classes draw their maps
        if dist.is_main and maps_of is not None:
            splits = {"val": data.val, **({"test": data.test} if data.test is not None else {})}
            for plot in _save_saliency(trainer, maps_of, splits, data.pipeline, run_dir):
                logger.log_artifact(plot)
        if dist.is_main and getattr(cfg.peft, "save_merged", False):
            _save_merged(trainer, run_dir)
        status = "completed"
    except TrainingPreempted as err:
        status = "preempted"
        command = resume_command(info["command"], resolved.group)
        info.update(resume_command=command, stop_signal=err.signal_name, exit_code=PREEMPTED_EXIT_CODE)
        raise RunPreempted(
            f"{err}; runtime_info.json in '{run_dir}' records status 'preempted'. Continue with: {command}"
        ) from err
    except KeyboardInterrupt as err:
        status = "interrupted"
        _finish_checkpoint_write(trainer)
        raise RunInterrupted(
            f"interrupted in epoch {trainer.state.epoch + 1}/{cfg.training.epochs}; runtime_info.json in "
            f"'{run_dir}' records status 'interrupted'. Resume with: {resume_command(info['command'], resolved.group)}"
        ) from err
    finally:
        wall = time.perf_counter() - wall_start
        if dist.is_main:
            clock.mark("finish")
            info.update(
                status=status,
                finished_at=datetime.now().isoformat(timespec="seconds"),
                wall_seconds=wall,
                epochs_completed=state.epoch,
                best_epoch=state.best_epoch,
                stopped_early=state.stopped_early,
                timeline_seconds=clock.seconds(),
            )
            try:
                rundir.write_runtime_info(run_dir, info)
            except OSError as err:  # e.g. a full disk: the error that stopped the run is the one to report
                print_line(f"warning: could not record status {status!r} in runtime_info.json ({err}).")
            _write_report(run_dir)
            logger.finish(status)
    if dist.is_main:
        if clock.until("first_step") is not None:
            print_line(clock.startup_text("first_step"))
        best = ""
        if state.best_epoch is not None and state.best_value is not None:
            best = f"epoch {state.best_epoch + 1} ({resolved.best_metric} {state.best_value:.4f})"
        print_summary(test_metrics, wall, run_dir, best)
    return RunResult(run_dir=run_dir, test_metrics=test_metrics, best_epoch=state.best_epoch)


def _finish_checkpoint_write(trainer: Trainer) -> None:
    """After Ctrl-C: let the checkpoint write in flight finish (the resume command names last.pt), without letting
    its error hide the interrupt."""
    if trainer.checkpoints is None:
        return
    try:
        trainer.checkpoints.join()
    except Exception as err:  # noqa: BLE001  # the interrupt is what ended the run; the write's error is a warning
        print_line(f"warning: the last checkpoint write failed ({type(err).__name__}: {err}).")


def _preview_augmentation(data: RunData, run_dir: Path, seed: int, logger: ExperimentLogger) -> None:
    """augmentations.png in the run directory (the report and the tracking backend show it); a preview that
    cannot be drawn never fails the run."""
    import random

    from glovita.training.pictures import save_augmentation_preview

    policy = str(getattr(data.pipeline.resolved, "train_policy", "") or "training transform")
    states = random.getstate(), np.random.get_state()
    try:
        with torch.random.fork_rng(devices=[]):  # drawing the preview leaves training's random streams as they were
            path = save_augmentation_preview(
                data.pipeline, data.splits.train, data.splits.class_names, policy, run_dir / "augmentations.png", seed
            )
    except Exception as err:  # noqa: BLE001  # a picture for the report; training goes on without it
        print_line(f"warning: augmentations.png was not written ({type(err).__name__}: {err}).")
        return
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
    if path is not None:
        logger.log_artifact(path)


def _write_report(run_dir: Path) -> None:
    """report.html of the run, however it ended; a report that cannot be written never fails the run."""
    from glovita.reports.html import write_run_report

    try:
        write_run_report(run_dir)
    except Exception as err:  # noqa: BLE001  # the report is a view of files already written
        print_line(f"warning: report.html was not written ({type(err).__name__}: {err}).")


def _save_merged(trainer: Trainer, run_dir: Path) -> None:
    """checkpoints/best_merged.pt: best.pt's weights with the LoRA/DoRA adapters folded into plain layers."""
    from glovita import __version__
    from glovita.models.peft.low_rank import merged_state_dict
    from glovita.runtime.io import save_torch

    trainer.module.load_state_dict(best_state(trainer, run_dir)["model"])
    path = run_dir / "checkpoints" / "best_merged.pt"
    merged = {"model": merged_state_dict(trainer.module), "glovita_version": __version__, "merged_from": "best.pt"}
    save_torch(merged, path)
    print_line(f"Merged adapters into plain weights: {path} (loads with --peft.method full_finetuning)")


def best_state(trainer: Trainer, run_dir: Path) -> dict[str, Any]:
    """best.pt's weights: the snapshot this process wrote it from when that is the run's best epoch (no read back),
    else the file (a best epoch of an earlier, resumed process; other torchrun ranks)."""
    written = trainer.checkpoints.best_state if trainer.checkpoints is not None else None
    if written is not None and written["epoch"] == trainer.state.best_epoch:
        return written
    return load_checkpoint(run_dir / "checkpoints" / "best.pt")


def _prefixed(prefix: str, result: EvalResult) -> dict[str, float]:
    return {f"{prefix}_loss": result.loss, **{f"{prefix}_{k}": v for k, v in result.metrics.items()}}


OVERLAY_IMAGES = 6
"""Images per split drawn in <split>_overlays.png of a segmentation run."""


def _save_overlays(
    trainer: Trainer, loaders: dict[str, DataLoader], pipeline: Pipeline, run_dir: Path, num_classes: int
) -> list[Path]:
    """<split>_overlays.png: the first images of each split with their true and predicted label maps (the weights
    trained last were replaced by best.pt's in the test pass when there is one)."""
    from glovita.metrics.plots import save_segmentation_overlays

    model = trainer.module.eval()
    written: list[Path] = []
    for split, loader in loaders.items():
        batch = next(iter(loader)).to(trainer.device)
        count = min(OVERLAY_IMAGES, len(batch))
        with torch.no_grad():
            logits = model.head.logits(model.main_outputs(model(batch.inputs[:count], None)))
        inputs = batch.inputs[:count].float().cpu()
        show, labels = pipeline.display, pipeline.display_labels
        if show is None or labels is None:
            return written
        images = [show(view) for view in inputs]
        truth = np.stack([labels(m) for m in batch.read(LABEL_MAP)[:count].cpu()])
        predicted = np.stack([labels(m) for m in logits.argmax(dim=1).cpu()])
        path = run_dir / f"{split}_overlays.png"
        title = f"{split}: image, true and predicted label maps"
        save_segmentation_overlays(images, truth, predicted, num_classes, path, title)
        written.append(path)
    return written


def _save_saliency(
    trainer: Trainer,
    maps_of: Callable[[nn.Module, Batch], tuple[torch.Tensor, torch.Tensor]],
    loaders: dict[str, DataLoader],
    pipeline: Pipeline,
    run_dir: Path,
) -> list[Path]:
    """<split>_saliency.png: the first images of each split, their annotated segments and their saliency maps of the
    true class (best.pt's weights, after the test pass)."""
    from glovita.metrics.plots import save_saliency_overlays

    show, draw_map = pipeline.display, pipeline.display_map
    if show is None or draw_map is None:
        return []
    model = trainer.module.eval()
    written: list[Path] = []
    for split, loader in loaders.items():
        batch = next(iter(loader)).to(trainer.device)
        count = min(OVERLAY_IMAGES, len(batch))
        few = Batch(batch.inputs[:count], batch.targets[:count], None, {k: v[:count] for k, v in batch.fields.items()})
        maps, masks = maps_of(model, few)
        images = [show(view) for view in few.inputs.float().cpu()]
        path = run_dir / f"{split}_saliency.png"
        drawn_maps = [draw_map(m) for m in maps.cpu()]
        drawn_masks = [draw_map(m) for m in masks.cpu()]
        save_saliency_overlays(images, drawn_masks, drawn_maps, path, f"{split}: image, annotated segment, saliency")
        written.append(path)
    return written


def _test(
    cfg: RootConfig, trainer: Trainer, data: RunData, run_dir: Path, logger: ExperimentLogger, dist: DistContext
) -> dict[str, float]:
    """Evaluate best.pt (and its EMA weights) on the test split; rank 0 writes test_metrics.json and plots."""
    from glovita.datasets.factory import sample_ids
    from glovita.training.pictures import save_worst_errors

    loader, class_names = data.test, data.splits.class_names
    assert loader is not None
    best = best_state(trainer, run_dir)
    trainer.module.load_state_dict(best["model"])
    result = trainer.evaluate(loader, "test", curves=True)
    metrics = _prefixed("test", result)
    if trainer.ema is not None:
        load_ema(trainer.ema, best)
        metrics.update(_prefixed("test_ema", trainer.evaluate(loader, "test EMA", trainer.ema.module)))
    if not dist.is_main:
        return metrics
    save_json(metrics, run_dir / "test_metrics.json")
    logger.log_metrics(metrics, step=trainer.state.epoch)
    epoch = int(best["best"]["epoch"])
    title = f"{cfg.data.dataset} test, best.pt = epoch {epoch + 1} (epoch_{epoch:04d}.pt)"
    plots = TestPlots(cfg.task.plot_confusion_matrix, cfg.task.plot_reliability_diagram)
    for plot in result.metric_set.save_test_outputs(run_dir, class_names, title, plots):
        logger.log_artifact(plot)
    heading = f"Worst test errors of best.pt (epoch {epoch + 1}): true and predicted"
    ids = sample_ids(data.splits.test) if data.splits.test is not None else []
    worst = save_worst_errors(result.metric_set, loader, data.pipeline, run_dir, class_names, ids, heading)
    if worst is not None:
        logger.log_artifact(worst)
    return metrics
