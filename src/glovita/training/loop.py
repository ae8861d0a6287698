"""The training loop. It knows batches, a step (what one batch does) and metric sets, not datasets or tasks."""

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from glovita.logging.base import ExperimentLogger
from glovita.models.composite import GlovitaModel
from glovita.runtime.batch import Batch
from glovita.runtime.forward import autocast, forward_loop
from glovita.runtime.progress import print_line, progress_bar
from glovita.tasks.heads import HeadsMetrics
from glovita.training.checkpoints import CheckpointWriter, capture_rng_state, restore_rng_state
from glovita.training.distributed import DistContext, all_reduce_sum, barrier
from glovita.training.steps.base import MODEL_OPTIMIZER, Step, StepContext, StepOutput

_AGREE_EVERY = 10
"""Under torchrun: optimizer steps between the all-reduces that agree on a stop signal or a timed checkpoint."""


@dataclass
class TrainState:
    """What survives an epoch boundary and a resume."""

    epoch: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    stopped_early: bool = False


@dataclass(frozen=True)
class EvalResult:
    loss: float
    metrics: dict[str, float]
    """The task's metrics and the step's evaluation logs (sample-weighted means), without split prefix."""
    metric_set: HeadsMetrics
    """The computed metric sets of every head: they write the test pass's curves and plots (save_test_outputs)."""


@dataclass(frozen=True)
class TrainerOptions:
    """Loop behaviour taken from the config (training.*), resolved once in run.py."""

    precision: str = "32"
    gradient_clip_norm: float | None = None
    memory_format: torch.memory_format | None = None
    """Of 4-D inputs (the modality's choice: channels_last for 2D images); None keeps the default layout."""
    accumulate_grad_batches: int = 1
    early_stopping_patience: int | None = None
    best_metric: str = "val_loss"
    best_mode: str = "min"
    full_batch: bool = False
    """The optimizer is L-BFGS: each epoch is one solve on the whole training split (see _full_batch_epoch)."""
    batches_per_epoch: int | None = None
    """Training batches per epoch (Step.epoch_length); None: one pass over the training loader."""
    checkpoint_every_n_steps: int | None = None
    """Also write last.pt every N optimizer steps inside an epoch (training.checkpoint_every_n_steps)."""
    checkpoint_every_seconds: float | None = None
    """Also write last.pt inside an epoch once this long has passed since the last checkpoint."""


