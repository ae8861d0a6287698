"""glovita_infer for segmentation runs: one predicted label map per image, written as it is predicted, at the
image's own size, and a predictions.csv row per image (with its IoU and Dice when the truth is known)."""

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from glovita.metrics.segmentation import image_confusion, scores_from_confusion
from glovita.runtime.io import atomic_path


def _stored_size(sample_id: str) -> tuple[int, int] | None:
    """(H, W) of the image file a sample id names; None when the id is not a readable image file."""
    try:
        with Image.open(sample_id) as image:
            return image.size[1], image.size[0]
    except (OSError, ValueError):
        return None


class MaskWriter:
    """Writes OUTPUT_DIR/masks/<id relative to the ids' common folder>.png (8-bit class indices) for each image, in
    the order the samples are predicted; the scores of a row are those of the label map the model saw (after the
    run's evaluation transform), the ones test_metrics.json sums."""

    def __init__(self, folder: Path, ids: list[str], num_classes: int, ignore_index: int) -> None:
        if num_classes > 256:
            raise ValueError(f"data.num_classes={num_classes}: 8-bit mask files hold at most 256 classes.")
        self.folder = folder
        self.ids = ids
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        common = os.path.commonpath([os.path.dirname(i) for i in ids]) if all(os.sep in i for i in ids) else ""
        self.common = common
        self.rows: list[list[object]] = []

    def _file(self, sample_id: str) -> Path:
        relative = os.path.relpath(sample_id, self.common) if self.common else sample_id.replace(os.sep, "_")
        return self.folder / Path(relative).with_suffix(".png")

    def add(self, probabilities: torch.Tensor, targets: torch.Tensor | None) -> None:
        """A batch's class probabilities (B, K, H, W) and, when labelled, its label maps (B, H, W)."""
        predicted = probabilities.argmax(dim=1)
        for index in range(len(probabilities)):
            sample_id = self.ids[len(self.rows)]
            size = _stored_size(sample_id)
            scores = probabilities[index : index + 1].float()
            if size is not None and tuple(scores.shape[-2:]) != size:  # back to the image's own size
                scores = F.interpolate(scores, size=size, mode="bilinear", align_corners=False)
            label_map = scores[0].argmax(dim=0).to(torch.uint8).cpu().numpy()
            path = self._file(sample_id)
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                Image.fromarray(np.ascontiguousarray(label_map), mode="L").save(tmp, format="PNG")
            row: list[object] = [sample_id, path.relative_to(self.folder.parent).as_posix()]
            if targets is not None:
                confusion = image_confusion(predicted[index], targets[index], self.num_classes, self.ignore_index)
                values = scores_from_confusion(confusion.cpu())
                row += [f"{values[key]:.6g}" for key in ("miou", "dice", "pixel_accuracy")]
            self.rows.append(row)

    def header(self, labelled: bool) -> list[str]:
        return ["id", "mask_file", *(["miou", "dice", "pixel_accuracy"] if labelled else [])]
