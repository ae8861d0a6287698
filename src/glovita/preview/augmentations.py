"""Preview grid of a training policy, so a policy can be checked before spending GPU hours on it."""

from pathlib import Path

import numpy as np
import torch

from glovita.configs.show_augmentations import ShowAugmentationsConfig
from glovita.datasets.factory import DatasetSplits, build_datasets
from glovita.models.factory import build_encoder
from glovita.runtime.io import atomic_path
from glovita.tasks.factory import build_task


def show_augmentations(cfg: ShowAugmentationsConfig) -> Path:
    """Write the grid and return its path. The dataset's modality says how samples are transformed and drawn;
    the encoder's preprocessing applies when the encoder takes the dataset's kind of samples."""
    if cfg.data.spatial_dims is None:
        raise ValueError(f"data.dataset={cfg.data.dataset!r} holds feature vectors; there are no images to augment.")
    encoder_cfg = cfg.model.encoder
    fits = encoder_cfg.spatial_dims == cfg.data.spatial_dims
    # A volume dataset previewed with the default (2D) model: every channel count is read, channel 0 is drawn.
    channels = getattr(encoder_cfg, "input_channels", 3) if fits else None
    preprocessing = None
    if fits:
        plain = cfg.model.model_copy(update={"encoder": encoder_cfg.model_copy(update={"pretrained": False})})
        preprocessing = build_encoder(plain).preprocessing  # only the preprocessing defaults; no weights read
    splits = build_datasets(cfg.data, channels)
    if getattr(splits.modality, "draws_curves", False):  # series are drawn as curves, not pictures
        return _series_strips(cfg, splits)
    pipeline = splits.modality.pipeline(preprocessing, channels or 1)
    assert pipeline.train is not None and pipeline.eval is not None and pipeline.display is not None
    augmentation = cfg.data.augmentation  # type: ignore[union-attr]
    per_frame = build_task(cfg.data).per_frame

    def label(target: object) -> str:
        if per_frame:
            return "frames"  # labelled per frame: no one label to show
        if splits.class_names and isinstance(target, int) and 0 <= target < len(splits.class_names):
            return splits.class_names[target]
        return str(target)

    return _grid(
        cfg,
        splits.train,
        pipeline.eval,
        pipeline.train,
        augmentation.test_policy,
        augmentation.train_policy,
        pipeline.size_text,
        pipeline.display,
        label,
    )


def _series_strips(cfg: ShowAugmentationsConfig, splits: DatasetSplits) -> Path:
    """One panel per picked training series and channel (the first four): the series as the dataset gives it
    (black) and `repeats` seeded draws of the train policy over it (colours)."""
    sample = splits.train[0][0]
    channels, _ = sample.shape
    pipeline = splits.modality.pipeline(None, channels)
    policy = getattr(cfg.data, "train_policy", "none")
    rng = np.random.default_rng(cfg.seed)
    size = len(splits.train)  # type: ignore[arg-type]
    picks = rng.choice(size, size=min(cfg.num_samples, size), replace=False)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    channels = min(channels, 4)  # the first four channels of a multivariate series
    fig, axes = plt.subplots(len(picks), channels, figsize=(4 * channels, 1.4 * len(picks)), dpi=100, squeeze=False)
    for row, index in enumerate(picks):
        series, target = splits.train[int(index)]
        draws = []
        for repeat in range(cfg.repeats if pipeline.train is not None else 0):
            torch.manual_seed(cfg.seed * 100_003 + int(index) * 31 + repeat)
            draws.append(pipeline.train(series))  # type: ignore[misc]
        label = splits.class_names[int(target)] if splits.class_names else f"{float(target):.3g}"
        for channel in range(channels):
            ax = axes[row, channel]
            for draw in draws:
                ax.plot(draw[channel].numpy(), linewidth=0.7, alpha=0.7)
            ax.plot(series[channel].numpy(), color="black", linewidth=1.0)
            ax.tick_params(labelsize=6)
            if row == 0:
                ax.set_title(f"channel {channel}", fontsize=7)
        axes[row, 0].set_ylabel(f"label {label}", fontsize=7)
    return _save(cfg, fig, f"{cfg.data.dataset}: train policy {policy} (black: as trained on without it)", policy)


def _grid(cfg: ShowAugmentationsConfig, train, test_tf, train_tf, test_name, train_name, size, display, label) -> Path:
    """Rows of samples: the test policy's view, then `repeats` seeded draws of the train policy."""
    rng = np.random.default_rng(cfg.seed)
    picks = rng.choice(len(train), size=min(cfg.num_samples, len(train)), replace=False)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(picks), cfg.repeats + 1
    first = display(test_tf(train[int(picks[0])][0]))
    aspect = first.shape[1] / first.shape[0]  # 3 for the side-by-side mid-slices of volumes
    strips = aspect >= 4  # video clips are strips of frames: one view per row
    if strips:
        fig, grid = plt.subplots(rows * cols, 1, figsize=(min(1.0 * aspect, 16), 1.0 * rows * cols), dpi=100,
                                 squeeze=False)  # fmt: skip
        axes = grid.reshape(rows, cols)
    else:
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
            name = f"{test_name}" if col == 0 else f"{train_name} #{col}"
            if strips:
                ax.set_ylabel(f"{label(target)}: {name}" if col == 0 else f"#{col}", fontsize=6, rotation=0, ha="right")
            elif row == 0:
                ax.set_title(name, fontsize=7)
        if not strips:
            axes[row, 0].set_ylabel(f"label {label(target)}", fontsize=7)
    return _save(cfg, fig, f"{cfg.data.dataset}: train policy {train_name}, {size}", train_name)


def _save(cfg: ShowAugmentationsConfig, fig, title: str, policy: str) -> Path:
    """Title the figure and write it (atomically) to cfg.output_file or augmentations_<dataset>_<policy>.png."""
    import matplotlib.pyplot as plt

    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = cfg.output_file or Path(f"augmentations_{cfg.data.dataset}_{policy}.png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
