"""glovita_infer --saliency: a saliency map per image (the same differentiable maps the saliency-guided step trains
with), drawn over the image as a PNG, and its agreement with annotated segments when the samples have them."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glovita.inference.masks import common_folder, output_stem
from glovita.models.saliency import (
    CamLayer,
    SaliencyMethod,
    explained,
    foreground_masks,
    normalised,
    saliency_agreement,
)
from glovita.runtime.batch import LABEL_MAP, Batch


def overlay(picture: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    """[picture | picture under the jet-coloured map] as uint8 (H, 2W, 3); the picture (H, W) or (H, W, 3) and the
    map (H, W) in [0, 1], drawn alike (a volume's slices side by side)."""
    from matplotlib import colormaps

    rgb = np.clip(np.broadcast_to(np.atleast_3d(picture), (*picture.shape[:2], 3)), 0, 1)  # grey -> 3 channels
    heat = colormaps["jet"](np.clip(saliency, 0, 1))[..., :3]
    blended = 0.5 * rgb + 0.5 * heat
    return np.uint8(np.round(255 * np.concatenate([rgb, blended], axis=1)))


class SaliencyWriter:
    """Writes OUTPUT_DIR/saliency/<id relative to the ids' common folder>.png per sample (its picture, then the map
    over it; volumes as their three middle slices, as the run's overlays draw them) and sums the maps' agreement
    with the batch's annotated segments (label_map) when it has them.

    The map explains the true class when the samples are labelled (as the saliency-guided step measures it), else
    the predicted class."""

    def __init__(
        self,
        folder: Path,
        ids: list[str],
        method: SaliencyMethod,
        layer: CamLayer | None,
        display: Callable[[torch.Tensor], np.ndarray],
        display_map: Callable[[torch.Tensor], np.ndarray],
        ignore_index: int,
    ) -> None:
        self.folder = folder
        self.ids = ids
        self.common = common_folder(ids)
        self.method = method
        self.layer = layer
        self.display = display
        self.display_map = display_map
        self.ignore_index = ignore_index
        self.written = 0
        self.sums: dict[str, float] = {}
        self.annotated = 0

    def maps(self, model: Any, batch: Batch, classes: torch.Tensor) -> torch.Tensor:
        """Saliency maps (B, ...) of `classes` (B,) for the batch's samples."""
        return explained(model, batch.inputs, batch.valid, classes, self.method, self.layer)

    def add(self, batch: Batch, maps: torch.Tensor) -> None:
        """Write the batch's overlays; sum agreement over its annotated images."""
        from PIL import Image

        scaled = normalised(maps.detach().float()).cpu()
        for sample, saliency in zip(batch.inputs.detach().cpu(), scaled, strict=True):
            stem = output_stem(self.folder, self.common, self.ids[self.written])
            stem.parent.mkdir(parents=True, exist_ok=True)
            drawn = Image.fromarray(overlay(self.display(sample), self.display_map(saliency)))
            scale = max(1, 128 // drawn.height)  # small images enlarged (pixels kept sharp) to be seen
            drawn = drawn.resize((drawn.width * scale, drawn.height * scale), Image.Resampling.NEAREST)
            drawn.save(stem.with_suffix(".png"))
            self.written += 1
        if LABEL_MAP in batch.fields:
            masks, valid = foreground_masks(batch.read(LABEL_MAP), self.ignore_index)
            annotated = masks.flatten(1).amax(dim=1) > 0
            for key, values in saliency_agreement(maps, masks, valid).items():
                self.sums[key] = self.sums.get(key, 0.0) + float(values[annotated].sum())
            self.annotated += int(annotated.sum())

    def metrics(self) -> dict[str, float]:
        """Mean saliency_iou and pointing_game over the annotated images ({} without annotations)."""
        if self.annotated == 0:
            return {}
        return {key: value / self.annotated for key, value in self.sums.items()}
