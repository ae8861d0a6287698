"""Preview grid of a training policy, so a policy can be checked before spending GPU hours on it."""

import os
from pathlib import Path

import numpy as np
import torch

from glovita.augmentation.factory import build_policy_transforms
from glovita.configs.show_augmentations import ShowAugmentationsConfig
from glovita.datasets.factory import build_datasets
from glovita.models.factory import build_encoder


def _displayable(image: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """Undo normalisation; (H, W) for one channel, (H, W, 3) otherwise (alpha dropped)."""
    values = image.float() * torch.tensor(std)[:, None, None] + torch.tensor(mean)[:, None, None]
    values = values.clamp(0, 1).numpy()
    return values[0] if values.shape[0] == 1 else np.moveaxis(values[:3], 0, -1)


def show_augmentations(cfg: ShowAugmentationsConfig) -> Path:
    """Write the grid and return its path."""
    if cfg.data.dataset == "precomputed_features":
        raise ValueError("data.dataset='precomputed_features' has no images to augment.")
    encoder_cfg = cfg.model.encoder.model_copy(update={"pretrained": False})  # only preprocessing defaults
    encoder = build_encoder(cfg.model.model_copy(update={"encoder": encoder_cfg}))
    from glovita.training.resolve import resolve_augmentation

    channels = cfg.model.encoder.input_channels
    aug = resolve_augmentation(cfg.data.augmentation, encoder.preprocessing, channels)
    train_tf, test_tf = build_policy_transforms(aug.train_policy, aug.test_policy, aug.params)
    train = build_datasets(cfg.data, channels).train
    rng = np.random.default_rng(cfg.seed)
    picks = rng.choice(len(train), size=min(cfg.num_samples, len(train)), replace=False)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(picks), cfg.repeats + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows), dpi=100, squeeze=False)
    for row, index in enumerate(picks):
        image, target = train[int(index)]
        views = [test_tf(image)]
        for repeat in range(cfg.repeats):
            torch.manual_seed(cfg.seed * 100_003 + int(index) * 31 + repeat)
            views.append(train_tf(image))
        for col, view in enumerate(views):
            ax = axes[row, col]
            ax.imshow(_displayable(view, aug.mean, aug.std), cmap="gray" if view.shape[0] == 1 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"{aug.test_policy}" if col == 0 else f"{aug.train_policy} #{col}", fontsize=7)
        axes[row, 0].set_ylabel(f"label {target}", fontsize=7)
    fig.suptitle(f"{cfg.data.dataset}: train policy {aug.train_policy}, {aug.image_size}x{aug.image_size}", fontsize=9)
    fig.tight_layout()
    path = cfg.output_file or Path(f"augmentations_{cfg.data.dataset}_{aug.train_policy}.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path
