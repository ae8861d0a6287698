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
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{border:1px solid #eee;padding:4px}
img{max-width:520px;border:1px solid #eee}pre{background:#f7f7f7;padding:8px;overflow:auto;max-height:420px}
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


def line_chart(
    title: str,
    series: dict[str, list[tuple[float, float]]],
    x_label: str,
    marker: tuple[float, float] | None = None,
    log_y: bool = False,
    square: bool = False,
) -> str:
    """An inline SVG line chart: one polyline per series, axes with 5 ticks, a legend, an optional marked point."""
    width, height = (360, 360) if square else (480, 300)
    left, right, top, bottom = 56, 12, 28, 44
    points = [(x, y) for line in series.values() for x, y in line if math.isfinite(y) and (y > 0 or not log_y)]
    if not points:
        return ""

    def ty(y: float) -> float:
        return math.log10(y) if log_y else y

    xs, ys = [p[0] for p in points], [ty(p[1]) for p in points]
    x0, x1 = (0.0, 1.0) if square else (min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1)
    y0, y1 = (0.0, 1.0) if square else (min(ys), max(ys))
    if y1 <= y0:
        y0, y1 = y0 - 0.5, y1 + 0.5
    pad = 0.0 if square else (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return top + (1 - (ty(y) - y0) / (y1 - y0)) * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" class="chart" role="img" '
             f'aria-label="{html.escape(title)}">',
             f'<text x="{width / 2}" y="16" text-anchor="middle" font-size="13">{html.escape(title)}</text>',
             f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" fill="none" '
             'stroke="#999"/>']  # fmt: skip
    for i in range(5):
        fy = y0 + (y1 - y0) * i / 4
        label_y = f"{10**fy:.2g}" if log_y else f"{fy:.3g}"
        gy = top + (height - top - bottom) * (1 - i / 4)
        parts.append(f'<line x1="{left}" y1="{gy:.1f}" x2="{width - right}" y2="{gy:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 4}" y="{gy + 4:.1f}" text-anchor="end" font-size="10">{label_y}</text>')
    whole = not square and all(float(x).is_integer() for x in xs)  # epochs: ticks on whole epochs only
    step = max(1, math.ceil((x1 - x0) / 5)) if whole else 0
    ticks = [x0 + k * step for k in range(int((x1 - x0) // step) + 1)] if whole else [x0 + (x1 - x0) * i / 4 for i in
                                                                                       range(5)]  # fmt: skip
    for fx in ticks:
        label_x = f"{fx:.0f}" if whole else f"{fx:.2g}"
        parts.append(f'<text x="{px(fx):.1f}" y="{height - bottom + 14}" text-anchor="middle" font-size="10">'
                     f"{label_x}</text>")  # fmt: skip
    parts.append(f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle" font-size="11">'
                 f"{html.escape(x_label)}</text>")  # fmt: skip
    if square:
        parts.append(f'<line x1="{px(0):.1f}" y1="{py(0):.1f}" x2="{px(1):.1f}" y2="{py(1):.1f}" stroke="#bbb" '
                     'stroke-dasharray="4 3"/>')  # fmt: skip
    for index, (name, line) in enumerate(series.items()):
        colour = _COLOURS[index % len(_COLOURS)]
        kept = [(x, y) for x, y in line if math.isfinite(y) and (y > 0 or not log_y)]
        if not kept:
            continue
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in kept)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" points="{coords}"/>')
        if len(kept) == 1:
            parts.append(f'<circle cx="{px(kept[0][0]):.1f}" cy="{py(kept[0][1]):.1f}" r="3" fill="{colour}"/>')
        ly = top + 14 + 14 * index
        parts.append(f'<line x1="{width - right - 120}" y1="{ly - 4}" x2="{width - right - 104}" y2="{ly - 4}" '
                     f'stroke="{colour}" stroke-width="2"/><text x="{width - right - 100}" y="{ly}" font-size="10">'
                     f"{html.escape(name)}</text>")  # fmt: skip
    if marker is not None and math.isfinite(marker[1]):
        parts.append(f'<circle cx="{px(marker[0]):.1f}" cy="{py(marker[1]):.1f}" r="5" fill="none" stroke="#000" '
                     'stroke-width="1.5"><title>best checkpoint</title></circle>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_number(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _png(path: Path, alt: str) -> str:
    if not path.is_file():
        return ""
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


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


def _curves(epochs: list[dict[str, Any]], best_metric: str | None, mode: str) -> list[str]:
    if not epochs:
        return ["<p>No epoch finished yet (metrics.jsonl is empty).</p>"]
    x = [float(e["epoch"]) + 1 for e in epochs]
    charts = []
    losses = {key: [(xi, float(e[key])) for xi, e in zip(x, epochs, strict=True) if isinstance(e.get(key), int | float)]
              for key in ("train_loss", "val_loss")}  # fmt: skip
    charts.append(line_chart("loss", {k: v for k, v in losses.items() if v}, "epoch"))
    if best_metric and best_metric != "val_loss":
        values = [(xi, float(e[best_metric])) for xi, e in zip(x, epochs, strict=True)
                  if isinstance(e.get(best_metric), int | float)]  # fmt: skip
        finite = [v for v in values if math.isfinite(v[1])]
        marker = None
        if finite:
            marker = (max if mode == "max" else min)(finite, key=lambda p: p[1])  # the run's own best-checkpoint rule
        charts.append(line_chart(best_metric, {best_metric: values}, "epoch", marker))
    rates = {key: [(xi, float(e[key])) for xi, e in zip(x, epochs, strict=True) if isinstance(e.get(key), int | float)]
             for key in ("lr", "lr_encoder")}  # fmt: skip
    if any(rates.values()):
        # A log axis only while every rate is positive: a schedule that ends at 0 (cosine) keeps its last epoch.
        positive = all(y > 0 for line in rates.values() for _, y in line if math.isfinite(y))
        charts.append(line_chart("learning rate", {k: v for k, v in rates.items() if v}, "epoch", log_y=positive))
    return ['<div class="charts">', *charts, "</div>"]


def _per_class(tested: dict[str, Any], class_names: list[str]) -> str:
    kinds = sorted({key.split("_class_")[0] for key in tested if "_class_" in key})
    if not kinds:
        return ""
    indices = sorted(
        {int(key.rsplit("_", 1)[1]) for key in tested if "_class_" in key and key.rsplit("_", 1)[1].isdigit()}
    )
    rows = []
    for i in indices:
        name = class_names[i] if i < len(class_names) else str(i)
        rows.append([name, *(tested.get(f"{kind}_class_{i}", float("nan")) for kind in kinds)])
    header = ["class", *(kind.removeprefix("test_") for kind in kinds)]
    return "<h2>Per class (test)</h2>" + _table(header, rows)


def _roc(run_dir: Path, class_names: list[str]) -> str:
    curves = read_json(run_dir / "test_roc.json")
    if not curves:
        return ""
    series = {}
    for key, curve in list(curves.items())[:10]:
        index = int(key)
        name = class_names[index] if index < len(class_names) else key
        points = sorted(zip(_finite(curve.get("fpr", [])), _finite(curve.get("tpr", [])), strict=False))
        series[name] = points
    if len(curves) == 2 and len(series) == 2:  # binary: the positive class's curve says it all
        series = dict(list(series.items())[1:])
    chart = line_chart("ROC (test, one vs rest)", series, "false positive rate", square=True)
    more = f"<p>ROC curves of the first 10 of {len(curves)} classes.</p>" if len(curves) > 10 else ""
    return chart + more


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
    facts = [
        ("model", f"{encoder.get('type', encoder.get('encoder_type', '?'))} + {head}"),
        ("status", status),
        ("epochs", f"{info.get('epochs_completed', len(epochs))} of {config.get('training', {}).get('epochs', '?')}"
         + (" (stopped early)" if info.get("stopped_early") else "")),
        ("wall time", f"{wall:.1f} s" if isinstance(wall, int | float) else "–"),
        ("device", info.get("device_name", info.get("device", "?"))),
        ("started", info.get("started_at", "?")),
        ("best checkpoint", f"{best_metric} ({resolved.get('best_metric_mode', '?')})"),
    ]  # fmt: skip
    if status == "preempted" and info.get("resume_command"):
        facts.append(("continue with", str(info["resume_command"])))
    elif status == "running" and info.get("expected_end"):
        facts.append(("expected end", str(info["expected_end"])))
    body = [
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="sub">GloViTa run report · <span class="status-{html.escape(status)}">{html.escape(status)}'
        f"</span> · {html.escape(str(run_dir))}</p>",
        _table(["", ""], [[k, v] for k, v in facts]),
        "<h2>Learning curves</h2>",
        *_curves(epochs, best_metric, resolved.get("best_metric_mode", "min")),
    ]
    if tested:
        main = [[k.removeprefix("test_"), v] for k, v in tested.items() if "_class_" not in k]
        body += ["<h2>Test metrics (best.pt)</h2>", _table(["metric", "value"], main)]
    body.append(_per_class(tested, class_names))
    plots = [_roc(run_dir, class_names), _png(run_dir / "confusion_matrix.png", "confusion matrix"),
             _png(run_dir / "reliability_diagram.png", "reliability diagram"),
             _png(run_dir / "val_overlays.png", "validation images, true and predicted label maps"),
             _png(run_dir / "test_overlays.png", "test images, true and predicted label maps"),
             _png(run_dir / "val_saliency.png", "validation images, annotated segments and saliency maps"),
             _png(run_dir / "test_saliency.png", "test images, annotated segments and saliency maps")]  # fmt: skip
    if any(plots):
        body += ["<h2>Test plots</h2>", '<div class="charts">', *plots, "</div>"]
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
