"""report.html: every run writes one self-contained page (curves, test tables, ROC, plots, config, checkpoint
links); glovita_report rebuilds it; it renders in headless Chromium without console errors."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from glovita.cli.report import main as report
from glovita.cli.train import main as train
from tests.conftest import ObservedRun, feature_args


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    args = feature_args(root, "instances", ["--model.head.head_type", "classification", "--data.probe_optimizer",
                                            "configured"])  # fmt: skip
    train([*args, "--training.epochs", "4"])
    return root / "exp" / "precomputed_features" / "g" / "0"


def test_every_run_writes_a_self_contained_report(run_dir: Path) -> None:
    page = (run_dir / "report.html").read_text()
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from the network
    assert "<script" not in page
    svgs = re.findall(r"<svg .*?</svg>", page)
    titles = [re.search(r'aria-label="([^"]+)"', svg).group(1) for svg in svgs]  # type: ignore[union-attr]
    assert titles == ["loss", "val_accuracy", "learning rate", "ROC (test, one vs rest)"]
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert svgs[0].count("<polyline") == 2 and all(len(re.findall(r"<polyline[^>]*points=\"([^\"]+)\"", svgs[0])[i]
                                                       .split()) == len(epochs) for i in range(2))  # fmt: skip
    assert "best checkpoint" in svgs[1]
    tested = json.loads((run_dir / "test_metrics.json").read_text())
    assert f"<td>accuracy</td><td>{tested['test_accuracy']:.4f}</td>" in page
    assert f"<td>1</td><td>{tested['test_auroc_class_1']:.4f}</td><td>{tested['test_f1_class_1']:.4f}</td>" in page
    roc = json.loads((run_dir / "test_roc.json").read_text())
    assert set(roc) == {"0", "1"} and roc["1"]["fpr"][0] in (0.0, 1.0)
    assert page.count("data:image/png;base64,") == 2  # confusion matrix and reliability diagram
    assert 'href="checkpoints/best.pt"' in page and 'href="checkpoints/last.pt"' in page
    assert "<summary>resolved_config.json</summary>" in page


def test_glovita_report_rebuilds_the_same_page(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    original = (copy / "report.html").read_text().replace(f"· {run_dir}</p>", f"· {copy}</p>")  # the page's path
    (copy / "report.html").unlink()
    report([str(copy)])
    assert (copy / "report.html").read_text() == original
    with pytest.raises(SystemExit):
        report([str(tmp_path)])
    assert "is neither a run directory" in capsys.readouterr().err


def _chromium() -> str | None:
    return next((name for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)


def chromium_screenshot(page: Path, tmp_path: Path) -> Path:
    """A 1100 x 1600 screenshot of `page` by headless Chromium, which must log no console error or failed load."""
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    shot = tmp_path / f"{page.stem}.png"
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1100,1600",
         page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shot.is_file(), result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line or "Failed to load" in line]
    assert not console, console
    return shot


def test_report_renders_in_headless_chromium_without_console_errors(run_dir: Path, tmp_path: Path) -> None:
    shot = chromium_screenshot(run_dir / "report.html", tmp_path)
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert pixels.shape == (1600, 1100) and pixels.std() > 10  # drawn, not blank
    assert (pixels < 100).mean() > 0.005  # text and lines


def test_the_report_is_rewritten_after_every_epoch_while_the_run_runs(observed_run: ObservedRun) -> None:
    """Each epoch's end rewrites report.html (status running, the curves so far, a reload every 30 s); the end of
    the run writes the final page without the reload."""
    assert observed_run.report_writes == [("running", 1), ("running", 2), ("final", 2)]
    page = (observed_run.run_dir / "report.html").read_text()
    assert "refresh" not in page and "status-completed" in page
