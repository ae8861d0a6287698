"""PNG plots saved in the run directory."""

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    """Write a figure atomically (temp file + rename) and free it."""
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png")
    _pyplot().close(fig)
    tmp.replace(path)


def save_confusion_matrix(matrix: np.ndarray, class_names: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix with counts in the cells, written atomically as PNG."""
    _save(confusion_figure(matrix, class_names, title), path)


def confusion_figure(matrix: np.ndarray, class_names: list[str], title: str) -> Any:
    """The confusion-matrix figure; its title is wrapped to the figure's width (a 2-class figure is narrow)."""
    import textwrap

    plt = _pyplot()
    counts = np.asarray(matrix, dtype=np.int64)
    rates = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)
    size = max(4.0, 0.45 * len(class_names) + 2)
    title = textwrap.fill(title, width=int(size * 8))  # about 8 characters of the 12 pt title per inch
    fig, ax = plt.subplots(figsize=(size, size), dpi=120)
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45 if len(class_names) > 10 else 0, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(class_names) <= 30:
        for (row, col), count in np.ndenumerate(counts):
            ax.text(col, row, str(count), ha="center", va="center", color="white" if rates[row, col] > 0.5 else "black")
    fig.tight_layout()
    return fig


GAP_COLOUR = "#f4a6a6"
"""The calibration gap's colour: opaque, so the gap looks the same over an accuracy bar (under-confident bins) as
in the legend."""


def save_reliability_diagram(bins: dict[str, list[float]], ece: float, path: Path, title: str) -> None:
    """Accuracy per confidence bin against the diagonal of perfect calibration, with the share of samples per
    bin underneath; written atomically as PNG."""
    _save(reliability_figure(bins, ece, title), path)


def reliability_figure(bins: dict[str, list[float]], ece: float, title: str) -> Any:
    """The reliability diagram: accuracy bars (outlined on top), the gap between accuracy and confidence in one opaque
    colour whether the bin is over- or under-confident, and the share of samples per bin underneath."""
    plt = _pyplot()
    count = np.asarray(bins["count"])
    accuracy = np.asarray(bins["accuracy"])
    confidence = np.asarray(bins["confidence"])
    edges = np.linspace(0, 1, len(count) + 1)
    centers, width = (edges[:-1] + edges[1:]) / 2, 1 / len(count)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 6), dpi=120, height_ratios=(3, 1), sharex=True)
    acc, conf = np.nan_to_num(accuracy), np.nan_to_num(confidence)
    top.bar(centers, acc, width=width, color="tab:blue", label="accuracy")
    low, high = np.minimum(acc, conf), np.maximum(acc, conf)
    top.bar(centers, high - low, bottom=low, width=width, color=GAP_COLOUR, label="gap")
    top.bar(centers, acc, width=width, fill=False, edgecolor="black")  # each accuracy bar's outline, over its gap
    top.plot([0, 1], [0, 1], "k--", linewidth=1, label="perfect calibration")
    top.set_ylabel("accuracy")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_title(f"{title}\nECE = {ece:.4f}")
    top.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # beside the bars, never over them
    bottom.bar(centers, count / max(count.sum(), 1), width=width, edgecolor="black", color="gray")
    bottom.set_xlabel("confidence (top-1 probability)")
    bottom.set_ylabel("share")
    fig.tight_layout()
    return fig


def save_timelines(
    timelines: list[tuple[list[int], list[int]]], class_names: list[str], path: Path, title: str
) -> None:
    """True and predicted frame labels of a few videos as coloured bars (one colour per class), written atomically."""
    plt = _pyplot()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    colours = plt.get_cmap("tab20" if len(class_names) > 10 else "tab10").colors[: max(len(class_names), 1)]
    cmap = ListedColormap(colours)
    fig, axes = plt.subplots(len(timelines), 1, figsize=(8, 0.9 * len(timelines) + 0.8), dpi=120, squeeze=False)
    for ax, (truth, predicted) in zip(axes[:, 0], timelines, strict=True):
        ax.imshow(np.asarray([truth, predicted]), aspect="auto", cmap=cmap, vmin=-0.5, vmax=len(class_names) - 0.5,
                  interpolation="nearest")  # fmt: skip
        ax.set_yticks([0, 1], ["true", "predicted"], fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
    axes[-1, 0].set_xlabel("frame")
    handles = [Patch(color=colours[k], label=name) for k, name in enumerate(class_names)]
    fig.legend(handles=handles, loc="upper right", fontsize=7, ncol=min(len(class_names), 6))
    axes[0, 0].set_title(title, fontsize=8, loc="left")
    _save(fig, path)


def save_segmentation_overlays(
    images: list[np.ndarray], truth: np.ndarray, predicted: np.ndarray, num_classes: int, path: Path, title: str
) -> None:
    """One row per image: the image, its true label map and the predicted one drawn over it (class 0 clear, the
    others in tab10/tab20 colours; ignored pixels grey), written atomically as PNG."""
    plt = _pyplot()
    from matplotlib.colors import ListedColormap

    palette = plt.get_cmap("tab10" if num_classes <= 10 else "tab20").colors
    colours = np.zeros((256, 4))
    for k in range(1, min(num_classes, 255)):
        colours[k, :3], colours[k, 3] = palette[(k - 1) % len(palette)], 0.6
    colours[255] = (0.5, 0.5, 0.5, 0.6)  # the usual ignore index
    cmap = ListedColormap(colours)
    rows = len(images)
    fig, axes = plt.subplots(rows, 3, figsize=(6, 2 * rows), dpi=110, squeeze=False)
    for row, (image, true_map, predicted_map) in enumerate(zip(images, truth, predicted, strict=True)):
        for col, (overlay, name) in enumerate(((None, "image"), (true_map, "truth"), (predicted_map, "predicted"))):
            ax = axes[row, col]
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
            if overlay is not None:
                ax.imshow(np.clip(overlay, 0, 255), cmap=cmap, vmin=0, vmax=255, interpolation="nearest")
            ax.set_axis_off()
            if row == 0:
                ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def save_saliency_overlays(
    images: list[np.ndarray], masks: list[np.ndarray], maps: list[np.ndarray], path: Path, title: str
) -> None:
    """One row per image: the image, its annotated segment drawn over it, and its saliency map (scaled to its
    maximum, jet colours) over it; written atomically as PNG."""
    plt = _pyplot()
    rows = len(images)
    fig, axes = plt.subplots(rows, 3, figsize=(6, 2 * rows), dpi=110, squeeze=False)
    for row, (image, mask, saliency) in enumerate(zip(images, masks, maps, strict=True)):
        shown = np.ma.masked_where(mask == 0, mask.astype(float))
        for col, name in enumerate(("image", "annotated segment", "saliency")):
            ax = axes[row, col]
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
            if col == 1:
                ax.imshow(shown, cmap="autumn", alpha=0.6, vmin=0, vmax=1, interpolation="nearest")
            elif col == 2:
                ax.imshow(saliency, cmap="jet", alpha=0.5, vmin=0, vmax=1)
            ax.set_axis_off()
            if row == 0:
                ax.set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)
