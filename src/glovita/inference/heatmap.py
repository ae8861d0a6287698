"""Attention heatmaps of MIL runs: each instance's score painted over its patch of the slide grid (coords), on a
thumbnail when one is given, with the top-k instances outlined and listed."""

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glovita.configs.mil_heatmap import MilHeatmapConfig
from glovita.inference.attention import AttentionRecord, read_attention
from glovita.runtime.io import atomic_path
from glovita.runtime.progress import print_line

_MAX_CANVAS = 2048
"""Longest side in pixels of the drawing when there is no thumbnail."""


@dataclass(frozen=True)
class Heatmap:
    png: Path
    top_csv: Path | None
    branch: str
    top: list[tuple[int, int, int, float]]
    """(instance, x, y, score) of the top-k instances, highest first."""
    colours: np.ndarray
    """(H, W) scaled score painted at each pixel of the drawing (NaN where no patch lies)."""
    scale: float
    """Drawing pixels per coords unit."""


def _branch(record: AttentionRecord, wanted: str | None) -> int:
    if wanted is not None:
        if wanted not in record.branches:
            raise ValueError(
                f"branch={wanted!r} is not in '{record.slide_id}' (branches: {', '.join(record.branches)})."
            )
        return record.branches.index(wanted)
    predicted = f"attention_{record.prediction}"
    return record.branches.index(predicted) if predicted in record.branches else 0


def scaled_scores(scores: np.ndarray, scale: str) -> np.ndarray:
    """Scores in [0, 1]: percentile ranks (ties share their mean rank) or min-max."""
    if scale == "minmax":
        low, high = float(scores.min()), float(scores.max())
        return np.zeros_like(scores) if high <= low else (scores - low) / (high - low)
    from scipy.stats import rankdata

    return (rankdata(scores) / len(scores)).astype(np.float32)


def _background(cfg: MilHeatmapConfig, extent: tuple[int, int]) -> tuple[np.ndarray, float]:
    """The picture under the heatmap (H, W, 3) in [0, 1] and the drawing pixels per coords unit."""
    if cfg.thumbnail is None:
        scale = min(1.0, _MAX_CANVAS / max(extent))
        size = (max(1, round(extent[1] * scale)), max(1, round(extent[0] * scale)))
        return np.full((*size, 3), 0.92, dtype=np.float32), scale
    from PIL import Image

    if not cfg.thumbnail.is_file():
        raise FileNotFoundError(f"thumbnail '{cfg.thumbnail}' does not exist.")
    try:
        with Image.open(cfg.thumbnail) as image:
            picture = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except OSError as err:
        raise ValueError(f"thumbnail '{cfg.thumbnail}' is not a readable image ({err}).") from err
    scale = 1.0 / cfg.downsample if cfg.downsample is not None else picture.shape[1] / extent[0]
    return picture, scale


def draw_heatmap(cfg: MilHeatmapConfig) -> Heatmap:
    """Write the heatmap PNG (and the top-k CSV); returns what was drawn."""
    record = read_attention(cfg.attention_file)
    if record.coords is None:
        raise ValueError(
            f"attention_file '{cfg.attention_file}' has no coords, so there is no grid to draw on. Slide files with "
            "'coords' (CLAM's and TRIDENT's h5_files) give attention files with coords."
        )
    column = _branch(record, cfg.branch)
    scores = record.scores[:, column]
    coords = record.coords.astype(np.int64)
    if len(scores) == 0:
        raise ValueError(f"attention_file '{cfg.attention_file}' holds no instances.")
    extent = (int(coords[:, 0].max()) + cfg.patch_size, int(coords[:, 1].max()) + cfg.patch_size)
    picture, scale = _background(cfg, extent)
    height, width = (int(n) for n in picture.shape[:2])
    colours = np.full((height, width), np.nan, dtype=np.float32)
    values = scaled_scores(scores, cfg.scale)
    for (x, y), value in zip(coords.tolist(), values.tolist(), strict=True):
        x0, y0 = min(width, round(x * scale)), min(height, round(y * scale))
        x1 = min(width, max(x0 + 1, round((x + cfg.patch_size) * scale)))
        y1 = min(height, max(y0 + 1, round((y + cfg.patch_size) * scale)))
        region = colours[y0:y1, x0:x1]
        np.fmax(region, value, out=region)  # overlapping patches keep the higher score
    order = np.argsort(-scores, kind="stable")[: cfg.top_k]
    top = [(int(i), int(coords[i, 0]), int(coords[i, 1]), float(scores[i])) for i in order]
    png = cfg.output_file or cfg.attention_file.with_name(f"{cfg.attention_file.stem}_heatmap.png")
    _save_png(cfg, record, record.branches[column], picture, colours, top, scale, png)
    top_csv = None
    if top:
        top_csv = png.with_name(f"{png.stem}_top{cfg.top_k}.csv")
        with atomic_path(top_csv) as tmp, tmp.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["rank", "instance", "x", "y", record.branches[column]])
            writer.writerows([rank, i, x, y, f"{s:.6g}"] for rank, (i, x, y, s) in enumerate(top, start=1))
        lines = [f"  {rank:>3}  instance {i:>6}  x {x:>7}  y {y:>7}  {s:.4g}" for rank, (i, x, y, s) in
                 enumerate(top, start=1)]  # fmt: skip
        print_line(f"Top {len(top)} instances of {record.slide_id} ({record.branches[column]}):\n" + "\n".join(lines))
    return Heatmap(png, top_csv, record.branches[column], top, colours, scale)


def _save_png(
    cfg: MilHeatmapConfig,
    record: AttentionRecord,
    branch: str,
    picture: np.ndarray,
    colours: np.ndarray,
    top: list[tuple[int, int, int, float]],
    scale: float,
    path: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    height, width = colours.shape
    inches = 8.0
    fig, ax = plt.subplots(figsize=(inches * 1.15, inches * height / max(width, 1) + 0.6), dpi=100)
    ax.imshow(picture, interpolation="nearest")
    painted = np.ma.masked_invalid(colours)
    image = ax.imshow(painted, cmap=cfg.colormap, vmin=0, vmax=1, alpha=cfg.alpha, interpolation="nearest")
    side = cfg.patch_size * scale
    for rank, (_, x, y, _) in enumerate(top, start=1):
        ax.add_patch(Rectangle((x * scale, y * scale), side, side, fill=False, edgecolor="white", linewidth=1.5))
        ax.text(x * scale + 1, y * scale + 1, str(rank), color="white", fontsize=7, va="top", ha="left")
    truth = f", true {record.target}" if record.target else ""
    predicted = f" predicted {record.prediction}{truth}" if record.prediction else ""
    ax.set_title(f"{record.slide_id}:{predicted} ({branch}, {cfg.scale})", fontsize=10)
    ax.set_axis_off()
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label=f"{branch} ({cfg.scale})")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
