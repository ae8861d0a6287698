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


def mid_slices(volume: torch.Tensor) -> np.ndarray:
    """The three orthogonal middle slices of channel 0 of (C, D, H, W), side by side, scaled to [0, 1]."""
    first = volume[0].float()
    d, h, w = first.shape
    slices = [first[d // 2], first[:, h // 2], first[:, :, w // 2]]
    height = max(s.shape[0] for s in slices)
    padded = [torch.nn.functional.pad(s, (0, 1, 0, height - s.shape[0])) for s in slices]
    row = torch.cat(padded, dim=1)
    low, high = row.min(), row.max()
    return ((row - low) / (high - low).clamp_min(1e-6)).numpy()


def _volume_views(cfg: ShowAugmentationsConfig):
    """(train dataset, test view fn, train view fn, policy names, size text) of a volume dataset."""
    from glovita.augmentation.policies.shared_3d import build_3d_policy

    size = tuple(cfg.data.volume_size)
    augmentation = cfg.data.augmentation
    train = build_datasets(cfg.data, None).train  # every channel count; channel 0 is shown
    train_tf = build_3d_policy(augmentation.train_policy, size)
    test_tf = build_3d_policy(augmentation.test_policy, size)
    return train, test_tf, train_tf, augmentation.test_policy, augmentation.train_policy, "x".join(map(str, size))


def show_augmentations(cfg: ShowAugmentationsConfig) -> Path:
    """Write the grid and return its path."""
    if cfg.data.dataset == "precomputed_features":
        raise ValueError("data.dataset='precomputed_features' has no images to augment.")
    if cfg.data.dataset == "generic_volume_dataset":
        train, test_tf, train_tf, test_name, train_name, size = _volume_views(cfg)
        return _grid(cfg, train, test_tf, train_tf, test_name, train_name, size, mid_slices)
    encoder_cfg = cfg.model.encoder.model_copy(update={"pretrained": False})  # only preprocessing defaults
    encoder = build_encoder(cfg.model.model_copy(update={"encoder": encoder_cfg}))
    from glovita.training.resolve import resolve_augmentation

    channels = cfg.model.encoder.input_channels
    aug = resolve_augmentation(cfg.data.augmentation, encoder.preprocessing, channels)
    train_tf, test_tf = build_policy_transforms(aug.train_policy, aug.test_policy, aug.params)
    train = build_datasets(cfg.data, channels).train

    def display(view: torch.Tensor) -> np.ndarray:
        return _displayable(view, aug.mean, aug.std)

    size = f"{aug.image_size}x{aug.image_size}"
    return _grid(cfg, train, test_tf, train_tf, aug.test_policy, aug.train_policy, size, display)


def _grid(cfg: ShowAugmentationsConfig, train, test_tf, train_tf, test_name, train_name, size, display) -> Path:
    """Rows of samples: the test policy's view, then `repeats` seeded draws of the train policy."""
    rng = np.random.default_rng(cfg.seed)
    picks = rng.choice(len(train), size=min(cfg.num_samples, len(train)), replace=False)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(picks), cfg.repeats + 1
    first = display(test_tf(train[int(picks[0])][0]))
    aspect = first.shape[1] / first.shape[0]  # 3 for the side-by-side mid-slices of volumes
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols * aspect, 1.6 * rows), dpi=100, squeeze=False)
    for row, index in enumerate(picks):
        image, target = train[int(index)]
        views = [test_tf(image)]
        for repeat in range(cfg.repeats):
            seed = cfg.seed * 100_003 + int(index) * 31 + repeat
            torch.manual_seed(seed)
            np.random.seed(seed % 2**32)
            views.append(train_tf(image))
        for col, view in enumerate(views):
            ax = axes[row, col]
            shown = display(view)
            ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"{test_name}" if col == 0 else f"{train_name} #{col}", fontsize=7)
        axes[row, 0].set_ylabel(f"label {target}", fontsize=7)
    fig.suptitle(f"{cfg.data.dataset}: train policy {train_name}, {size}", fontsize=9)
    fig.tight_layout()
    path = cfg.output_file or Path(f"augmentations_{cfg.data.dataset}_{train_name}.png")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, path)
    return path