class Trainer:
    """Runs epochs, evaluates, writes checkpoints; `step` decides what each batch does.

    `module` is the GloViTa model; `model` is what the training step calls (the module itself, its DDP wrapper
    and/or its torch.compile'd form). `ema` is an AveragedModel of `module`, validated beside it.
    """

    def __init__(
        self,
        module: GlovitaModel,
        step: Step,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        device: torch.device,
        options: TrainerOptions,
        make_metrics: Callable[[], HeadsMetrics],
        checkpoints: CheckpointWriter | None,
        logger: ExperimentLogger,
        on_epoch_end: Callable[[dict[str, Any]], str | None],
        model: nn.Module | None = None,
        eval_model: nn.Module | None = None,
        ema: torch.optim.swa_utils.AveragedModel | None = None,
        dist: DistContext | None = None,
        should_stop: Callable[[dict[str, Any]], str | None] | None = None,
        on_first_step: Callable[[], None] | None = None,
        stop_signal: Callable[[], str | None] | None = None,
    ) -> None:
        self.module = module
        self.stop_signal = stop_signal
        """The stop signal received so far (SIGTERM / SIGUSR1: training/preemption.py), None before any; asked at
        every safe point, where the run checkpoints and raises TrainingPreempted."""
        self._progress: dict[str, Any] | None = None
        """Where a checkpoint written inside an epoch left off (set by load_state_dict, used by train_epoch)."""
        self._last_checkpoint = time.monotonic()
        self.on_first_step = on_first_step
        """Called once, after this process's first optimizer step (the start-up timeline ends there)."""
        self.step = step
        self.model = model if model is not None else module
        self.eval_model = eval_model if eval_model is not None else module
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.device = device
        self.options = options
        self.scaler = torch.amp.GradScaler(device.type, enabled=options.precision == "16-mixed")
        self.memory_format = options.memory_format
        self.make_metrics = make_metrics
        self.checkpoints = checkpoints
        self.best_metric = options.best_metric
        self.logger = logger
        self.on_epoch_end = on_epoch_end
        self.should_stop = should_stop
        """Asked after every epoch with its record (e.g. a sweep's pruner); a reason stops training there."""
        self.ema = ema
        self.dist = dist or DistContext()
        self.state = TrainState()
        self.extra_optimizers = step.extra_optimizers()
        """Optimizers of the step's own modules, stepped together with the model's (automatic optimization)."""
        if MODEL_OPTIMIZER in self.extra_optimizers:
            raise ValueError(f"A step's optimizer may not be named {MODEL_OPTIMIZER!r} (the model's own).")
        self.step_modules = {name: module.to(device) for name, module in step.modules().items()}
        """The step's own modules (checkpointed with the model); `context.modules` holds their DDP wrappers."""
        self.extra_loaders = step.extra_loaders()
        self._extra_passes: dict[str, tuple[int, Any, int]] = {}
        """Per extra loader: (passes started, its current iterator, batches drawn from this pass)."""
        if step.manual_optimization and (options.accumulate_grad_batches > 1 or options.full_batch):
            raise ValueError(
                "This training step runs its own optimizer steps (manual optimization); it cannot accumulate "
                "gradients or use L-BFGS. Set --training.accumulate_grad_batches 1 and another --optimizer.name."
            )
        self.context = StepContext(
            module,
            self._autocast,
            ema.module if ema is not None else None,
            modules={name: self._wrap(module) for name, module in self.step_modules.items()},
            backward=lambda loss: self.scaler.scale(loss).backward(),
            optimizer_step=self._manual_optimizer_step,
            draw=self._draw,
        )

    def _wrap(self, module: nn.Module) -> nn.Module:
        """A step's module as the step calls it: DDP-wrapped under torchrun when it has trainable parameters."""
        if not self.dist.enabled or not any(p.requires_grad for p in module.parameters()):
            return module
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids)

    def _draw(self, name: str) -> Batch:
        """The next batch of the step's extra loader `name`; an exhausted loader starts its next (re-seeded) pass.
        A resumed run continues each extra loader where its checkpoint left it (extra_loader_positions)."""
        if name not in self.extra_loaders:
            raise KeyError(
                f"The step draws from loader {name!r}; its extra_loaders() gives {sorted(self.extra_loaders)}."
            )
        loader = self.extra_loaders[name]
        passes, batches, drawn = self._extra_passes.get(name, (0, None, 0))
        batch = next(batches, None) if batches is not None else None
        if batch is None and batches is None and drawn > 0:  # restored position: the same pass, after `drawn`
            _set_epoch(loader, passes - 1)
            _skip_batches(loader, drawn)
            batches = iter(loader)
            batch = next(batches, None)
        if batch is None:
            _set_epoch(loader, passes)
            batches = iter(loader)
            passes, drawn = passes + 1, 0
            batch = next(batches)
        self._extra_passes[name] = (passes, batches, drawn + 1)
        return batch.to(self.device, self.memory_format)

    def _manual_optimizer_step(self, name: str) -> None:
        """Clip, step and zero one optimizer (the model's or one of the step's) and advance its schedule."""
        if name == MODEL_OPTIMIZER:
            optimizer, scheduler = self.optimizer, self.scheduler
        elif name in self.extra_optimizers:
            optimizer, scheduler = self.extra_optimizers[name]  # type: ignore[assignment]
        else:
            raise KeyError(
                f"No optimizer {name!r}: the model's is {MODEL_OPTIMIZER!r}, the step's are "
                f"{sorted(self.extra_optimizers)}."
            )
        if name == MODEL_OPTIMIZER:
            self._clip(optimizer, self.module.parameters())
        else:
            self._clip(optimizer)
        self.scaler.step(optimizer)
        self.scaler.update()
        optimizer.zero_grad(set_to_none=True)
        if scheduler is not None:
            scheduler.step()
        if name == MODEL_OPTIMIZER and self.ema is not None:
            self.ema.update_parameters(self.module)

    def _autocast(self) -> AbstractContextManager[Any]:
        return autocast(self.options.precision, self.device)

    def state_dict(self, progress: dict[str, Any] | None = None) -> dict[str, Any]:
        """The whole training state; `progress` (a checkpoint inside an epoch) says where in the epoch it is."""
        state: dict[str, Any] = {
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "best": {"key": self.best_metric, "value": self.state.best_value, "epoch": self.state.best_epoch},
            "rng": capture_rng_state(),
            "step": self.step.state_dict(),
        }
        if self.step_modules:
            state["step_modules"] = {name: module.state_dict() for name, module in self.step_modules.items()}
        if self.extra_optimizers:
            state["extra_optimizers"] = {
                name: {"optimizer": opt.state_dict(), "scheduler": sched.state_dict() if sched is not None else None}
                for name, (opt, sched) in self.extra_optimizers.items()
            }
        if self.ema is not None:
            state["ema"] = self.ema.module.state_dict()
            state["ema_updates"] = int(self.ema.n_averaged)
        if self._extra_passes:
            state["extra_loader_positions"] = {name: [p, d] for name, (p, _, d) in self._extra_passes.items()}
        if progress is not None:
            state["epoch_progress"] = progress
        return state

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None:
        """Restore a last.pt written by `state_dict` + CheckpointWriter; training continues after its epoch."""
        self.module.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        if self.ema is not None:
            load_ema(self.ema, checkpoint)
        restore_rng_state(checkpoint["rng"])
        self.step.load_state_dict(checkpoint.get("step", {}))
        modules = checkpoint.get("step_modules", {})
        for name, module in self.step_modules.items():
            if name not in modules:
                raise ValueError(f"The checkpoint holds no weights of the step's module {name!r}.")
            module.load_state_dict(modules[name])
        saved = checkpoint.get("extra_optimizers", {})
        for name, (optimizer, scheduler) in self.extra_optimizers.items():
            if name not in saved:
                raise ValueError(f"The checkpoint holds no state of the step's optimizer {name!r}.")
            optimizer.load_state_dict(saved[name]["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(saved[name]["scheduler"])
        self._extra_passes = {
            name: (int(passes), None, int(drawn))
            for name, (passes, drawn) in checkpoint.get("extra_loader_positions", {}).items()
        }
        best = checkpoint["best"]
        self._progress = checkpoint.get("epoch_progress")
        epoch = checkpoint["epoch"] + (0 if self._progress is not None else 1)  # inside an epoch: that epoch again
        self.state = TrainState(epoch=epoch, best_value=best["value"], best_epoch=best["epoch"])

    def _backward(self, batch: Batch, scale: float, sync: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The step's forward and the backward of one batch; DDP all-reduces gradients only when `sync`. Returns
        the loss and the step's logged values, detached."""
        no_sync = getattr(self.model, "no_sync", None)
        with nullcontext() if sync or no_sync is None else no_sync():
            out = self.step.train_step(self.model, batch, self.context)
            loss = out.loss
            total = loss + sum(out.extra_losses.values()) if out.extra_losses else loss
            self.scaler.scale(total * scale if scale != 1.0 else total).backward()
        return loss.detach(), {key: value.detach() for key, value in out.logs.items()}

    def _optimizer_step(self) -> None:
        """Clip, step and zero the model's optimizer and the step's own ones; one scaler update for all."""
        optimizers = [self.optimizer, *(opt for opt, _ in self.extra_optimizers.values())]
        self._clip(self.optimizer, self.module.parameters())
        for optimizer, _ in self.extra_optimizers.values():  # each set of modules clipped on its own
            self._clip(optimizer)
        for optimizer in optimizers:
            self.scaler.step(optimizer)
        self.scaler.update()
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        for _, scheduler in self.extra_optimizers.values():
            if scheduler is not None:
                scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.module)

    def _clip(self, optimizer: torch.optim.Optimizer, parameters: Any = None) -> None:
        """Unscale (16-mixed) and clip the gradients of `optimizer`'s parameters (or `parameters`) to
        training.gradient_clip_norm; nothing without a norm."""
        clip = self.options.gradient_clip_norm
        if clip is None:
            return
        self.scaler.unscale_(optimizer)
        params = parameters if parameters is not None else [p for g in optimizer.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, clip)

    def _lbfgs_counts(self) -> tuple[int, int]:
        """L-BFGS's running counts of iterations and loss evaluations (0, 0 before its first step)."""
        state = self.optimizer.state.get(self.optimizer.param_groups[0]["params"][0], {})
        return int(state.get("n_iter", 0)), int(state.get("func_evals", 0))

    def _full_batch_epoch(self, loader: DataLoader, epoch: int, epochs: int) -> dict[str, Any]:
        """One L-BFGS solve (up to max_iter iterations) of the mean loss over every training batch plus
        weight_decay / 2 x ||W||^2 on the weights (ndim > 1); the batches are read once and kept on the device.
        `converged` is True when the solver stopped on its tolerances before max_iter."""
        self.model.train()
        start = time.perf_counter()
        batches = [batch.to(self.device, self.memory_format) for batch in loader]
        data_seconds = time.perf_counter() - start
        total = sum(len(batch) for batch in batches)
        group = self.optimizer.param_groups[0]
        weights = [p for p in group["params"] if p.ndim > 1]
        l2 = float(group.get("weight_decay", 0.0))

        def objective() -> torch.Tensor:
            self.optimizer.zero_grad(set_to_none=True)
            value = torch.zeros((), device=self.device)
            for batch in batches:
                loss = self.step.train_step(self.model, batch, self.context).loss * (len(batch) / total)
                loss.backward()
                value += loss.detach()
            if l2 > 0 and weights:
                penalty = 0.5 * l2 * sum((p * p).sum() for p in weights)
                penalty.backward()  # type: ignore[union-attr]
                value += penalty.detach()  # type: ignore[union-attr]
            return value

        before = self._lbfgs_counts()
        with progress_bar(f"epoch {epoch + 1}/{epochs} L-BFGS evaluations", group["max_eval"]) as bar:

            def shown() -> torch.Tensor:
                value = objective()
                if bar.active:
                    bar.update(1, f"objective {float(value):.5f}")
                return value

            self.optimizer.step(shown)  # type: ignore[arg-type]
        after = self._lbfgs_counts()
        iterations, evaluations = after[0] - before[0], after[1] - before[1]
        with torch.no_grad():
            outputs = [self.step.train_step(self.model, batch, self.context) for batch in batches]
        loss_sum = sum(float(out.loss) * len(batch) for out, batch in zip(outputs, batches, strict=True))
        train_loss = loss_sum / max(total, 1)
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"Training loss became {train_loss} in epoch {epoch}. Standardise the features "
                "(--data.standardize_features) or raise --optimizer.weight_decay."
            )
        seconds = time.perf_counter() - start
        return {
            "train_loss": train_loss,
            "train_seconds": seconds,
            "train_data_seconds": data_seconds,
            "train_samples_per_second": total * max(evaluations, 1) / seconds,
            "logs": {"train_lbfgs_iterations": float(iterations), "train_lbfgs_evaluations": float(evaluations)},
            "converged": iterations < group["max_iter"] and evaluations < group["max_eval"],
        }

    def train_epoch(self, loader: DataLoader, epoch: int, epochs: int) -> dict[str, Any]:
        if self.options.full_batch:
            return self._full_batch_epoch(loader, epoch, epochs)
        self.model.train()
        for module in self.step_modules.values():
            module.train()
        _set_epoch(loader, epoch)
        accumulate = self.options.accumulate_grad_batches
        steps = self.options.batches_per_epoch or len(loader)
        per_pass = len(loader)
        passes = 1
        loss_sum = torch.zeros((), device=self.device)
        seen = torch.zeros((), device=self.device)
        log_sums: dict[str, torch.Tensor] = {}
        first = 0
        progress, self._progress = self._progress, None
        if progress is not None and progress["epoch"] == epoch:  # resumed inside this epoch: skip what it consumed
            first = int(progress["step"])
            passes = first // per_pass + 1
            if passes > 1:
                _set_epoch(loader, epoch + (passes - 1) * epochs)
            _skip_batches(loader, first % per_pass)
            loss_sum += progress["loss_sum"].to(self.device)
            seen += progress["seen"].to(self.device)
            log_sums = {key: value.to(self.device) for key, value in progress["log_sums"].items()}
        seen_before = float(seen) if first else 0.0
        start = time.perf_counter()
        shown = first
        data_seconds = 0.0
        for optimizer in [self.optimizer, *(opt for opt, _ in self.extra_optimizers.values())]:
            optimizer.zero_grad(set_to_none=True)
        with progress_bar(f"epoch {epoch + 1}/{epochs}", steps, initial=first) as bar:
            batches = iter(loader)
            for step in range(first, steps):
                waited = time.perf_counter()
                batch: Batch | None = next(batches, None)
                if batch is None:  # the step's epoch is longer than the loader: its next pass, ordered anew
                    _set_epoch(loader, epoch + passes * epochs)
                    passes += 1
                    batches = iter(loader)
                    batch = next(batches)
                data_seconds += time.perf_counter() - waited
                batch = batch.to(self.device, self.memory_format)
                group_start = step - step % accumulate
                group_size = min(accumulate, steps - group_start)
                last_of_group = step - group_start + 1 == group_size
                if self.step.manual_optimization:
                    out = self.step.train_step(self.model, batch, self.context)
                    loss, logs = out.loss.detach(), {key: value.detach() for key, value in out.logs.items()}
                else:
                    loss, logs = self._backward(batch, 1.0 / group_size, sync=last_of_group)
                if last_of_group and not self.step.manual_optimization:
                    self._optimizer_step()
                loss_sum += loss * len(batch)
                seen += len(batch)
                for key, value in logs.items():  # summed on the device: no host sync per step
                    log_sums[key] = log_sums.get(key, torch.zeros((), device=self.device)) + value.float() * len(batch)
                if last_of_group:
                    if self.on_first_step is not None:
                        self.on_first_step()
                        self.on_first_step = None
                    if step + 1 < steps:
                        self._safe_point(epoch, step + 1, (step + 1) // accumulate, loss_sum, seen, log_sums)
                if bar.due(last=step + 1 == steps):  # on time: reading the loss back waits for the device
                    rate = float(seen) / (time.perf_counter() - start)
                    bar.update(step + 1 - shown, f"loss {float(loss):.4f}  {rate:.0f} samples/s")
                    shown = step + 1
        seconds = time.perf_counter() - start
        local_seen = float(seen) - seen_before  # the samples this process trained on in this attempt
        names = sorted(log_sums)
        loss_sum, seen, *summed = all_reduce_sum(self.dist, loss_sum, seen, *(log_sums[k] for k in names))
        train_loss = float(loss_sum) / max(float(seen), 1.0)
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"Training loss became {train_loss} in epoch {epoch}. Lower --optimizer.lr, set "
                "--training.gradient_clip_norm, or use --training.precision 32."
            )
        return {
            "train_loss": train_loss,
            "train_seconds": seconds,
            "train_data_seconds": data_seconds,
            "train_samples_per_second": local_seen * self.dist.world_size / seconds,
            "logs": {f"train_{k}": float(v) / max(float(seen), 1.0) for k, v in zip(names, summed, strict=True)},
        }

    def _safe_point(
        self,
        epoch: int,
        step: int,
        optimizer_steps: int,
        loss_sum: torch.Tensor,
        seen: torch.Tensor,
        log_sums: dict[str, torch.Tensor],
    ) -> None:
        """After an optimizer step inside an epoch: write last.pt when one is due (every N steps or minutes) or a
        stop signal arrived, then stop for the signal (TrainingPreempted). Under torchrun the processes agree first
        (one small all-reduce every _AGREE_EVERY optimizer steps), so they checkpoint and stop at the same step."""
        every = self.options.checkpoint_every_n_steps
        due_by_count = every is not None and optimizer_steps % every == 0
        if self.dist.enabled and not due_by_count and optimizer_steps % _AGREE_EVERY:
            return
        interval = self.options.checkpoint_every_seconds
        due_by_time = interval is not None and time.monotonic() - self._last_checkpoint >= interval
        signal_name = self.stop_signal() if self.stop_signal is not None else None
        if self.dist.enabled:
            flags = torch.tensor([float(due_by_time), float(signal_name is not None)], device=self.device)
            torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
            due_by_time, stopping = bool(flags[0]), bool(flags[1])
            signal_name = signal_name or ("a stop signal (on another process)" if stopping else None)
        if not (due_by_count or due_by_time or signal_name):
            return
        totals = all_reduce_sum(
            self.dist, loss_sum.clone(), seen.clone(), *(log_sums[k].clone() for k in sorted(log_sums))
        )
        keep = self.dist.is_main  # the sums of every process, held by rank 0 (the others resume from zero)
        progress = {
            "epoch": epoch,
            "step": step,
            "loss_sum": totals[0] if keep else torch.zeros_like(totals[0]),
            "seen": totals[1] if keep else torch.zeros_like(totals[1]),
            "log_sums": {
                k: v if keep else torch.zeros_like(v) for k, v in zip(sorted(log_sums), totals[2:], strict=True)
            },
        }
        if self.checkpoints is not None:
            self.checkpoints.save(self.state_dict(progress), epoch, is_best=False)
        self._last_checkpoint = time.monotonic()
        if signal_name:
            self._stop_for(signal_name, epoch, step)

    def _stop_for(self, signal_name: str, epoch: int, step: int | None) -> None:
        """The checkpoint of this safe point is on disk on every process's view: stop (TrainingPreempted)."""
        from glovita.training.preemption import TrainingPreempted

        if self.checkpoints is not None:
            self.checkpoints.join()
        barrier(self.dist)
        raise TrainingPreempted(signal_name, epoch, step)

    def evaluate(
        self, loader: DataLoader, description: str, model: nn.Module | None = None, curves: bool = False
    ) -> EvalResult:
        """Loss and metrics of the step's evaluation over `loader` (every rank's shard under torchrun, reduced
        across ranks); `curves` also accumulates ROC curves where the task has them (the test pass)."""
        model = model if model is not None else self.eval_model
        model.eval()
        for module in self.step_modules.values():
            module.eval()
        metrics = self.make_metrics()
        if curves:
            metrics.track_curves()
        loss_sum = torch.zeros((), device=self.device)
        seen = torch.zeros((), device=self.device)
        log_sums: dict[str, torch.Tensor] = {}
        log_counts: dict[str, float] = {}
        begin = getattr(self.step, "begin_evaluation", None)
        if begin is not None:
            begin(description, self.state.epoch)

        def forward(batch: Batch) -> StepOutput:
            return self.step.eval_step(model, batch, self.context)

        grad = self.step.eval_needs_grad
        for batch, out in forward_loop(loader, forward, self.device, self.memory_format, description, grad):
            loss_sum += out.loss.detach() * len(batch)
            seen += len(batch)
            logits = self.module.logits_by_head(out.outputs)
            metrics.update({name: value.detach() for name, value in logits.items()}, batch)
            for key, value in out.logs.items():  # summed on the device, like the training logs
                count = out.log_counts.get(key, len(batch))
                weighted = value.detach().float() * count
                log_sums[key] = log_sums.get(key, torch.zeros((), device=self.device)) + weighted
                log_counts[key] = log_counts.get(key, 0.0) + count
        names = sorted(log_sums)
        counts = [torch.tensor(log_counts[k], device=self.device) for k in names]
        loss_sum, seen, *reduced = all_reduce_sum(self.dist, loss_sum, seen, *(log_sums[k] for k in names), *counts)
        summed, counted = reduced[: len(names)], reduced[len(names) :]
        values = metrics.compute()
        total = max(float(seen), 1.0)
        for key, value, count in zip(names, summed, counted, strict=True):
            values[key] = float(value) / float(count) if float(count) > 0 else float("nan")
        return EvalResult(float(loss_sum) / total, values, metrics)

    def _learning_rates(self) -> dict[str, float]:
        """`lr` of the head (and `lr_encoder` when the encoder has its own)."""
        rates = {
            group.get("name", "model").removesuffix("_no_decay"): group["lr"] for group in self.optimizer.param_groups
        }
        values = {"lr": rates.get("model", next(iter(rates.values())))}
        encoder = [rate for name, rate in rates.items() if name.startswith("encoder")]
        if encoder:
            values["lr_encoder"] = max(encoder)
        return values

    def _improved(self, value: float) -> bool:
        best = self.state.best_value
        if best is None or math.isnan(best):
            return not math.isnan(value)
        return value > best if self.options.best_mode == "max" else value < best

    def _stop_at_epoch_end(self, epoch: int, epochs: int) -> None:
        """A stop signal that arrived during the epoch's last steps or its validation: its checkpoint is written."""
        if epoch + 1 >= epochs or self.stop_signal is None:
            return
        signal_name = self.stop_signal()
        if self.dist.enabled:
            flag = torch.tensor([float(signal_name is not None)], device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            signal_name = signal_name or ("a stop signal (on another process)" if bool(flag[0]) else None)
        if signal_name:
            self._stop_for(signal_name, epoch, None)

    def fit(self, train_loader: DataLoader, val_loader: DataLoader, epochs: int) -> TrainState:
        """Train from self.state.epoch to `epochs` (or until early stopping); after each epoch validate,
        checkpoint (rank 0) and log."""
        patience = self.options.early_stopping_patience
        for epoch in range(self.state.epoch, epochs):
            train = self.train_epoch(train_loader, epoch, epochs)
            validation_start = time.perf_counter()
            val = self.evaluate(val_loader, "validate")
            record: dict[str, Any] = {
                "epoch": epoch,
                "train_loss": train["train_loss"],
                **train["logs"],
                "val_loss": val.loss,
                **{f"val_{k}": v for k, v in val.metrics.items()},
            }
            if self.ema is not None:
                ema_val = self.evaluate(val_loader, "validate EMA", self.ema.module)
                record["val_ema_loss"] = ema_val.loss
                record.update({f"val_ema_{k}": v for k, v in ema_val.metrics.items()})
            record.update(
                {
                    **self._learning_rates(),
                    "epoch_seconds": train["train_seconds"],
                    "train_data_seconds": train["train_data_seconds"],
                    "train_samples_per_second": train["train_samples_per_second"],
                    "val_seconds": time.perf_counter() - validation_start,
                }
            )
            if self.device.type == "cuda":  # the most this process's tensors held on the GPU so far
                record["cuda_peak_memory_gb"] = torch.cuda.max_memory_allocated(self.device) / 2**30
            value = record[self.best_metric]
            is_best = self._improved(value)
            if is_best:
                self.state.best_value, self.state.best_epoch = value, epoch
            self.state.epoch = epoch
            if self.checkpoints is not None:
                self.checkpoints.save(self.state_dict(), epoch, is_best)
            self._last_checkpoint = time.monotonic()
            self.state.epoch = epoch + 1
            note = self.on_epoch_end(record)
            self.logger.log_metrics(record, step=epoch)
            marker = " *" if is_best else ""
            print_line(
                f"epoch {epoch + 1}/{epochs}  train_loss {record['train_loss']:.4f}  val_loss {val.loss:.4f}"
                f"{marker if self.best_metric == 'val_loss' else f'  {self.best_metric} {value:.4f}{marker}'}  "
                f"{train['train_samples_per_second']:.0f} samples/s{f'  {note}' if note else ''}"
            )
            self._stop_at_epoch_end(epoch, epochs)
            if train.get("converged") and epoch + 1 < epochs:
                self.state.stopped_early = True
                print_line(
                    f"L-BFGS converged in epoch {epoch + 1} ({train['logs']['train_lbfgs_iterations']:.0f} "
                    "iterations within its tolerances); training stops here."
                )
                break
            best_epoch = self.state.best_epoch if self.state.best_epoch is not None else -1
            if patience is not None and epoch - best_epoch >= patience and epoch + 1 < epochs:
                self.state.stopped_early = True
                print_line(
                    f"Early stopping after epoch {epoch + 1}: {self.best_metric} has not improved for "
                    f"{epoch - best_epoch} epochs (best {self.state.best_value} at epoch {best_epoch + 1})."
                )
                break
            reason = self.should_stop(record) if self.should_stop is not None else None
            if reason and epoch + 1 < epochs:
                self.state.stopped_early = True
                print_line(f"Stopped after epoch {epoch + 1}: {reason}.")
                break
        if self.checkpoints is not None:
            self.checkpoints.join()  # the last background write is on disk (or its error raised) before the test
        barrier(self.dist)  # rank 0's checkpoints are complete before any rank reads best.pt
        return self.state


def _set_epoch(loader: DataLoader, epoch: int) -> None:
    """The seeded samplers' epoch (their order is a function of seed and epoch)."""
    for sampler in (loader.sampler, loader.batch_sampler):
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)  # type: ignore[union-attr]


def _skip_batches(loader: DataLoader, batches: int) -> None:
    """Leave the first `batches` batches of the loader's current pass out (resuming inside an epoch)."""
    if batches == 0:
        return
    for sampler in (loader.batch_sampler, loader.sampler):
        if hasattr(sampler, "skip_batches"):
            sampler.skip_batches(batches, loader.batch_size or 1)  # type: ignore[union-attr]
            return
    raise ValueError(
        "This training loader cannot start inside an epoch (its sampler is not a GloViTa seeded sampler), so the "
        "checkpoint written inside an epoch cannot be continued exactly. Resume from an epoch checkpoint."
    )


def load_ema(ema: torch.optim.swa_utils.AveragedModel, checkpoint: dict[str, Any]) -> None:
    """Put a checkpoint's EMA weights into `ema` (refusing a checkpoint written without EMA)."""
    if "ema" not in checkpoint:
        raise ValueError(
            "This checkpoint holds no EMA weights (its run did not set training.ema_decay). Leave EMA off to use it."
        )
    ema.module.load_state_dict(checkpoint["ema"])
    ema.n_averaged.fill_(checkpoint.get("ema_updates", 1))
