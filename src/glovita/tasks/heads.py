"""Named heads beside the main one: their tasks, and one metric set over all heads (named heads' keys prefixed)."""

from dataclasses import dataclass
from pathlib import Path

import torch

from glovita.metrics.base import MetricSet, Miss, TestPlots
from glovita.runtime.batch import TARGETS, Batch, present
from glovita.tasks.base import Task


@dataclass(frozen=True)
class NamedTask:
    """A named head's task: what it predicts, the sample field its targets are in, its loss weight."""

    name: str
    task: Task
    target_field: str
    loss_weight: float
    class_names: tuple[str, ...] = ()
    """A classification head's class names in index order (a manifest column's names); () = its indices."""

    def names(self) -> list[str]:
        """The class names, or the class indices as text."""
        return list(self.class_names) or [str(k) for k in range(self.task.num_outputs)]


class HeadsMetrics:
    """The main task's metric set (its keys as they are) and each named head's (keys `<name>_<key>`), fed from one
    forward pass: `update(logits, batch)` takes every head's logits by name ('' for the main head)."""

    def __init__(
        self, main: MetricSet, named: list[NamedTask], device: torch.device, main_field: str = TARGETS
    ) -> None:
        self.main = main
        self.main_field = main_field
        """The batch field of the main task's targets (its task's target_field)."""
        self.named = [(head, head.task.build_metrics(device)) for head in named]
        self.seen: set[str] = set()
        """Named heads whose target field the batches had (samples predicted from a folder may lack it)."""

    def update(self, logits: dict[str, torch.Tensor], batch: Batch) -> None:
        self.main.update(logits[""], batch.read(self.main_field))
        for head, metrics in self.named:
            if head.target_field not in batch.fields:
                continue
            self.seen.add(head.name)
            targets = batch.read(head.target_field)
            keep = present(targets)
            if bool(keep.any()):
                metrics.update(logits[head.name][keep], targets[keep])

    def compute(self) -> dict[str, float]:
        values = self.main.compute()
        for head, metrics in self.named:
            if head.name in self.seen:
                values.update({f"{head.name}_{key}": value for key, value in metrics.compute().items()})
        return values

    def track_curves(self) -> None:
        self.main.track_curves()
        for _, metrics in self.named:
            metrics.track_curves()

    def misses(self, count: int, class_names: list[str]) -> list[Miss] | None:
        """The main head's worst test errors; None where its task does not rank errors (segmentation, frames)."""
        misses = getattr(self.main, "misses", None)
        return misses(count, class_names) if misses is not None else None

    def save_test_outputs(self, run_dir: Path, class_names: list[str], title: str, plots: TestPlots) -> list[Path]:
        """The main head's files in the run directory, each named head's in heads/<name>/."""
        written = self.main.save_test_outputs(run_dir, class_names, title, plots)
        for head, metrics in self.named:
            if head.name not in self.seen:
                continue
            folder = run_dir / "heads" / head.name
            folder.mkdir(parents=True, exist_ok=True)
            written += metrics.save_test_outputs(folder, head.names(), f"{title} ({head.name})", plots)
            for empty in (folder, folder.parent):  # a head whose task writes no files leaves no folder
                if not any(empty.iterdir()):
                    empty.rmdir()
        return written
