"""`run_training`: config -> datasets -> transforms -> loaders -> model -> PEFT -> trainer -> test evaluation."""

import json
import random
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Dataset, Sampler

from glovita.augmentation.factory import build_policy_transforms
from glovita.configs.model import BAG_HEADS
from glovita.configs.root import RootConfig
from glovita.datasets.factory import DatasetSplits, build_datasets
from glovita.logging.base import ExperimentLogger, LoggerContext
from glovita.logging.factory import build_logger
from glovita.logging.none import NoneLogger
from glovita.metrics.factory import build_metrics
from glovita.models.factory import build_model
from glovita.training import run_dir as rundir
from glovita.training.checkpoints import CheckpointWriter, load_checkpoint
from glovita.training.dataloaders import (
    SeededBatchSampler,
    SeededSampler,
    ShardSampler,
    TransformedDataset,
    make_loader,
)
from glovita.training.distributed import DistContext, barrier, broadcast, init_distributed
from glovita.training.io import save_json
from glovita.training.loop import Trainer, TrainerOptions, load_ema
from glovita.training.mixing import BatchMixer
from glovita.training.optim import build_optimizer, build_scheduler
from glovita.training.preload import preload_in_background
from glovita.training.progress import print_line, print_summary, set_quiet
from glovita.training.resolve import (
    ResolvedVolumeAugmentation,
    balanced_sample_weights,
    encoder_name,
    resolve_augmentation,
    resolve_class_weight,
    resolve_dataloading,
    resolve_group,
    resolve_pos_weight,
    resolve_run,
)


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    test_metrics: dict[str, float]
    best_epoch: int | None


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


def check_feature_inputs(cfg: RootConfig, splits: DatasetSplits) -> None:
    """Feature files must fit the head (bags for MIL heads, instances otherwise) and the encoder's feature_dim."""
    head = cfg.model.head.head_type
    if (head in BAG_HEADS) != (splits.kind == "bags"):
        wanted = (
            "a bag file (bag_ptr / bag_lengths, or features of shape (B, N, D))"
            if head in BAG_HEADS
            else ("an instance file (features (N, D)), or --model.head.head_type clam or abmil for bags")
        )
        raise ValueError(f"model.head.head_type={head!r} cannot train on {splits.description}. Use {wanted}.")
    feature_dim = cfg.model.encoder.feature_dim
    if feature_dim != splits.feature_dim:
        raise ValueError(
            f"model.encoder.feature_dim={feature_dim} but {splits.description} has dim {splits.feature_dim}. "
            f"Set --model.encoder.feature_dim {splits.feature_dim}."
        )


def run_training(cfg: RootConfig, argv: list[str] | None = None, dist: DistContext | None = None) -> RunResult:
    """Train, validate every epoch, evaluate best.pt on the test split; everything lands in the run directory.

    Under torchrun every process calls this; `dist` says which one this is (joined here when not given)."""
    preload = preload_in_background()
    dist = dist if dist is not None else init_distributed(cfg.training.device)
    set_quiet(not dist.is_main)
    try:
        return _run_training(cfg, argv, preload, dist)
    finally:
        preload.join()


def _build_splits(cfg: RootConfig, dist: DistContext) -> DatasetSplits:
    """Rank 0 first (a dataset may write files on first use, e.g. digits), then the others."""
    splits = build_datasets(cfg.data, getattr(cfg.model.encoder, "input_channels", 3)) if dist.is_main else None
    barrier(dist)
    if splits is None:
        splits = build_datasets(cfg.data, getattr(cfg.model.encoder, "input_channels", 3))
    return splits


def _previous_logger_run(run_dir: Path) -> str | None:
    """The tracking backend's run id of an earlier attempt of this run (runtime_info.json), for resume."""
    try:
        return json.loads((run_dir / "runtime_info.json").read_text()).get("logger_run_id")
    except (OSError, ValueError):
        return None


