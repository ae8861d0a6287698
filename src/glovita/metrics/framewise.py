"""Framewise (temporal action segmentation) metrics: frame accuracy, per-class and macro F1 over frames, the
segmental edit score and F1@{10,25,50} (segments matched at IoU >= 0.10 / 0.25 / 0.50), as MS-TCN reports them.

Accumulates logits (B, T, K) and frame targets (B, T) where padding is -100; each row is one video."""

from pathlib import Path

import torch

from glovita.metrics.base import TestPlots
from glovita.runtime.batch import IGNORE_FRAME

OVERLAPS = (0.10, 0.25, 0.50)
TIMELINE_VIDEOS = 6
"""Test videos drawn in timeline.png."""


def segments(labels: list[int]) -> list[tuple[int, int, int]]:
    """(label, start, end exclusive) runs of a frame-label sequence."""
    runs: list[tuple[int, int, int]] = []
    start = 0
    for t in range(1, len(labels) + 1):
        if t == len(labels) or labels[t] != labels[start]:
            runs.append((labels[start], start, t))
            start = t
    return runs


def edit_score(predicted: list[int], truth: list[int]) -> float:
    """100 * (1 - Levenshtein distance of the segment label sequences / the longer one's length)."""
    p = [s[0] for s in segments(predicted)]
    g = [s[0] for s in segments(truth)]
    if not p and not g:
        return 100.0
    row = list(range(len(g) + 1))
    for i in range(1, len(p) + 1):
        previous, row[0] = row[0], i
        for j in range(1, len(g) + 1):
            current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (p[i - 1] != g[j - 1]))
            previous = current
    return 100.0 * (1 - row[len(g)] / max(len(p), len(g)))


def overlap_counts(predicted: list[int], truth: list[int], threshold: float) -> tuple[int, int, int]:
    """(tp, fp, fn) of predicted segments matched to unmatched true segments of the same label at IoU >= threshold."""
    pred, true = segments(predicted), segments(truth)
    used = [False] * len(true)
    tp = fp = 0
    for label, start, end in pred:
        best, best_iou = -1, 0.0
        for j, (t_label, t_start, t_end) in enumerate(true):
            if t_label != label:
                continue
            inter = max(0, min(end, t_end) - max(start, t_start))
            union = max(end, t_end) - min(start, t_start)
            iou = inter / union
            if iou > best_iou:
                best, best_iou = j, iou
        if best >= 0 and best_iou >= threshold and not used[best]:
            tp += 1
            used[best] = True
        else:
            fp += 1
    return tp, fp, len(true) - sum(used)


class FramewiseMetrics:
    """compute() keys: accuracy (frames), f1_macro, f1_class_<k> (frames), edit, f1_at_10, f1_at_25, f1_at_50."""

    def __init__(self, num_classes: int, device: torch.device) -> None:
        self.num_classes = num_classes
        self.device = device
        self.reset()

    def track_curves(self) -> None:
        """Also keep the first test videos' frame labels for timeline.png (the test pass)."""
        self.keep = TIMELINE_VIDEOS

    def save_test_outputs(self, run_dir: Path, class_names: list[str], title: str, plots: TestPlots) -> list[Path]:
        """confusion_matrix.png over frames and timeline.png of the first test videos (per-frame ROC curves are
        not reported)."""
        from glovita.metrics.plots import save_confusion_matrix, save_timelines

        written = []
        if plots.confusion_matrix:
            written.append(run_dir / "confusion_matrix.png")
            save_confusion_matrix(self.confusion_matrix().numpy(), class_names, written[-1], title)
        if self.kept:
            written.append(run_dir / "timeline.png")
            save_timelines(self.kept, class_names, written[-1], title)
        return written

    def timelines(self) -> list[tuple[list[int], list[int]]]:
        """(true, predicted) frame labels of up to TIMELINE_VIDEOS videos (this process's)."""
        return self.kept

    def reset(self) -> None:
        self.keep = 0
        self.kept: list[tuple[list[int], list[int]]] = []
        self.confusion = torch.zeros(self.num_classes, self.num_classes, dtype=torch.float64)
        self.edit_sum = 0.0
        self.videos = 0
        self.overlap = torch.zeros(len(OVERLAPS), 3, dtype=torch.float64)  # tp, fp, fn per threshold
        self.synced: tuple[torch.Tensor, torch.Tensor, torch.Tensor] = (self.confusion, self.overlap, torch.zeros(2))
        """The counts of every process, as the last compute() summed them."""

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        predicted = outputs.argmax(dim=-1).cpu()
        targets = targets.cpu()
        for row in range(targets.shape[0]):
            valid = targets[row] != IGNORE_FRAME
            truth, guess = targets[row][valid], predicted[row][valid]
            self.confusion += torch.bincount(truth * self.num_classes + guess, minlength=self.num_classes**2).view(
                self.num_classes, self.num_classes
            )
            truth_list, guess_list = truth.tolist(), guess.tolist()
            if len(self.kept) < self.keep:
                self.kept.append((truth_list, guess_list))
            self.edit_sum += edit_score(guess_list, truth_list)
            self.videos += 1
            for i, threshold in enumerate(OVERLAPS):
                self.overlap[i] += torch.tensor(overlap_counts(guess_list, truth_list, threshold), dtype=torch.float64)

    def _synced(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Counts summed over torchrun processes (each evaluated its share of the videos)."""
        scalars = torch.tensor([self.edit_sum, float(self.videos)], dtype=torch.float64)
        confusion, overlap = self.confusion.clone(), self.overlap.clone()
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            for tensor in (confusion, overlap, scalars):
                moved = tensor.to(self.device)
                torch.distributed.all_reduce(moved)
                tensor.copy_(moved.cpu())
        return confusion, overlap, scalars

    def compute(self) -> dict[str, float]:
        confusion, overlap, scalars = self.synced = self._synced()
        nan = float("nan")
        total = float(confusion.sum())
        values = {"accuracy": float(confusion.diagonal().sum()) / total if total else nan}
        tp = confusion.diagonal()
        support, predicted = confusion.sum(dim=1), confusion.sum(dim=0)
        present = support > 0
        f1 = torch.where(present, 2 * tp / (support + predicted).clamp(min=1), torch.tensor(nan, dtype=torch.float64))
        values["f1_macro"] = float(f1[present].mean()) if present.any() else nan
        values["edit"] = float(scalars[0] / scalars[1]) if scalars[1] else nan
        for i, threshold in enumerate(OVERLAPS):
            hits, false_pos, false_neg = overlap[i].tolist()
            precision = hits / (hits + false_pos) if hits + false_pos else 0.0
            recall = hits / (hits + false_neg) if hits + false_neg else 0.0
            score = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            values[f"f1_at_{round(threshold * 100)}"] = 100.0 * score
        values.update({f"f1_class_{k}": float(v) for k, v in enumerate(f1)})
        return values

    def confusion_matrix(self) -> torch.Tensor:
        """(K, K) frame counts, rows = true class, columns = predicted class (after compute(), synced across
        processes)."""
        return self.synced[0].long()
