"""Cross-validation: --folds trains every fold in one group, writes cv_summary.json, resumes a partial CV."""

import json
import statistics
from pathlib import Path

import pytest

from glovita.cli.train import main, parse_root_config
from tests.conftest import FAST, write_images


@pytest.fixture
def kfold_dataset(tmp_path: Path) -> Path:
    """images/<class>/*.png with splits.json holding partitions "0", "1", "2" and a test list."""
    root = tmp_path / "kfold"
    ids = []
    for label, name in enumerate("ab"):
        ids += [p.relative_to(root / "images").as_posix() for p in write_images(root / "images" / name, label, 15)]
    a, b = ids[:15], ids[15:]
    splits = {str(k): a[k * 4 : k * 4 + 4] + b[k * 4 : k * 4 + 4] for k in range(3)}
    splits["test"] = a[12:] + b[12:]
    (root / "splits.json").write_text(json.dumps(splits))
    return root


def _args(root: Path, experiments: Path, *extra: str) -> list[str]:
    return [
        "--data.dataset", "generic_image_dataset", "--data.data_root_dir", str(root), "--data.num_classes", "2",
        "--experiments_dir", str(experiments), "--group", "cv", "--training.epochs", "3", *FAST,
        "--dataloading.batch_size", "4", "--optimizer.lr", "3e-3", *extra,
    ]  # fmt: skip


def test_folds_share_a_group_and_are_summarized(kfold_dataset: Path, tmp_path: Path, capsys) -> None:
    experiments = tmp_path / "exp"
    main(_args(kfold_dataset, experiments, "--folds", "0", "1"))
    group = experiments / "generic_image_dataset" / "cv"
    first = {fold: (group / str(fold) / "checkpoints" / "last.pt").stat().st_mtime_ns for fold in (0, 1)}
    # The same command with fold 2 added and --training.resume reuses folds 0 and 1.
    main(_args(kfold_dataset, experiments, "--folds", "0", "1", "2", "--training.resume"))
    assert {fold: (group / str(fold) / "checkpoints" / "last.pt").stat().st_mtime_ns for fold in (0, 1)} == first
    per_fold = {k: json.loads((group / str(k) / "test_metrics.json").read_text()) for k in range(3)}
    assert json.loads((group / "2" / "config.json").read_text())["data"]["fold"] == 2
    summary = json.loads((group / "cv_summary.json").read_text())
    assert summary["folds"] == [0, 1, 2] and summary["group"] == "cv"
    accuracies = [per_fold[k]["test_accuracy"] for k in range(3)]
    assert summary["metrics"]["test_accuracy"]["mean"] == pytest.approx(statistics.fmean(accuracies))
    assert summary["metrics"]["test_accuracy"]["std"] == pytest.approx(statistics.stdev(accuracies))
    losses = [per_fold[k]["test_loss"] for k in range(3)]
    assert summary["metrics"]["test_loss"]["std"] == pytest.approx(statistics.stdev(losses)) and len(set(losses)) == 3
    out = capsys.readouterr().out
    assert "Cross-validation: cv" in out and "│ mean " in out and "│ std " in out
    page = (group / "report.html").read_text()  # the group report: a row per fold, mean and std, fold links
    mean_row = page.split("<td>mean</td>")[1].split("</tr>")[0]
    assert f"<td>{summary['metrics']['test_accuracy']['mean']:.4f}</td>" in mean_row
    assert all(f'href="{k}/report.html"' in page and (group / str(k) / "report.html").is_file() for k in range(3))


def test_fold_and_folds_together_are_refused(kfold_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        parse_root_config(_args(kfold_dataset, tmp_path, "--folds", "0", "1", "--data.fold", "1"))
    with pytest.raises(SystemExit):
        parse_root_config(_args(kfold_dataset, tmp_path, "--folds", "0", "0"))
