"""UMAP scatter plots of feature files: PNG (matplotlib) and optional self-contained HTML."""

import html
import warnings
from pathlib import Path

import numpy as np

from glovita.configs.plot_umap import PlotUmapConfig
from glovita.datasets.precomputed_features import read_layout
from glovita.runtime.io import atomic_path

_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf"]  # fmt: skip


def load_points(path: Path) -> tuple[np.ndarray, np.ndarray, list[str], dict]:
    """Features (one row per instance, or per bag as the mean of its instances), labels, ids, file attributes."""
    import h5py

    layout = read_layout(path)
    with h5py.File(path, "r") as handle:
        features = np.asarray(handle["features"][:], dtype=np.float32)
        labels = np.asarray(handle["labels"][:])
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in handle["ids"][:]] if "ids" in handle else []
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in handle.attrs.items()}
    if layout.offsets is not None:
        features = np.stack(
            [features[a:b].mean(0) for a, b in zip(layout.offsets[:-1], layout.offsets[1:], strict=True)]
        )
    elif layout.kind == "bags":  # fixed-size bags (B, N, D)
        features = features.mean(axis=1)
    if not np.isfinite(features).all():
        raise ValueError(f"Feature file '{path}': 'features' holds NaN or infinite values; UMAP needs finite ones.")
    return features, labels, ids or [str(i) for i in range(len(labels))], attrs


def _save_png(embedding: np.ndarray, labels: np.ndarray, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 7), dpi=120)
    if np.issubdtype(labels.dtype, np.integer):
        classes = np.unique(labels)
        cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
        for i, label in enumerate(classes):
            points = embedding[labels == label]
            ax.scatter(points[:, 0], points[:, 1], s=6, color=cmap(i % cmap.N), label=str(label), alpha=0.8)
        ax.legend(title="label", markerscale=3, loc="best", fontsize=8, ncols=2 if len(classes) > 10 else 1)
    else:
        values = labels.reshape(len(labels), -1)[:, 0]
        scatter = ax.scatter(embedding[:, 0], embedding[:, 1], s=6, c=values, cmap="viridis")
        fig.colorbar(scatter, ax=ax, label="target")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("UMAP 1")
    ax.set_ylabel("UMAP 2")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _save_html(embedding: np.ndarray, labels: np.ndarray, ids: list[str], title: str, path: Path) -> None:
    """An SVG scatter in one HTML file; each point's tooltip shows its id and label. No scripts, no downloads."""
    low, high = embedding.min(0), embedding.max(0)
    scaled = (embedding - low) / np.where(high > low, high - low, 1) * 760 + 20
    classes = {label: i for i, label in enumerate(np.unique(labels))} if np.issubdtype(labels.dtype, np.integer) else {}
    circles = []
    for (x, y), label, sample_id in zip(scaled, labels, ids, strict=True):
        color = _PALETTE[classes[label] % len(_PALETTE)] if classes else "#1f77b4"
        tip = html.escape(f"{sample_id} | label {label}")
        circles.append(f'<circle cx="{x:.1f}" cy="{800 - y:.1f}" r="3" fill="{color}"><title>{tip}</title></circle>')
    legend = "".join(
        f'<span style="color:{_PALETTE[i % len(_PALETTE)]}">&#9679; {html.escape(str(label))}</span> '
        for label, i in classes.items()
    )
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body><h3>{html.escape(title)}</h3><p>{legend}</p>"
        f"<svg width='800' height='800' style='border:1px solid #ccc'>{''.join(circles)}</svg></body></html>"
    )
    with atomic_path(path) as tmp:
        tmp.write_text(page)


def plot_umap(cfg: PlotUmapConfig) -> tuple[Path, np.ndarray, np.ndarray]:
    """Embed the file's points with UMAP, save the plot(s); returns (png path, embedding, labels)."""
    features, labels, ids, attrs = load_points(cfg.features_file)
    rng = np.random.default_rng(cfg.seed)
    if cfg.max_points is not None and len(features) > cfg.max_points:
        keep = np.sort(rng.choice(len(features), cfg.max_points, replace=False))
        features, labels, ids = features[keep], labels[keep], [ids[i] for i in keep]
    if len(features) <= cfg.n_neighbors:
        raise ValueError(
            f"'{cfg.features_file}' has {len(features)} points, not more than n_neighbors={cfg.n_neighbors}. "
            "Lower --n_neighbors."
        )
    import umap

    reducer = umap.UMAP(n_neighbors=cfg.n_neighbors, min_dist=cfg.min_dist, metric=cfg.metric, random_state=cfg.seed)
    with warnings.catch_warnings():
        # umap-learn warns that a fixed seed means one thread; reproducibility is the point here.
        warnings.filterwarnings("ignore", message="n_jobs value", category=UserWarning)
        embedding = reducer.fit_transform(features)
    method = attrs.get("method", "unknown")
    title = f"UMAP of {cfg.features_file.name} (method {method}, {len(features)} points)"
    png = cfg.output_file or cfg.features_file.with_name(f"{cfg.features_file.stem}_umap.png")
    png.parent.mkdir(parents=True, exist_ok=True)
    _save_png(embedding, labels, title, png)
    if cfg.html:
        _save_html(embedding, labels, ids, title, png.with_suffix(".html"))
    return png, embedding, labels
