"""report.html: one self-contained page per run (and per cross-validation group), built from the files the run
wrote. No network and no JavaScript: charts are inline SVG drawn here, the run's PNG plots are embedded as data
URIs, configs sit in collapsible blocks, checkpoints are relative links.

Run page: learning curves (train/val loss, the best-checkpoint metric with the best epoch marked, learning
rate) from metrics.jsonl; test metrics; per-class table; ROC curves (test_roc.json); confusion matrix and
reliability diagram (their PNGs); config, resolved config and runtime info; links to the checkpoints.
Group page: the fold table of cv_summary.json with mean ± std, and links to each fold's page.
"""

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

from glovita.runtime.io import atomic_path, read_json, read_metrics, read_scores

_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
            "#17becf"]  # fmt: skip
_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{font-size:1.5em;margin-bottom:0}h2{font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
.sub{color:#666;margin-top:4px}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right;font-variant-numeric:tabular-nums}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}.facts td{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{border:1px solid #eee;padding:4px}
img{max-width:520px;border:1px solid #eee}img.wide{max-width:100%}
pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:420px}
.status-completed{color:#2a7d2a}.status-failed,.status-interrupted{color:#b22222}.status-preempted{color:#b8860b}
"""


def _number(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:.4g}"
    return html.escape(str(value))


def _finite(values: list[Any]) -> list[float]:
    return [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten apart) covering [low, high] with about `count`
    ticks; the first and last enclose the range."""
    if not high > low:
        low, high = low - 0.5, high + 0.5
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw * 0.999)
    first = math.floor(low / step + 1e-9) * step
    ticks = [first]
    while ticks[-1] < high - 1e-9 * step:
        ticks.append(first + len(ticks) * step)
    return [round(t, 12) for t in ticks]


def _tick_text(value: float, ticks: list[float]) -> str:
    """A tick value with as many decimals as the tick spacing needs (0.25 apart: 2; 5 apart: none)."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    fraction = f"{step:.10f}".rstrip("0").split(".")[1]
    text = f"{value:.{len(fraction)}f}"
    return "0" if float(text) == 0 else text


def _log_ticks(low: float, high: float) -> list[float]:
    """Decades (and 2 and 5 within them when the range spans under two decades) covering [10^low, 10^high]."""
    first, last = math.floor(low + 1e-9), math.ceil(high - 1e-9)
    last = max(last, first + 1)
    multiples = (1, 2, 5) if last - first <= 2 else (1,)
    ticks = [m * 10.0**e for e in range(first, last + 1) for m in multiples]
    inside = [t for t in ticks if 10**low * 0.999 <= t <= 10**high * 1.001]
    below = [t for t in ticks if t < 10**low * 0.999][-1:]
    above = [t for t in ticks if t > 10**high * 1.001][:1]
    return below + inside + above


def line_chart(
    title: str,
    series: dict[str, list[tuple[float, float]]],
    x_label: str,
    marker: tuple[float, float] | None = None,
    log_y: bool = False,
    square: bool = False,
    y_label: str = "",
) -> str:
    """An inline SVG line chart: one polyline per series, round axis ticks, axis labels, a legend under the plot
    (never over the data) and an optional marked point."""
    points = [(x, y) for line in series.values() for x, y in line if math.isfinite(y) and (y > 0 or not log_y)]
    if not points:
        return ""
    names = list(series)
    legend_rows = 0 if len(names) <= 1 and not square else math.ceil(len(names) / 3)
    width, plot_height = (360, 300) if square else (480, 256)
    left, right, top = 64, 14, 28
    bottom = 44 + 16 * legend_rows
    height = top + plot_height + bottom

    def ty(y: float) -> float:
        return math.log10(y) if log_y else y

    xs, ys = [p[0] for p in points], [ty(p[1]) for p in points]
    whole = not square and all(float(x).is_integer() for x in xs)  # epochs: ticks on whole epochs only
    if square:
        x_ticks = y_ticks = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    else:
        first, last = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
        inside = [t for t in nice_ticks(first, last, 6) if first <= t <= last]  # the axis spans the data exactly
        if whole:  # epochs: whole ticks only, every epoch of a short run
            inside = [t for t in inside if float(t).is_integer()]
            if last - first <= 8:
                inside = [float(e) for e in range(int(first), int(last) + 1)]
        spacing = inside[1] - inside[0] if len(inside) > 1 else last - first
        inside = [t for t in inside if t in (first, last) or min(t - first, last - t) > spacing / 2]
        x_ticks = sorted({first, *inside, last})
        low, high = min(ys), max(ys)
        y_ticks = _log_ticks(low, high) if log_y else nice_ticks(low, high, 5)
    x0, x1 = min(x_ticks), max(x_ticks)
    if x1 <= x0:
        x1 = x0 + 1
    y0, y1 = (ty(min(y_ticks)), ty(max(y_ticks))) if not square else (0.0, 1.0)
    if y1 <= y0:
        y1 = y0 + 1

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return top + (1 - (ty(y) - y0) / (y1 - y0)) * plot_height

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="chart" role="img" '
             f'aria-label="{html.escape(title)}">',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{plot_height}" fill="none" '
             'stroke="#999"/>']  # fmt: skip
    for value in y_ticks:
        gy = py(value)
        label_y = f"{value:g}" if log_y else _tick_text(value, y_ticks)
        parts.append(f'<line x1="{left}" y1="{gy:.1f}" x2="{width - right}" y2="{gy:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 4}" y="{gy + 4:.1f}" text-anchor="end" font-size="10">{label_y}</text>')
    for fx in x_ticks:
        label_x = f"{fx:.0f}" if whole else _tick_text(fx, x_ticks)
        parts.append(f'<text x="{px(fx):.1f}" y="{top + plot_height + 14}" text-anchor="middle" font-size="10">'
                     f"{label_x}</text>")  # fmt: skip
    parts.append(f'<text x="{(left + width - right) / 2}" y="{top + plot_height + 32}" text-anchor="middle" '
                 f'font-size="11">{html.escape(x_label)}</text>')  # fmt: skip
    vertical = y_label or (names[0] if len(names) == 1 else "")
    if vertical:
        cy = top + plot_height / 2
        parts.append(f'<text x="14" y="{cy:.1f}" text-anchor="middle" font-size="11" '
                     f'transform="rotate(-90 14 {cy:.1f})">{html.escape(vertical)}</text>')  # fmt: skip
    if square:
        parts.append(f'<line x1="{px(0):.1f}" y1="{py(0):.1f}" x2="{px(1):.1f}" y2="{py(1):.1f}" stroke="#bbb" '
                     'stroke-dasharray="4 3"/>')  # fmt: skip
    column = (width - left - right) / 3
    for index, (name, line) in enumerate(series.items()):
        colour = _COLOURS[index % len(_COLOURS)]
        kept = [(x, y) for x, y in line if math.isfinite(y) and (y > 0 or not log_y)]
        if not kept:
            continue
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in kept)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{coords}"/>')
        if len(kept) == 1:
            parts.append(f'<circle cx="{px(kept[0][0]):.1f}" cy="{py(kept[0][1]):.1f}" r="3" fill="{colour}"/>')
        if legend_rows:
            lx = left + column * (index % 3)
            ly = top + plot_height + 50 + 16 * (index // 3)
            parts.append(f'<line x1="{lx:.1f}" y1="{ly - 4}" x2="{lx + 16:.1f}" y2="{ly - 4}" stroke="{colour}" '
                         f'stroke-width="2"/><text x="{lx + 20:.1f}" y="{ly}" font-size="10">{html.escape(name)}'
                         "</text>")  # fmt: skip
    if marker is not None and math.isfinite(marker[1]):
        parts.append(f'<circle cx="{px(marker[0]):.1f}" cy="{py(marker[1]):.1f}" r="5" fill="none" stroke="#000" '
                     'stroke-width="1.5"><title>best checkpoint</title></circle>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def _table(header: list[str], rows: list[list[Any]], css: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header) if any(header) else ""
    body = "".join("<tr>" + "".join(f"<td>{_number(c)}</td>" for c in row) + "</tr>" for row in rows)
    style = f' class="{css}"' if css else ""
    return f"<table{style}>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def _png(path: Path, alt: str, wide: bool = False) -> str:
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    size = ' class="wide"' if wide else ""
    return f'<img alt="{html.escape(alt)}"{size} src="data:image/png;base64,{data}">'


def _details(title: str, content: Any) -> str:
    if content is None:
        return ""
    text = html.escape(json.dumps(content, indent=1))
    return f"<details><summary>{html.escape(title)}</summary><pre>{text}</pre></details>"


LIVE_REFRESH_SECONDS = 30
"""A running run's report asks the browser to reload it this often (it is rewritten after every epoch)."""


def _page(title: str, body: list[str], refresh: bool = False) -> str:
    meta = f'<meta http-equiv="refresh" content="{LIVE_REFRESH_SECONDS}">' if refresh else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{meta}<title>{html.escape(title)}</title>'
            f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>")  # fmt: skip


def _series_of(epochs: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    """(epoch number as the console counts it, value) of every record holding `key`."""
    return [(float(e["epoch"]) + 1, float(e[key])) for e in epochs if isinstance(e.get(key), int | float)]


def _charted_metrics(epochs: list[dict[str, Any]]) -> list[str]:
    """Every validation metric the records hold (not per-class values, timings or the loss), in first-seen order."""
    keys: list[str] = []
    for record in epochs:
        keys += [k for k in record if k.startswith("val_") and k != "val_loss" and "_class_" not in k and k not in keys
                 and not k.endswith(("_seconds", "_per_second"))]  # fmt: skip
    return keys


def _curves(epochs: list[dict[str, Any]], best_metric: str | None, mode: str) -> list[str]:
    """The loss (train and validation), every validation metric (the training value beside it where the step
    logs one; the best-checkpoint metric first, its best epoch marked) and the learning rates."""
    if not epochs:
        return ["<p>No epoch finished yet (metrics.jsonl is empty).</p>"]
    charts = []
    losses = {key: _series_of(epochs, key) for key in ("train_loss", "val_loss")}
    charts.append(line_chart("loss", {k: v for k, v in losses.items() if v}, "epoch", y_label="loss"))
    metrics = _charted_metrics(epochs)
    if best_metric in metrics:
        metrics.remove(best_metric)
        metrics.insert(0, best_metric)
    for key in metrics:
        values = _series_of(epochs, key)
        marker = None
        finite = [v for v in values if math.isfinite(v[1])]
        if key == best_metric and finite:
            marker = (max if mode == "max" else min)(finite, key=lambda p: p[1])  # the run's own best-checkpoint rule
        series = {key: values}
        trained = _series_of(epochs, "train_" + key.removeprefix("val_"))
        if trained:
            series = {"train": trained, "val": values}
        charts.append(line_chart(key, series, "epoch", marker, y_label=key.removeprefix("val_")))
    rates = {key: _series_of(epochs, key) for key in ("lr", "lr_encoder")}
    if any(rates.values()):
        # A log axis only while every rate is positive: a schedule that ends at 0 (cosine) keeps its last epoch.
        positive = all(y > 0 for line in rates.values() for _, y in line if math.isfinite(y))
        charts.append(line_chart("learning rate", {k: v for k, v in rates.items() if v}, "epoch", log_y=positive,
                                 y_label="learning rate"))  # fmt: skip
    return ['<div class="charts">', *charts, "</div>"]


def _per_class(tested: dict[str, Any], class_names: list[str], confusion: dict[str, Any]) -> str:
    """Precision, recall and support (from test_confusion.json's counts) beside the per-class metrics of
    test_metrics.json."""
    kinds = sorted({key.split("_class_")[0] for key in tested if "_class_" in key})
    counts = confusion.get("counts")
    if not kinds and not counts:
        return ""
    indices = sorted(
        {int(key.rsplit("_", 1)[1]) for key in tested if "_class_" in key and key.rsplit("_", 1)[1].isdigit()}
    )
    if counts:
        indices = sorted({*indices, *range(len(counts))})
    rows = []
    for i in indices:
        name = class_names[i] if i < len(class_names) else str(i)
        row: list[Any] = [name]
        if counts:
            support = sum(counts[i]) if i < len(counts) else 0
            predicted = sum(row_counts[i] for row_counts in counts) if i < len(counts) else 0
            hits = counts[i][i] if i < len(counts) else 0
            row += [hits / predicted if predicted else float("nan"), hits / support if support else float("nan"),
                    support]  # fmt: skip
        rows.append(row + [tested.get(f"{kind}_class_{i}", float("nan")) for kind in kinds])
    header = ["class", *(["precision", "recall", "support"] if counts else []), *(k.removeprefix("test_") for k in
                                                                                   kinds)]  # fmt: skip
    return "<h2>Per class (test)</h2>" + _table(header, rows)


def _roc(run_dir: Path, class_names: list[str], tested: dict[str, Any]) -> str:
    curves = read_json(run_dir / "test_roc.json")
    if not curves:
        return ""
    series = {}
    for key, curve in list(curves.items())[:10]:
        index = int(key)
        name = class_names[index] if index < len(class_names) else key
        auc = tested.get(f"test_auroc_class_{index}")
        if isinstance(auc, int | float) and math.isfinite(auc):
            name = f"{name} (AUC {auc:.3f})"
        points = sorted(zip(_finite(curve.get("fpr", [])), _finite(curve.get("tpr", [])), strict=False))
        series[name] = points
    if len(curves) == 2 and len(series) == 2:  # binary: the positive class's curve says it all
        series = dict(list(series.items())[1:])
    chart = line_chart("ROC (test, one vs rest)", series, "false positive rate", square=True,
                       y_label="true positive rate")  # fmt: skip
    more = f"<p>ROC curves of the first 10 of {len(curves)} classes.</p>" if len(curves) > 10 else ""
    return chart + more


def _best(
    epochs: list[dict[str, Any]], info: dict[str, Any], metric: str | None, mode: str
) -> tuple[int | None, float]:
    """best.pt's epoch (0-based, runtime_info.json's once the run ended, else by the run's rule over the records)
    and its value of the best-checkpoint metric."""
    by_epoch = {int(e["epoch"]): e.get(metric) for e in epochs if metric}
    epoch = info.get("best_epoch")
    if not isinstance(epoch, int):
        finite = [(k, float(v)) for k, v in by_epoch.items() if isinstance(v, int | float) and math.isfinite(v)]
        if not finite:
            return None, float("nan")
        epoch = (max if mode == "max" else min)(finite, key=lambda p: p[1])[0]
    value = by_epoch.get(epoch)
    return epoch, float(value) if isinstance(value, int | float) else float("nan")


def _headline(tested: dict[str, Any], metric: str | None) -> str | None:
    """The test metric that matches the best-checkpoint metric (else the first test metric that is not the loss)."""
    if metric and f"test_{metric.removeprefix('val_')}" in tested:
        return f"test_{metric.removeprefix('val_')}"
    return next((k for k in tested if k != "test_loss" and "_class_" not in k), None)


def _settings(config: dict[str, Any], resolved: dict[str, Any]) -> str:
    """The key training settings in one line: optimizer, learning rate, weight decay, batch, precision,
    augmentation, seed."""
    optimizer = resolved.get("optimizer") or config.get("optimizer") or {}
    training = config.get("training", {})
    batch = (resolved.get("dataloading") or {}).get("batch_size", config.get("dataloading", {}).get("batch_size"))
    policy = (resolved.get("augmentation") or {}).get("train_policy") if isinstance(resolved.get("augmentation"),
                                                                                    dict) else None  # fmt: skip
    parts = [f"{optimizer.get('name', '?')} lr {optimizer.get('lr', '?'):g}" if isinstance(optimizer.get("lr"), int |
             float) else str(optimizer.get("name", "?")),  # fmt: skip
             f"weight decay {optimizer.get('weight_decay')}", f"batch {batch}",
             f"precision {training.get('precision', '32')}", f"seed {training.get('seed', '?')}"]  # fmt: skip
    if policy:
        parts.insert(4, f"augmentation {policy}")
    return ", ".join(parts)


def _worst_errors(run_dir: Path) -> str:
    """The worst test errors: the grid the run drew and a table of the samples' ids."""
    records = read_json(run_dir / "test_worst_errors.json").get("samples")
    if not isinstance(records, list):
        return ""
    if not records:
        return "<h2>Worst test errors</h2><p>best.pt got every test sample right.</p>"
    rows = [[r.get("id", ""), r.get("true", ""), r.get("predicted", "")] for r in records]
    grid = _png(run_dir / "test_worst_errors.png", "worst test errors", wide=True)
    return "<h2>Worst test errors</h2>" + grid + _table(["sample", "true", "predicted"], rows)


def write_run_report(run_dir: Path) -> Path:
    """Write RUN_DIR/report.html from the run's files (any of them may be missing); returns its path."""
    config = read_json(run_dir / "config.json")
    resolved = read_json(run_dir / "resolved_config.json")
    info = read_json(run_dir / "runtime_info.json")
    tested = read_scores(run_dir / "test_metrics.json")
    epochs = read_metrics(run_dir)
    class_names = list(resolved.get("class_names") or [])
    best_metric = resolved.get("best_metric")
    encoder = config.get("model", {}).get("encoder", {})
    head = config.get("model", {}).get("head", {}).get("head_type", "?")
    status = str(info.get("status", "unknown"))
    group, fold = resolved.get("group", run_dir.parent.name), resolved.get("fold", run_dir.name)
    title = f"{config.get('data', {}).get('dataset', '?')} / {group} / fold {fold}"
    wall = info.get("wall_seconds")
    mode = resolved.get("best_metric_mode", "min")
    best_epoch, best_value = _best(epochs, info, best_metric, mode)
    training = config.get("training", {})
    facts = [
        ("model", f"{encoder.get('type', encoder.get('encoder_type', '?'))} + {head}"),
        ("status", status),
        ("epochs", f"{info.get('epochs_completed', len(epochs))} of {training.get('epochs', '?')}"
         + (" (stopped early)" if info.get("stopped_early") else "")),
        ("best checkpoint", f"epoch {best_epoch + 1}: {best_metric} {_number(best_value)} ({mode}imised)"
         if best_epoch is not None else f"{best_metric} ({mode}imised), no epoch yet"),
    ]  # fmt: skip
    headline = _headline(tested, best_metric)
    if headline is not None:
        facts.append((f"test {headline.removeprefix('test_')} (best.pt)", _number(tested[headline])))
    facts += [
        ("training", _settings(config, resolved)),
        ("data", " · ".join(f"{split} {count}" for split, count in (resolved.get("dataset_sizes") or {}).items())
         or "–"),
        ("wall time", f"{wall:.1f} s" if isinstance(wall, int | float) else "–"),
        ("device", info.get("device_name", info.get("device", "?"))),
        ("started", info.get("started_at", "?")),
        ("run it again", f"glovita_train --config {run_dir / 'config.json'} --group {group}_again"),
        ("versions", " · ".join(f"{k} {v}" for k, v in (info.get("versions") or {}).items()) or "–"),
    ]  # fmt: skip
    if status == "preempted" and info.get("resume_command"):
        facts.append(("continue with", str(info["resume_command"])))
    elif status == "running" and info.get("expected_end"):
        facts.append(("expected end", str(info["expected_end"])))
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="sub">GloViTa run report · <span class="status-{html.escape(status)}">{html.escape(status)}'
        f"</span> · {html.escape(str(run_dir))}</p>",
        _table(["", ""], [[k, v] for k, v in facts], css="facts"),
        "<h2>Learning curves</h2>",
        *_curves(epochs, best_metric, mode),
    ]
    if tested:
        main = [[k.removeprefix("test_"), v] for k, v in tested.items() if "_class_" not in k]
        body += ["<h2>Test metrics (best.pt)</h2>", _table(["metric", "value"], main)]
    body.append(_per_class(tested, class_names, read_json(run_dir / "test_confusion.json")))
    plots = [_roc(run_dir, class_names, tested), _png(run_dir / "confusion_matrix.png", "confusion matrix"),
             _png(run_dir / "reliability_diagram.png", "reliability diagram"),
             _png(run_dir / "val_overlays.png", "validation images, true and predicted label maps"),
             _png(run_dir / "test_overlays.png", "test images, true and predicted label maps"),
             _png(run_dir / "val_predictions.png", "validation images, targets and predicted images"),
             _png(run_dir / "test_predictions.png", "test images, targets and predicted images"),
             _png(run_dir / "val_saliency.png", "validation images, annotated segments and saliency maps"),
             _png(run_dir / "test_saliency.png", "test images, annotated segments and saliency maps")]  # fmt: skip
    if any(plots):
        body += ["<h2>Test plots</h2>", '<div class="charts">', *plots, "</div>"]
    body.append(_worst_errors(run_dir))
    preview = _png(run_dir / "augmentations.png", "training augmentation preview", wide=True)
    if preview:
        body += ["<h2>Training augmentation</h2>", preview]
    checkpoints = sorted((run_dir / "checkpoints").glob("*.pt")) if (run_dir / "checkpoints").is_dir() else []
    if checkpoints:
        links = " · ".join(f'<a href="checkpoints/{html.escape(p.name)}">{html.escape(p.name)}</a> '
                           f"({p.stat().st_size / 2**20:.1f} MB)" for p in checkpoints)  # fmt: skip
        body += ["<h2>Checkpoints</h2>", f"<p>{links}</p>"]
    body += [
        "<h2>Configuration and runtime</h2>",
        _details("config.json", config or None),
        _details("resolved_config.json", resolved or None),
        _details("runtime_info.json", info or None),
    ]
    path = run_dir / "report.html"
    with atomic_path(path) as tmp:
        tmp.write_text(_page(f"GloViTa · {title}", body, refresh=status == "running"), encoding="utf-8")
    return path


def write_group_report(group_dir: Path) -> Path:
    """Write GROUP_DIR/report.html for a cross-validation group (cv_summary.json): folds, mean ± std, links."""
    summary = read_json(group_dir / "cv_summary.json")
    if "per_fold" not in summary:
        raise ValueError(f"'{group_dir}' has no cv_summary.json; it is not a cross-validation group folder.")
    per_fold: dict[str, dict[str, float]] = summary["per_fold"]
    keys = sorted({k for metrics in per_fold.values() for k in metrics if "_class_" not in k})
    rows: list[list[Any]] = []
    for fold, metrics in per_fold.items():
        report = group_dir / fold / "report.html"
        if (group_dir / fold).is_dir() and not report.is_file():
            write_run_report(group_dir / fold)
        rows.append([fold, *(metrics.get(k, float("nan")) for k in keys)])
    stats = summary.get("metrics", {})
    rows.append(["mean", *(stats.get(k, {}).get("mean", float("nan")) for k in keys)])
    rows.append(["std", *(stats.get(k, {}).get("std", float("nan")) for k in keys)])
    links = " · ".join(f'<a href="{html.escape(f)}/report.html">fold {html.escape(f)}</a>' for f in per_fold)
    body = [
        f"<h1>{html.escape(group_dir.name)}: cross-validation</h1>",
        f'<p class="sub">GloViTa group report · {len(per_fold)} folds · {html.escape(str(group_dir))}</p>',
        "<h2>Test metrics per fold</h2>",
        _table(["fold", *(k.removeprefix("test_") for k in keys)], rows),
        f"<p>{html.escape(str(summary.get('std', '')))}</p>",
        f"<h2>Fold reports</h2><p>{links}</p>",
        _details("cv_summary.json", summary),
    ]
    path = group_dir / "report.html"
    with atomic_path(path) as tmp:
        tmp.write_text(_page(f"GloViTa · {group_dir.name} (CV)", body), encoding="utf-8")
    return path


def write_compare_report(
    path: Path, columns: list[str], rows: list[dict[str, Any]], curves: dict[str, list[dict[str, Any]]]
) -> Path:
    """compare.html: the runs' learning curves overlaid (train and validation loss, and each validation metric a
    run selects its best checkpoint by), then the comparison table; one self-contained file, no JavaScript.
    `curves`: each run's metrics.jsonl records, by the run's name in the table."""
    keys = ["train_loss", "val_loss"]
    keys += sorted({k for records in curves.values() for r in records for k in r if k.startswith("val_")} - {
        "val_loss"} & set(_selected(rows)))  # fmt: skip
    charts = []
    for key in keys:
        series = {
            name: [(float(r["epoch"]) + 1, float(r[key])) for r in records if isinstance(r.get(key), int | float)]
            for name, records in curves.items()
        }
        chart = line_chart(key, {name: line for name, line in series.items() if line}, "epoch")
        if chart:
            charts.append(chart)
    table = _table(columns, [[row.get(c, "") for c in columns] for row in rows])
    body = [
        "<h1>Run comparison</h1>",
        f'<p class="sub">GloViTa · {len(rows)} runs · {html.escape(str(path.parent))}</p>',
        "<h2>Learning curves</h2>",
        '<div class="charts">',
        *charts,
        "</div>",
        "<h2>Runs</h2>",
        table,
    ]
    with atomic_path(path) as tmp:
        tmp.write_text(_page("GloViTa · run comparison", body), encoding="utf-8")
    return path


def _selected(rows: list[dict[str, Any]]) -> list[str]:
    """The validation metrics the runs select best.pt by (the table's best_<metric> columns)."""
    return [key.removeprefix("best_") for row in rows for key in row if key.startswith("best_val_")]
