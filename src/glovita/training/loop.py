"""The training loop. It knows tasks through the head (loss, predictions) and metric sets, not datasets."""

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from glovita.logging.base import ExperimentLogger
from glovita.training.checkpoints import CheckpointWriter, capture_rng_state, restore_rng_state
from glovita.training.mixing import BatchMixer
from glovita.training.progress import print_line, progress_bar

_PRECISION_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}
_DISPLAY_EVERY = 10
"""Steps between progress-bar refreshes (each reads the loss back from the device)."""


@dataclass
class TrainState:
    """What survives an epoch boundary and a resume."""

    epoch: int = 0
    best_value: float | None = None
    best_epoch: int | None = None


@dataclass(frozen=True)
class EvalResult:
    loss: float
    metrics: dict[str, float]
    confusion: torch.Tensor | None


class Trainer:
    """Runs epochs, evaluates, writes checkpoints. `model` may be a DDP wrapper of `module`."""

    def __init__(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        device: torch.device,
        precision: str,
        gradient_clip_norm: float | None,
        channels_last: bool,
        mixer: BatchMixer | None,
        make_metrics: Callable[[], Any],
        checkpoints: CheckpointWriter,
        best_metric: str,
        best_mode: str,
        logger: ExperimentLogger,
        on_epoch_end: Callable[[dict[str, Any]], None],
    ) -> None:
        self.module = module
        self.model = module
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.device = device
        self.autocast_dtype = _PRECISION_DTYPES.get(precision)
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "16-mixed")
        self.gradient_clip_norm = gradient_clip_norm
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.mixer = mixer
        self.make_metrics = make_metrics
        self.checkpoints = checkpoints
        self.best_metric = best_metric
        self.best_mode = best_mode
        self.logger = logger
        self.on_epoch_end = on_epoch_end
        self.state = TrainState()

    def _autocast(self):
        if self.autocast_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def _to_device(self, inputs, targets: torch.Tensor):
        """Move a batch; inputs are images/features (a tensor) or bags ({features, mask})."""
        non_blocking = self.device.type == "cuda"
        if isinstance(inputs, dict):
            inputs = {key: value.to(self.device, non_blocking=non_blocking) for key, value in inputs.items()}
        else:
            inputs = inputs.to(self.device, non_blocking=non_blocking)
            if inputs.ndim == 4:
                inputs = inputs.contiguous(memory_format=self.memory_format)
        return inputs, targets.to(self.device, non_blocking=non_blocking)

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.module.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "best": {"key": self.best_metric, "value": self.state.best_value, "epoch": self.state.best_epoch},
            "rng": capture_rng_state(),
        }

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None:
        """Restore a last.pt written by `state_dict` + CheckpointWriter; training continues after its epoch."""
        self.module.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.scheduler.load_state_dict(checkpoint["scheduler"])
        self.scaler.load_state_dict(checkpoint["scaler"])
        restore_rng_state(checkpoint["rng"])
        best = checkpoint["best"]
        self.state = TrainState(epoch=checkpoint["epoch"] + 1, best_value=best["value"], best_epoch=best["epoch"])

    def _train_step(self, inputs, targets: torch.Tensor) -> torch.Tensor:
        if self.mixer is not None:
            inputs, targets = self.mixer(inputs, targets)
        with self._autocast():
            outputs = self.model(inputs)
        loss = self.module.head.loss(outputs, targets)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.gradient_clip_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.module.parameters(), self.gradient_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss.detach()

    def train_epoch(self, loader: DataLoader, epoch: int, epochs: int) -> dict[str, float]:
        self.model.train()
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        loss_sum = torch.zeros((), device=self.device)
        seen = 0
        start = time.perf_counter()
        shown = 0
        data_seconds = 0.0
        with progress_bar(f"epoch {epoch + 1}/{epochs}", len(loader)) as bar:
            batches = iter(loader)
            for step in range(len(loader)):
                waited = time.perf_counter()
                inputs, targets = next(batches)
                data_seconds += time.perf_counter() - waited
                inputs, targets = self._to_device(inputs, targets)
                loss = self._train_step(inputs, targets)
                loss_sum += loss * targets.shape[0]
                seen += targets.shape[0]
                if bar.active and ((step + 1) % _DISPLAY_EVERY == 0 or step + 1 == len(loader)):
                    rate = seen / (time.perf_counter() - start)
                    bar.update(step + 1 - shown, f"loss {float(loss):.4f}  {rate:.0f} samples/s")
                    shown = step + 1
        seconds = time.perf_counter() - start
        train_loss = float(loss_sum) / max(seen, 1)
        if not math.isfinite(train_loss):
            raise FloatingPointError(
                f"Training loss became {train_loss} in epoch {epoch}. Lower --optimizer.lr, set "
                "--training.gradient_clip_norm, or use --training.precision 32."
            )
        return {
            "train_loss": train_loss,
            "train_seconds": seconds,
            "train_data_seconds": data_seconds,
            "train_samples_per_second": seen / seconds,
        }

    @torch.no_grad()
    def evaluate(self, loader: DataLoader, description: str) -> EvalResult:
        self.model.eval()
        metrics = self.make_metrics()
        loss_sum = torch.zeros((), device=self.device)
        seen = 0
        with progress_bar(description, len(loader)) as bar:
            for inputs, targets in loader:
                inputs, targets = self._to_device(inputs, targets)
                with self._autocast():
                    outputs = self.model(inputs)
                loss_sum += self.module.head.loss(outputs, targets) * targets.shape[0]
                seen += targets.shape[0]
                metrics.update(self.module.head.logits(outputs), targets)
                bar.update(1)
        confusion = metrics.confusion_matrix() if hasattr(metrics, "confusion_matrix") else None
        return EvalResult(float(loss_sum) / max(seen, 1), metrics.compute(), confusion)

    def _improved(self, value: float) -> bool:
        best = self.state.best_value
        if best is None or math.isnan(best):
            return not math.isnan(value)
        return value > best if self.best_mode == "max" else value < best

    def fit(self, train_loader: DataLoader, val_loader: DataLoader, epochs: int) -> TrainState:
        """Train from self.state.epoch to `epochs`; after each epoch validate, checkpoint and log."""
        for epoch in range(self.state.epoch, epochs):
            train = self.train_epoch(train_loader, epoch, epochs)
            val = self.evaluate(val_loader, "validate")
            record: dict[str, Any] = {
                "epoch": epoch,
                "train_loss": train["train_loss"],
                "val_loss": val.loss,
                **{f"val_{k}": v for k, v in val.metrics.items()},
                "lr": self.optimizer.param_groups[0]["lr"],
                "epoch_seconds": train["train_seconds"],
                "train_data_seconds": train["train_data_seconds"],
                "train_samples_per_second": train["train_samples_per_second"],
            }
            value = record[self.best_metric]
            is_best = self._improved(value)
            if is_best:
                self.state.best_value, self.state.best_epoch = value, epoch
            self.state.epoch = epoch
            self.checkpoints.save(self.state_dict(), epoch, is_best)
            self.state.epoch = epoch + 1
            self.on_epoch_end(record)
            self.logger.log_metrics(record, step=epoch)
            marker = " *" if is_best else ""
            print_line(
                f"epoch {epoch + 1}/{epochs}  train_loss {record['train_loss']:.4f}  val_loss {val.loss:.4f}  "
                f"{self.best_metric} {value:.4f}{marker}  {train['train_samples_per_second']:.0f} samples/s"
            )
        return self.state