def _run_training(cfg: RootConfig, argv: list[str] | None, preload: threading.Thread, dist: DistContext) -> RunResult:
    started = datetime.now()
    wall_start = time.perf_counter()
    group = cfg.group or broadcast(dist, resolve_group(cfg, cfg.experiments_dir, started) if dist.is_main else None)
    resolved = resolve_run(cfg, started, group, dist.local_rank if dist.enabled else None, dist.world_size)
    device = torch.device(resolved.device)
    run_dir = resolved.run_dir
    rundir.prepare_run_dir(run_dir, cfg, cfg.training.resume)
    barrier(dist)  # every rank has checked the folder before rank 0 writes into it
    seed_everything(cfg.training.seed, cfg.training.deterministic)

    splits = _build_splits(cfg, dist)
    if len(splits.val) == 0:
        raise ValueError(
            f"The validation split of {cfg.data.dataset} under '{cfg.data.data_root_dir}' is empty. "
            "Add validation samples (or raise --data.val_fraction)."
        )
    resolved.class_names = splits.class_names
    if splits.kind in ("instances", "bags"):
        check_feature_inputs(cfg, splits)
    multilabel = cfg.data.subtask == "multilabel"
    if cfg.task.multilabel_pos_weight:
        resolved.pos_weight = resolve_pos_weight(splits.train_targets, cfg.data.num_classes)
    if cfg.task.class_weighted_loss:
        resolved.class_weight = resolve_class_weight(splits.train_targets, cfg.data.num_classes)
    model = build_model(
        cfg.model,
        cfg.peft,
        cfg.data.num_classes,
        cfg.task.label_smoothing,
        multilabel,
        resolved.pos_weight or resolved.class_weight,
    )
    encoder = model.encoder
    resolved.encoder_out_dim = encoder.out_dim
    loading = resolve_dataloading(cfg.dataloading, device)
    resolved.dataloading = loading
    loader_args = dict(
        num_workers=loading.num_workers,
        pin_memory=loading.pin_memory,
        persistent_workers=loading.persistent_workers,
        prefetch_factor=loading.prefetch_factor,
        collate=splits.collate,
    )
    if splits.kind == "volumes":
        from glovita.augmentation.policies.shared_3d import build_3d_policy

        size = tuple(cfg.data.volume_size)
        resolved.augmentation = ResolvedVolumeAugmentation(
            cfg.data.augmentation.train_policy, cfg.data.augmentation.test_policy, size
        )
        train_3d = build_3d_policy(cfg.data.augmentation.train_policy, size)
        test_3d = build_3d_policy(cfg.data.augmentation.test_policy, size)
        train_set: Dataset = TransformedDataset(splits.train, train_3d, seed_numpy=True)

        def prepare(dataset: Dataset) -> Dataset:
            return TransformedDataset(dataset, test_3d)

    elif splits.kind == "images":
        resolved.encoder_preprocessing = asdict(encoder.preprocessing)
        aug = resolve_augmentation(cfg.data.augmentation, encoder.preprocessing, cfg.model.encoder.input_channels)
        resolved.augmentation = aug
        train_tf, test_tf = build_policy_transforms(aug.train_policy, aug.test_policy, aug.params)
        train_set = TransformedDataset(splits.train, train_tf)

        def prepare(dataset: Dataset) -> Dataset:
            return TransformedDataset(dataset, test_tf)

    else:
        train_set = splits.train

        def prepare(dataset: Dataset) -> Dataset:
            return dataset

    weights = (
        balanced_sample_weights(splits.train_targets, cfg.data.num_classes)
        if cfg.task.class_balanced_sampling
        else None
    )
    shard = {"rank": dist.rank, "world_size": dist.world_size, "weights": weights}
    if splits.kind == "instances":
        sampler: Sampler = SeededBatchSampler(
            len(splits.train), loading.batch_size, cfg.training.seed, shuffle=True, drop_last=loading.drop_last, **shard
        )
    else:
        sampler = SeededSampler(
            len(splits.train), cfg.training.seed, shuffle=True, with_seeds=splits.kind in ("images", "volumes"), **shard
        )
    train_loader = make_loader(train_set, loading.batch_size, sampler, drop_last=loading.drop_last, **loader_args)
    if len(train_loader) == 0:
        raise ValueError(
            f"The training split has {len(splits.train)} samples, fewer than dataloading.batch_size="
            f"{loading.batch_size} with drop_last. Lower --dataloading.batch_size or pass --dataloading.no_drop_last."
        )

    def eval_loader(dataset: Dataset):
        shard_sampler = ShardSampler(len(dataset), dist.rank, dist.world_size) if dist.enabled else None
        return make_loader(prepare(dataset), loading.eval_batch_size, shard_sampler, drop_last=False, **loader_args)

    val_loader = eval_loader(splits.val)
    test_loader = eval_loader(splits.test) if splits.test is not None else None
    resolved.dataset_sizes = {
        "train": len(splits.train),
        "val": len(splits.val),
        "test": len(splits.test) if splits.test is not None else 0,
    }

    model.to(device)
    if cfg.training.channels_last and splits.kind == "images":  # 2D convolutions only
        model.to(memory_format=torch.channels_last)
    if dist.enabled and cfg.training.sync_batchnorm:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ema = None
    if cfg.training.ema_decay is not None:
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(cfg.training.ema_decay), use_buffers=True)
    fused = fused_optimizer_available(device, cfg.optimizer.name)
    optimizer = build_optimizer(cfg.optimizer, model, fused)
    accumulate = cfg.training.accumulate_grad_batches
    optimizer_steps = -(-len(train_loader) // accumulate)
    scheduler = build_scheduler(cfg.optimizer, optimizer, optimizer_steps, cfg.training.epochs)
    resolved.steps_per_epoch = len(train_loader)
    resolved.optimizer_steps_per_epoch = optimizer_steps
    resolved.total_steps = optimizer_steps * cfg.training.epochs
    resolved.fused_optimizer = fused
    resolved.parameters = {
        "total": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    train_model: torch.nn.Module = model
    if dist.enabled:
        train_model = DistributedDataParallel(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=cfg.model.head.head_type in BAG_HEADS,
        )
    eval_model: torch.nn.Module = model
    if cfg.training.compile:
        train_model = torch.compile(train_model)
        eval_model = torch.compile(model)

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    info = rundir.runtime_info(argv or [], resolved.device, device_name, started)
    info["world_size"] = dist.world_size
    logger: ExperimentLogger = NoneLogger()
    if dist.is_main:
        rundir.write_config_files(run_dir, cfg, resolved.to_json())
        context = LoggerContext(
            experiment=resolved.logger["experiment"],
            group=group,
            run_name=resolved.logger["run_name"],
            run_dir=run_dir,
            experiments_dir=cfg.experiments_dir,
            resume_id=_previous_logger_run(run_dir) if cfg.training.resume else None,
        )
        logger = build_logger(cfg.logger, context)
        info["logger_run_id"] = logger.run_id
        rundir.write_runtime_info(run_dir, info)
        logger.log_config(cfg.model_dump(mode="json"), cfg.add_log)

    mixer = None
    if cfg.task.mixup_alpha > 0 or cfg.task.cutmix_alpha > 0:
        mixer = BatchMixer(cfg.data.num_classes, cfg.task.mixup_alpha, cfg.task.cutmix_alpha, cfg.task.mix_prob)
    options = TrainerOptions(
        precision=resolved.precision,
        gradient_clip_norm=cfg.training.gradient_clip_norm,
        channels_last=cfg.training.channels_last,
        accumulate_grad_batches=accumulate,
        early_stopping_patience=cfg.training.early_stopping_patience,
        best_metric=resolved.best_metric,
        best_mode=resolved.best_metric_mode,
    )
    checkpoints = None
    if dist.is_main:
        checkpoints = CheckpointWriter(
            run_dir / "checkpoints", cfg.training.checkpoint_every_n_epochs, cfg.training.max_epoch_checkpoints
        )
    trainer = Trainer(
        module=model,
        optimizer=optimizer,
        scheduler=scheduler,
        device=device,
        options=options,
        make_metrics=lambda: build_metrics(cfg.data.task, cfg.data.num_classes, device, cfg.data.subtask),
        checkpoints=checkpoints,
        logger=logger,
        on_epoch_end=(lambda record: rundir.append_metrics(run_dir, record)) if dist.is_main else (lambda _: None),
        mixer=mixer,
        model=train_model,
        eval_model=eval_model,
        ema=ema,
        dist=dist,
    )
    if cfg.training.resume:
        trainer.load_state_dict(load_checkpoint(run_dir / "checkpoints" / "last.pt"))
        if dist.is_main:
            rundir.truncate_metrics(run_dir, trainer.state.epoch)
        print_line(f"Resuming {run_dir} at epoch {trainer.state.epoch + 1}/{cfg.training.epochs}")
    trainable, total = resolved.parameters["trainable"], resolved.parameters["total"]
    processes = f", {dist.world_size} processes" if dist.enabled else ""
    print_line(
        f"Training {encoder_name(cfg)} on {cfg.data.dataset} ({resolved.dataset_sizes['train']} train / "
        f"{resolved.dataset_sizes['val']} val images, {trainable:,}/{total:,} trainable parameters) on "
        f"{device_name}{processes}"
    )

    # Loader workers are forked from here on; forking while another thread is inside an import is unsafe.
    preload.join()
    status = "failed"
    state = trainer.state
    try:
        state = trainer.fit(train_loader, val_loader, cfg.training.epochs)
        test_metrics: dict[str, float] = {}
        if test_loader is not None:
            test_metrics = _test(cfg, trainer, test_loader, run_dir, splits.class_names, logger, dist)
        else:
            print_line("No test split: test_metrics.json is not written.")
        if dist.is_main and getattr(cfg.peft, "save_merged", False):
            _save_merged(trainer, run_dir)
        status = "completed"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        wall = time.perf_counter() - wall_start
        if dist.is_main:
            info.update(
                status=status,
                finished_at=datetime.now().isoformat(timespec="seconds"),
                wall_seconds=wall,
                epochs_completed=state.epoch,
                stopped_early=state.stopped_early,
            )
            rundir.write_runtime_info(run_dir, info)
            logger.finish(status)
    if dist.is_main:
        print_summary(test_metrics, wall, run_dir)
    return RunResult(run_dir=run_dir, test_metrics=test_metrics, best_epoch=state.best_epoch)


def _save_merged(trainer: Trainer, run_dir: Path) -> None:
    """checkpoints/best_merged.pt: best.pt's weights with the LoRA/DoRA adapters folded into plain layers."""
    from glovita import __version__
    from glovita.models.peft.low_rank import merged_state_dict
    from glovita.training.io import save_torch

    trainer.module.load_state_dict(load_checkpoint(run_dir / "checkpoints" / "best.pt")["model"])
    path = run_dir / "checkpoints" / "best_merged.pt"
    merged = {"model": merged_state_dict(trainer.module), "glovita_version": __version__, "merged_from": "best.pt"}
    save_torch(merged, path)
    print_line(f"Merged adapters into plain weights: {path} (loads with --peft.method full_finetuning)")


def _test(
    cfg: RootConfig,
    trainer: Trainer,
    loader: DataLoader,
    run_dir: Path,
    class_names: list[str],
    logger: ExperimentLogger,
    dist: DistContext,
) -> dict[str, float]:
    """Evaluate best.pt (and its EMA weights) on the test split; rank 0 writes test_metrics.json and plots."""
    best = load_checkpoint(run_dir / "checkpoints" / "best.pt")
    trainer.module.load_state_dict(best["model"])
    result = trainer.evaluate(loader, "test")
    metrics = {"test_loss": result.loss, **{f"test_{k}": v for k, v in result.metrics.items()}}
    if trainer.ema is not None:
        load_ema(trainer.ema, best)
        ema_result = trainer.evaluate(loader, "test EMA", trainer.ema.module)
        metrics.update(
            {"test_ema_loss": ema_result.loss, **{f"test_ema_{k}": v for k, v in ema_result.metrics.items()}}
        )
    if not dist.is_main:
        return metrics
    save_json(metrics, run_dir / "test_metrics.json")
    logger.log_metrics(metrics, step=trainer.state.epoch)
    title = f"{cfg.data.dataset} test, best.pt = epoch_{best['best']['epoch']:04d}"
    if result.confusion is not None and cfg.task.plot_confusion_matrix:
        from glovita.metrics.plots import save_confusion_matrix

        plot = run_dir / "confusion_matrix.png"
        save_confusion_matrix(result.confusion.numpy(), class_names, plot, title)
        logger.log_artifact(plot)
    if result.reliability is not None and cfg.task.plot_reliability_diagram:
        from glovita.metrics.plots import save_reliability_diagram

        plot = run_dir / "reliability_diagram.png"
        save_reliability_diagram(result.reliability, result.metrics["ece"], plot, title)
        logger.log_artifact(plot)
    return metrics
