"""Pictures a run writes into its directory for the report (and the tracking backend): the training
augmentation preview when training starts, the worst test errors after the test pass. Samples are drawn the way
their modality draws them (images, volume mid-slices, video frame strips, series curves); data without pictures
(feature vectors, bags) gets none."""

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from glovita.modalities.base import Pipeline
from glovita.reports.tiles import Tile, save_tiles
from glovita.runtime.batch import ID, INPUT, TARGETS, as_sample
from glovita.runtime.io import save_json

WORST_ERRORS = 12
"""Test samples in test_worst_errors.png."""
PREVIEW_SAMPLES = 4
"""Training samples in augmentations.png, each shown as evaluated and in PREVIEW_DRAWS seeded training draws."""
PREVIEW_DRAWS = 3


def _picture(pipeline: Pipeline, view: Any) -> np.ndarray | None:
    if pipeline.display is None or not isinstance(view, torch.Tensor):
        return None
    return pipeline.display(view.float())


def _label(target: Any, class_names: list[str]) -> str:
    if isinstance(target, torch.Tensor) and target.numel() == 1:
        target = target.item()
    if isinstance(target, int) and 0 <= target < len(class_names):
        return class_names[target]
    if isinstance(target, float):
        return f"{target:.4g}"
    return "" if isinstance(target, torch.Tensor) else str(target)


def save_augmentation_preview(
    pipeline: Pipeline, train: Dataset, class_names: list[str], policy: str, path: Path, seed: int
) -> Path | None:
    """augmentations.png: PREVIEW_SAMPLES training samples spread over the split, each as evaluated, then in
    PREVIEW_DRAWS draws of the training transform seeded as training seeds them. None when nothing is drawn."""
    size = len(train)  # type: ignore[arg-type]
    if size == 0 or pipeline.display is None:
        return None
    evaluated, augmented = pipeline.eval_dataset(train), pipeline.train_dataset(train)
    tiles: list[Tile] = []
    for index in sorted({int(i) for i in np.linspace(0, size - 1, min(PREVIEW_SAMPLES, size))}):
        sample = as_sample(evaluated[index])
        first = _picture(pipeline, sample[INPUT])
        if first is None:
            return None
        label = _label(sample[TARGETS], class_names)
        tiles.append(Tile(first, (f"{label}: as evaluated" if label else "as evaluated",), row_start=True))
        for draw in range(PREVIEW_DRAWS):
            key = (index, seed * 100_003 + index * 31 + draw) if augmented is not train else index
            picture = _picture(pipeline, as_sample(augmented[key])[INPUT])  # type: ignore[index]
            if picture is not None:
                tiles.append(Tile(picture, (f"training draw {draw + 1}",)))
    return save_tiles(tiles, path, f"Training augmentation ({policy}): each row one sample")


def save_worst_errors(
    metric_set: Any,
    loader: DataLoader,
    pipeline: Pipeline,
    run_dir: Path,
    class_names: list[str],
    ids: list[str],
    title: str,
) -> Path | None:
    """test_worst_errors.png and .json: the test samples the model got most wrong (lowest probability of the true
    class; largest error for regression), as the model saw them, with their ids (`ids`: the split's, in dataset
    order, as glovita_infer names them). None when the task ranks no errors
    or the data has no pictures; the JSON alone (an empty list) when the model made no error."""
    misses_of = getattr(metric_set, "misses", None)
    if misses_of is None or pipeline.display is None:
        return None
    misses = misses_of(WORST_ERRORS, class_names)
    if misses is None:
        return None
    order = list(iter(loader.sampler)) if loader.sampler is not None else []  # type: ignore[arg-type]
    tiles: list[Tile] = []
    records = []
    for miss in misses:
        index = order[miss.position] if miss.position < len(order) else miss.position
        sample = as_sample(loader.dataset[index])
        picture = _picture(pipeline, sample[INPUT])
        if picture is None:
            return None
        sample_id = str(sample.get(ID, ids[index] if index < len(ids) else index))
        records.append({"id": sample_id, "index": index, "true": miss.truth, "predicted": miss.predicted,
                        "wrongness": round(miss.wrongness, 6)})  # fmt: skip
        short = sample_id if len(sample_id) <= 24 else "…" + sample_id[-23:]
        tiles.append(Tile(picture, (short, f"true {miss.truth}", f"pred {miss.predicted}")))
    save_json({"samples": records}, run_dir / "test_worst_errors.json")
    if not tiles:
        return None
    return save_tiles(tiles, run_dir / "test_worst_errors.png", title)


PREDICTED_IMAGES = 6
"""Images per split drawn in <split>_predictions.png of a label-free run."""


def save_predicted_images(
    model: torch.nn.Module, device: torch.device, loaders: dict[str, DataLoader], pipeline: Pipeline, run_dir: Path
) -> list[Path]:
    """<split>_predictions.png of a label-free run: the first images of each split, each row the input (as the
    model saw it), its target and the prediction (best.pt's weights after the test pass)."""
    from glovita.runtime.batch import TARGET_IMAGE

    if pipeline.display is None or pipeline.display_values is None:
        return []
    model.eval()
    written = []
    for split, loader in loaders.items():
        batch = next(iter(loader)).to(device)
        count = min(PREDICTED_IMAGES, len(batch))
        with torch.no_grad():
            predicted = model.head.predict(model.main_outputs(model(batch.inputs[:count], None)))  # type: ignore[operator,union-attr]
        tiles = []
        for i in range(count):
            tiles.append(Tile(pipeline.display(batch.inputs[i].float().cpu()), ("input",), row_start=True))
            tiles.append(Tile(pipeline.display_values(batch.read(TARGET_IMAGE)[i].float().cpu()), ("target",)))
            tiles.append(Tile(pipeline.display_values(predicted[i].float().cpu()), ("predicted",)))
        path = run_dir / f"{split}_predictions.png"
        written.append(save_tiles(tiles, path, f"{split}: input, target and predicted image"))
    return written
