"""The interface every metric set satisfies: the trainer, glovita_infer and the test pass call only this."""

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch


@dataclass(frozen=True)
class TestPlots:
    """Which optional test-pass plots the run asked for (task.plot_confusion_matrix, task.plot_reliability_diagram)."""

    confusion_matrix: bool = True
    reliability_diagram: bool = True


@dataclass(frozen=True)
class Miss:
    """A test sample the model got wrong, for the run's worst-errors grid."""

    position: int
    """Where the sample came in this process's evaluation order."""
    truth: str
    predicted: str
    """The prediction as text, with its probability where the task has one."""
    wrongness: float
    """How wrong: 1 - the true class's probability, or the absolute error; the grid shows the largest first."""


class MetricSet(Protocol):
    """Accumulates scores and targets over an evaluation pass; compute() returns the task's metric keys."""

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        """One batch: the head's logits (or regression values) and the batch's targets."""
        ...

    def compute(self) -> dict[str, float]:
        """The metrics over everything seen (summed over torchrun processes where the set needs it)."""
        ...

    def track_curves(self) -> None:
        """Also keep what the test pass writes beyond numbers (curves, timelines); a no-op where there is none."""
        ...

    def save_test_outputs(self, run_dir: Path, class_names: list[str], title: str, plots: TestPlots) -> list[Path]:
        """After compute() on the test split: write the set's files into `run_dir` (test_roc.json, plots); returns
        the plots, which the tracking backend also receives."""
        ...
