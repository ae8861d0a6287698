"""glovita_compare: one row per run with the settings that differ, best epoch, test metrics and timing."""

import csv
import json
from pathlib import Path

import pytest

from glovita.cli.compare import main as compare
from glovita.cli.train import main as train
from tests.conftest import feature_args


def test_two_runs_are_tabulated_and_sorted(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for lr, group in (("0.05", "fast"), ("0.0005", "slow")):
        args = feature_args(tmp_path, "instances", ["--model.head.head_type", "classification",
                                                    "--data.probe_optimizer", "configured"], group=group)  # fmt: skip
        note = "<script>alert(1)</script>" if group == "fast" else "<img src=x onerror=alert(1)>"
        train([*args, "--optimizer.lr", lr, "--training.epochs", "3", "--add_log.note", note])
    groups = tmp_path / "exp" / "precomputed_features"
    compare([str(groups / "fast" / "0"), str(groups / "slow" / "0"), "--sort", "test_loss"])
    with (groups / "compare.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["run"] for r in rows] == sorted((r["run"] for r in rows), key=lambda name: name != "fast/0")
    for row in rows:
        run = groups / row["run"]
        assert row["optimizer.lr"] == ("0.05" if row["run"] == "fast/0" else "0.0005")
        epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        top = max(e["val_accuracy"] for e in epochs)  # the default best-checkpoint metric; the first epoch to reach it
        best = next(e for e in epochs if e["val_accuracy"] == top)
        assert int(row["best_epoch"]) == best["epoch"] + 1
        assert float(row["best_val_accuracy"]) == pytest.approx(top, abs=1e-4)
        tested = json.loads((run / "test_metrics.json").read_text())
        assert float(row["test_accuracy"]) == pytest.approx(tested["test_accuracy"], abs=1e-4)
        info = json.loads((run / "runtime_info.json").read_text())
        assert float(row["wall_seconds"]) == pytest.approx(info["wall_seconds"], abs=1e-3)
        assert row["status"] == "completed" and float(row["samples_per_second"]) > 0
    assert float(rows[0]["test_loss"]) <= float(rows[1]["test_loss"])
    assert "data.num_classes" not in rows[0] and "group" not in rows[0]  # equal in both / names the run
    markdown = (groups / "compare.md").read_text().splitlines()
    assert len(markdown) == 4 and markdown[0].startswith("| run | ") and "optimizer.lr" in markdown[0]
    assert "<script>" not in "".join(markdown) and "<img" not in "".join(markdown)  # add_log values, escaped
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in "".join(markdown)
    assert "fast/0" in capsys.readouterr().out
    page = (groups / "compare.html").read_text()
    assert page.count("<svg") == 3 and "val_accuracy" in page  # train loss, val loss, the best-checkpoint metric
    assert page.count(">fast/0</text>") == 3 and page.count(">slow/0</text>") == 3  # each run in every legend
    assert "<script>" not in page and "<img" not in page and "&lt;script&gt;" in page
    _screenshot(groups / "compare.html", tmp_path)

    with pytest.MonkeyPatch.context() as patch:  # a 70-column terminal: the table fits it, the rest is named
        patch.setenv("COLUMNS", "70")
        compare([str(groups / "fast" / "0"), str(groups / "slow" / "0"), "--output_dir", str(tmp_path / "narrow")])
    output = "".join(capsys.readouterr())  # the table goes to stderr with the other progress lines
    printed = output.split("Runs under")[1].splitlines()[1:4]
    assert printed[0].startswith("run ") and "lr" in printed[0] and all(len(line) <= 70 for line in printed)
    assert "<img src=x onerror=alert(1)>" not in "".join(printed) and "<img src=x …" in "".join(printed)
    every = (tmp_path / "narrow" / "compare.csv").read_text().splitlines()[0].split(",")
    assert f"({len(every) - len(printed[0].split())} more column(s) in compare.csv: " in output
    compare([str(groups), "--output_dir", str(tmp_path / "table")])  # a folder of groups is searched
    assert len((tmp_path / "table" / "compare.csv").read_text().splitlines()) == 3
    with pytest.raises(SystemExit):
        compare([str(groups), "--sort", "no_such_column"])
    assert "sort='no_such_column' is not a column" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        compare([str(tmp_path / "exp" / "nothing_here")])
    assert "does not exist" in capsys.readouterr().err


def _screenshot(page: Path, tmp_path: Path) -> None:
    """compare.html drawn by headless Chromium without console errors (installed by .ci/run)."""
    import numpy as np
    from PIL import Image

    from tests.reports.test_html import chromium_screenshot

    pixels = np.asarray(Image.open(chromium_screenshot(page, tmp_path)).convert("L"), dtype=np.float32)
    assert pixels.std() > 10 and (pixels < 100).mean() > 0.005  # drawn: text, axes and curves
