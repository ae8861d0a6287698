"""glovita_infer --saliency: a saliency map per image (the same differentiable maps the saliency-guided step trains
with), drawn over the image as a PNG, and its agreement with annotated segments when the samples have them."""

from pathlib import Path
from typing import Any

import numpy as np
import torch

from glovita.inference.masks import common_folder, output_stem
from glovita.models.saliency import (
    CamLayer,
    SaliencyMethod,
    foreground_masks,
    saliency_agreement,
    saliency_maps,
)
from glovita.runtime.batch import LABEL_MAP, Batch


def overlay(image: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    """[image | image under the jet-coloured map] as uint8 (H, 2W, 3); image (C, H, W) in [0, 1], map (H, W) in
    [0, 1] (its maximum = 1)."""
    from matplotlib import colormaps

    rgb = np.repeat(image, 3, axis=0) if image.shape[0] == 1 else image[:3]
    rgb = np.clip(rgb.transpose(1, 2, 0), 0, 1)
    heat = colormaps["jet"](np.clip(saliency, 0, 1))[..., :3]
    blended = 0.5 * rgb + 0.5 * heat
    return np.uint8(np.round(255 * np.concatenate([rgb, blended], axis=1)))


class SaliencyWriter:
    """Writes OUTPUT_DIR/saliency/<id relative to the ids' common folder>.png per image (the image, then the map
    over it) and sums the maps' agreement with the batch's annotated segments (label_map) when it has them.

    The map explains the true class when the samples are labelled (as the saliency-guided step measures it), else
    the predicted class."""

    def __init__(
        self,
        folder: Path,
        ids: list[str],
        method: SaliencyMethod,
        layer: CamLayer | None,
        normalization: tuple[tuple[float, ...], tuple[float, ...]] | None,
        ignore_index: int,
    ) -> None:
        self.folder = folder
        self.ids = ids
        self.common = common_folder(ids)
        self.method = method
        self.layer = layer
        self.normalization = normalization
        self.ignore_index = ignore_index
        self.written = 0
        self.sums: dict[str, float] = {}
        self.annotated = 0

    def maps(self, model: Any, batch: Batch, classes: torch.Tensor) -> torch.Tensor:
        """Saliency maps (B, H, W) of `classes` (B,) for the batch's images."""

        def forward(inputs: torch.Tensor) -> torch.Tensor:
            return model.head.logits(model(inputs, batch.valid))

        with torch.enable_grad():
            _, maps = saliency_maps(forward, batch.inputs, classes, self.method, self.layer, create_graph=False)
        return maps.detach()

    def add(self, batch: Batch, maps: torch.Tensor) -> None:
        """Write the batch's overlays; sum agreement over its annotated images."""
        from PIL import Image

        images = batch.inputs.detach().float()
        if self.normalization is not None:
            mean, std = (torch.tensor(v, device=images.device).reshape(1, -1, 1, 1) for v in self.normalization)
            images = images * std + mean
        scaled = (maps / maps.flatten(1).amax(dim=1).clamp_min(1e-6)[:, None, None]).cpu().numpy()
        for image, saliency in zip(images.cpu().numpy(), scaled, strict=True):
            stem = output_stem(self.folder, self.common, self.ids[self.written])
            stem.parent.mkdir(parents=True, exist_ok=True)
            drawn = Image.fromarray(overlay(image, saliency))
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
