"""PNG plots saved in the run directory."""

from pathlib import Path

import numpy as np


def save_confusion_matrix(matrix: np.ndarray, class_names: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix with counts in the cells, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(matrix, dtype=np.int64)
    rates = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)
    size = max(4.0, 0.45 * len(class_names) + 2)
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
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    tmp.replace(path)
