"""glovita_infer for segmentation runs: one predicted label map per image, written as it is predicted, at the
image's own size, and a predictions.csv row per image (with its IoU and Dice when the truth is known)."""

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from glovita.metrics.segmentation import image_confusion, scores_from_confusion


def common_folder(ids: list[str]) -> str:
    """The folder all sample ids (paths) share, '' when they are not all paths."""
    return os.path.commonpath([os.path.dirname(i) for i in ids]) if ids and all(os.sep in i for i in ids) else ""


def output_stem(folder: Path, common: str, sample_id: str) -> Path:
    """Where a file about `sample_id` goes under `folder`: its path relative to `common`, without its suffix (ids
    that are not paths are flattened)."""
    relative = os.path.relpath(sample_id, common) if common else sample_id.replace(os.sep, "_")
    name = Path(relative).name
    return folder / Path(relative).with_name(name.removesuffix(".gz").rsplit(".", 1)[0])


class LabelMapFiles(Protocol):
    """What a modality knows about its samples' label-map files (images and volumes have it)."""

    def stored_label_map(self, scores: torch.Tensor, source: Path, outside: int, record: dict[str, Any]) -> np.ndarray:
        """The label map at the source file's own size from class scores (K, ...) at the model's size."""
        ...

    def save_label_map(self, path: Path, labels: np.ndarray, source: Path) -> Path:
        """Write `labels` at `path` + the format's suffix; returns the file."""
        ...


class MaskWriter:
    """Writes OUTPUT_DIR/masks/<id relative to the ids' common folder> for each sample, in the order the samples are
    predicted, at the sample's own size (the modality undoes the run's evaluation geometry; what the model never saw
    gets the ignore index) and in its format (PNG of class indices for images; NIfTI with the source's affine, or
    .npy, for volumes). The scores of a row are those of the label map the model saw, as test_metrics.json sums
    them."""

    def __init__(
        self,
        folder: Path,
        ids: list[str],
        num_classes: int,
        ignore_index: int,
        modality: LabelMapFiles,
        record: dict[str, Any],
    ) -> None:
        if num_classes > 256:
            raise ValueError(f"data.num_classes={num_classes}: 8-bit mask files hold at most 256 classes.")
        self.folder = folder
        self.ids = ids
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.modality = modality
        self.record = record
        self.common = common_folder(ids)
        self.rows: list[list[object]] = []
        self.what = "masks"
        """What the files are, for the line that reports them."""

    def _stem(self, sample_id: str) -> Path:
        return output_stem(self.folder, self.common, sample_id)

    def add(self, probabilities: torch.Tensor, targets: torch.Tensor | None) -> None:
        """A batch's class probabilities (B, K, ...) and, when labelled, its label maps (B, ...)."""
        predicted = probabilities.argmax(dim=1)
        for index in range(len(probabilities)):
            sample_id = self.ids[len(self.rows)]
            scores = probabilities[index].float().cpu()
            source = Path(sample_id)
            if source.is_file():
                labels = self.modality.stored_label_map(scores, source, self.ignore_index, self.record)
            else:  # an id that names no file: the map as the model saw it
                labels = scores.argmax(dim=0).to(torch.uint8).numpy()
            stem = self._stem(sample_id)
            stem.parent.mkdir(parents=True, exist_ok=True)
            path = self.modality.save_label_map(stem, np.ascontiguousarray(labels), source)
            row: list[object] = [sample_id, path.relative_to(self.folder.parent).as_posix()]
            if targets is not None:
                confusion = image_confusion(predicted[index], targets[index], self.num_classes, self.ignore_index)
                values = scores_from_confusion(confusion.cpu())
                row += [f"{values[key]:.6g}" for key in ("miou", "dice", "pixel_accuracy")]
            self.rows.append(row)

    def header(self, labelled: bool) -> list[str]:
        return ["id", "mask_file", *(["miou", "dice", "pixel_accuracy"] if labelled else [])]


class PredictedImageFiles(Protocol):
    """What a modality knows about writing a label-free run's predicted images (images and volumes have it)."""

    sample_noun: str

    def save_predicted_image(
        self, path: Path, values: torch.Tensor, source: Path, value_range: tuple[float, float]
    ) -> Path:
        """Write a predicted image (C, ...) of [0, 1] values at `path` + the format's suffix; returns the file."""
        ...


class ImageWriter:
    """Label-free runs: writes OUTPUT_DIR/images/<id relative to the ids' common folder> for each sample, the
    predicted image in its modality's format: images as 8-bit PNG at the size the model saw (values clipped to
    [0, 1], x 255 rounded), volumes as float32 NIfTI or .npy on their source's grid in data.target_range's units; a
    predictions.csv row per image with its PSNR, SSIM and MAE when the target is known (those of the image the
    model saw, as test_metrics.json averages them)."""

    def __init__(
        self, folder: Path, ids: list[str], modality: PredictedImageFiles, value_range: tuple[float, float]
    ) -> None:
        self.folder = folder
        self.ids = ids
        self.modality = modality
        self.value_range = value_range
        self.common = common_folder(ids)
        self.rows: list[list[object]] = []
        self.what = f"predicted {modality.sample_noun}"
        """What the files are, for the line that reports them."""

    def add(self, predicted: torch.Tensor, targets: torch.Tensor | None) -> None:
        """A batch's predicted images (B, C, ...) in [0, 1] and, when known, their targets."""
        from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

        for index in range(len(predicted)):
            sample_id = self.ids[len(self.rows)]
            image = predicted[index].float().clamp(0.0, 1.0).cpu()
            stem = output_stem(self.folder, self.common, sample_id)
            stem.parent.mkdir(parents=True, exist_ok=True)
            path = self.modality.save_predicted_image(stem, image, Path(sample_id), self.value_range)
            row: list[object] = [sample_id, path.relative_to(self.folder.parent).as_posix()]
            if targets is not None:
                truth = targets[index].float().cpu()[None]
                psnr = float(peak_signal_noise_ratio(image[None], truth, data_range=1.0))
                ssim = float(structural_similarity_index_measure(image[None], truth, data_range=1.0))  # type: ignore[arg-type]
                row += [f"{psnr:.6g}", f"{ssim:.6g}", f"{float((image[None] - truth).abs().mean()):.6g}"]
            self.rows.append(row)

    def header(self, labelled: bool) -> list[str]:
        return ["id", "image_file", *(["psnr", "ssim", "mae"] if labelled else [])]
