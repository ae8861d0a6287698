"""Cross-validation: the folds of one group trained one after another, then a group-level cv_summary.json.

Folds that already finished are read back, not retrained; with --training.resume (or resume_mode auto) an
interrupted fold continues from its last.pt and folds not started yet start fresh, so a killed CV run is resumed
with the same command. resume_mode best and restart apply to each fold.
"""

import json
import math
import statistics
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from glovita.configs.root import RootConfig
from glovita.datasets.factory import check_folds
from glovita.runtime.io import nan_for_null, save_json
from glovita.runtime.progress import print_line, set_quiet
from glovita.training.distributed import DistContext, init_distributed
from glovita.training.resolve import resolve_shared_group, run_directory


@dataclass(frozen=True)
class CvResult:
    summary_path: Path
    summary: dict[str, Any]


def _finished(run_dir: Path) -> dict[str, float] | None:
    """The test metrics of a fold that completed, else None."""
    try:
        info = json.loads((run_dir / "runtime_info.json").read_text())
        if info.get("status") == "completed":
            return nan_for_null(json.loads((run_dir / "test_metrics.json").read_text()))
    except (OSError, ValueError):
        pass
    return None


def summarize(group: str, per_fold: dict[int, dict[str, float]]) -> dict[str, Any]:
    """Mean and sample standard deviation (n-1) of every test metric over the folds that report it."""
    keys = sorted({k for metrics in per_fold.values() for k in metrics})
    summary: dict[str, Any] = {}
    for key in keys:
        values = [m[key] for m in per_fold.values() if key in m and not math.isnan(m[key])]
        if values:
            std = statistics.stdev(values) if len(values) > 1 else 0.0
            summary[key] = {"mean": statistics.fmean(values), "std": std, "n": len(values)}
    return {
        "group": group,
        "folds": sorted(per_fold),
        "std": "sample standard deviation (n - 1) over folds",
        "metrics": summary,
        "per_fold": {str(fold): metrics for fold, metrics in sorted(per_fold.items())},
    }


def print_cv_table(summary: dict[str, Any]) -> None:
    """Folds as rows, headline test metrics as columns, then the mean and std rows."""
    from rich.console import Console
    from rich.table import Table

    headline = ("accuracy", "balanced_accuracy", "f1_macro", "auroc", "ece", "mae", "mse", "r2", "pearson", "map")
    columns = [f"test_{k}" for k in (*headline, "loss") if f"test_{k}" in summary["metrics"]][:6]
    table = Table(title=f"Cross-validation: {summary['group']}")
    table.add_column("fold")
    for key in columns:
        table.add_column(key.removeprefix("test_"), justify="right")
    for fold, metrics in summary["per_fold"].items():
        table.add_row(fold, *(f"{metrics[k]:.4f}" if k in metrics else "-" for k in columns))
    stats = summary["metrics"]
    table.add_row("mean", *(f"{stats[k]['mean']:.4f}" for k in columns), style="bold")
    table.add_row("std", *(f"{stats[k]['std']:.4f}" for k in columns))
    Console(width=max(100, Console().width)).print(table)


def run_cross_validation(cfg: RootConfig, argv: list[str] | None = None, dist: DistContext | None = None) -> CvResult:
    """Train every fold of cfg.folds in one group; write <experiments_dir>/<dataset>/<group>/cv_summary.json."""
    from glovita.training.run import run_training

    dist = dist if dist is not None else init_distributed(cfg.training.device)
    set_quiet(not dist.is_main)
    now = datetime.now()
    group = resolve_shared_group(cfg, dist, now)
    check_folds(cfg.data, cfg.folds)
    per_fold: dict[int, dict[str, float]] = {}
    for fold in cfg.folds:
        data = cfg.data.model_copy(update={"fold": fold})
        fold_cfg = cfg.model_copy(update={"data": data, "folds": (), "group": group})
        run_dir = run_directory(fold_cfg, group)
        done = _finished(run_dir)
        mode = cfg.training.effective_resume_mode
        if done is not None and mode in ("strict", "auto"):
            print_line(f"fold {fold}: already completed in {run_dir}; using its test metrics.")
            per_fold[fold] = done
            continue
        # strict or auto: each fold continues when it has a checkpoint and starts when it has none
        fold_mode = "auto" if mode == "strict" else mode
        training = fold_cfg.training.model_copy(update={"resume": False, "resume_mode": fold_mode})
        print_line(f"fold {fold} ({len(per_fold) + 1}/{len(cfg.folds)}) -> {run_dir}")
        result = run_training(fold_cfg.model_copy(update={"training": training}), argv, dist)
        per_fold[fold] = result.test_metrics
    summary = summarize(group, per_fold)
    path = cfg.experiments_dir / cfg.data.dataset / group / "cv_summary.json"
    if dist.is_main:
        save_json(summary, path)
        from glovita.reports.html import write_group_report

        print_cv_table(summary)
        print_line(f"CV summary: {path}; report: {write_group_report(path.parent)}")
    return CvResult(path, summary)
