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
    every = ["val_accuracy", "val_balanced_accuracy", "val_f1_macro", "val_auroc", "val_ece"]  # best metric first
    assert titles == ["loss", *every, "learning rate", "ROC (test, one vs rest)"]
    epochs = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert svgs[0].count("<polyline") == 2 and all(len(re.findall(r"<polyline[^>]*points=\"([^\"]+)\"", svgs[0])[i]
                                                       .split()) == len(epochs) for i in range(2))  # fmt: skip
    assert "best checkpoint" in svgs[1] and svgs[1].count("<polyline") == 2  # train accuracy beside validation's
    assert all(0.0 <= e["train_accuracy"] <= 1.0 for e in epochs)
    info = json.loads((run_dir / "runtime_info.json").read_text())
    best = info["best_epoch"]
    assert f"<td>epoch {best + 1}: val_accuracy {epochs[best]['val_accuracy']:.4f} (maximised)</td>" in page
    tested = json.loads((run_dir / "test_metrics.json").read_text())
    assert f"<td>test accuracy (best.pt)</td><td>{tested['test_accuracy']:.4f}</td>" in page
    assert "<td>train 64 · val 20 · test 20</td>" in page and f"torch {info['versions']['torch']}" in page
    assert f"<td>glovita_train --config {run_dir / 'config.json'} --group g_again</td>" in page
    assert f"<td>accuracy</td><td>{tested['test_accuracy']:.4f}</td>" in page
    counts = json.loads((run_dir / "test_confusion.json").read_text())["counts"]
    precision, recall = counts[1][1] / (counts[0][1] + counts[1][1]), counts[1][1] / sum(counts[1])
    assert sum(map(sum, counts)) == 20 and round(tested["test_accuracy"] * 20) == counts[0][0] + counts[1][1]
    assert (
        f"<td>1</td><td>{precision:.4f}</td><td>{recall:.4f}</td><td>{sum(counts[1])}</td>"
        f"<td>{tested['test_auroc_class_1']:.4f}</td><td>{tested['test_f1_class_1']:.4f}</td>"
    ) in page
    assert f"1 (AUC {tested['test_auroc_class_1']:.3f})" in svgs[-1]  # the ROC legend names each curve's AUC
    roc = json.loads((run_dir / "test_roc.json").read_text())
    assert set(roc) == {"0", "1"} and roc["1"]["fpr"][0] in (0.0, 1.0)
    assert page.count("data:image/png;base64,") == 2  # confusion matrix and reliability diagram
    assert 'href="checkpoints/best.pt"' in page and 'href="checkpoints/last.pt"' in page
    assert "<summary>resolved_config.json</summary>" in page


def test_glovita_report_rebuilds_the_same_page(run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    original = (copy / "report.html").read_text().replace(f"· {run_dir}</p>", f"· {copy}</p>")  # the page's path
    original = original.replace(f"--config {run_dir}", f"--config {copy}")
    (copy / "report.html").unlink()
    report([str(copy)])
    assert (copy / "report.html").read_text() == original
    with pytest.raises(SystemExit):
        report([str(tmp_path)])
    assert "is neither a run directory" in capsys.readouterr().err


def _chromium() -> str | None:
    return next((name for name in ("chromium", "chromium-browser", "google-chrome") if shutil.which(name)), None)


def chromium_screenshot(page: Path, tmp_path: Path, height: int = 1600) -> Path:
    """A 1100 x `height` screenshot of `page` by headless Chromium, which must log no console error or failed
    load."""
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    shot = tmp_path / f"{page.stem}.png"
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", f"--window-size=1100,{height}",
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


def test_chart_ticks_are_round_and_the_legend_sits_under_the_plot() -> None:
    from glovita.reports.html import line_chart, nice_ticks

    assert nice_ticks(0.31, 0.97) == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0.0012, 0.0051) == [0.001, 0.002, 0.003, 0.004, 0.005, 0.006]
    chart = line_chart("loss", {"train_loss": [(1, 0.93), (2, 0.41), (7, 0.33)], "val_loss": [(1, 1.1), (7, 0.5)]},
                       "epoch", y_label="loss")  # fmt: skip
    labels = re.findall(r'text-anchor="end" font-size="10">([^<]+)<', chart)
    assert labels == ["0.2", "0.4", "0.6", "0.8", "1.0", "1.2"]
    x_labels = re.findall(r'text-anchor="middle" font-size="10">([^<]+)<', chart)
    assert x_labels == ["1", "2", "3", "4", "5", "6", "7"]  # every whole epoch, no 1.5
    plot = re.search(r'<rect x="\d+" y="(\d+)" width="\d+" height="(\d+)"', chart)
    bottom = int(plot.group(1)) + int(plot.group(2))  # type: ignore[union-attr]
    legend = [float(y) for y in re.findall(r'<text x="[\d.]+" y="([\d.]+)" font-size="10">(?:train|val)_loss', chart)]
    assert len(legend) == 2 and min(legend) > bottom + 30  # below the axis and its label, never over the curves
    assert "rotate(-90" in chart and ">loss</text>" in chart  # the y axis says what it shows


def test_tiles_keep_each_pictures_aspect_and_wrap_rows(tmp_path: Path) -> None:
    from glovita.reports.tiles import TILE_HEIGHT, Tile, curve_picture, save_tiles

    red, blue = np.zeros((10, 10, 3)), np.zeros((8, 64, 3))
    red[..., 0], blue[..., 2] = 1.0, 1.0
    volume = np.full((16, 48), 0.5)  # three mid-slices side by side
    tiles = [Tile(red, ("a", "true 1")), Tile(volume, ("b",)), Tile(blue, ("strip",)),
             Tile(curve_picture(np.sin(np.linspace(0, 6, 50))[None]), ("series",))]  # fmt: skip
    image = np.asarray(Image.open(save_tiles(tiles, tmp_path / "t.png", "title")).convert("RGB"))
    row = TILE_HEIGHT + 2 * 14 + 4  # two caption lines under each picture
    assert tuple(image[24 + 50, 8 + 50]) == (255, 0, 0)  # first picture at the top left, enlarged to 112 px
    assert tuple(image[24 + 50, 8 + 112 + 8 + 100]) == (128, 128, 128)  # the volume keeps its 3:1 aspect
    assert tuple(image[24 + row + 8 + 50, 8 + 400]) == (0, 0, 255)  # the 896 px strip opens the next row
    assert image.shape[1] <= 1000 + 8 and image.shape[0] == 24 + 3 * (row + 8)  # the series curve: a third row


def _find(template: np.ndarray, page: np.ndarray) -> tuple[int, int, float]:
    """Where `template` (gray, H x W) sits in `page` (gray): the top-left corner of the best cross-correlation (FFT),
    and the mean absolute difference there."""
    t = template - template.mean()
    shape = [page.shape[0] + t.shape[0], page.shape[1] + t.shape[1]]
    scores = np.fft.irfft2(np.fft.rfft2(page - page.mean(), shape) * np.conj(np.fft.rfft2(t, shape)), shape)
    row, col = np.unravel_index(np.argmax(scores[: page.shape[0] - t.shape[0], : page.shape[1] - t.shape[1]]),
                                (page.shape[0] - t.shape[0], page.shape[1] - t.shape[1]))  # fmt: skip
    window = page[row : row + t.shape[0], col : col + t.shape[1]]
    return int(row), int(col), float(np.abs(window - template).mean())


def test_an_image_runs_report_reads_in_chromium_while_it_runs_and_after_with_its_worst_errors(
    subdirs_dataset: Path, tmp_path: Path
) -> None:
    """The live page (after epoch 1, reloading itself) and the final one of an image run render in headless Chromium
    without console errors; the final one shows the worst-errors grid pixel for pixel."""
    from glovita.reports import html as html_module
    from tests.conftest import generic_args

    snapshots: list[Path] = []
    original = html_module.write_run_report

    def keeping(folder: Path) -> Path:
        path = original(folder)
        if 'http-equiv="refresh"' in path.read_text() and not snapshots:
            snapshots.append(Path(shutil.copy(path, tmp_path / "running.html")))
        return path

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(html_module, "write_run_report", keeping)
        train(generic_args(subdirs_dataset, tmp_path / "exp", 3, "--training.epochs", "2", "--group", "page"))
    run_dir = tmp_path / "exp" / "generic_image_dataset" / "page" / "0"
    assert snapshots and "<td>status</td><td>running</td>" in snapshots[0].read_text()
    live = np.asarray(Image.open(chromium_screenshot(snapshots[0], tmp_path)).convert("L"), np.float32)
    assert live.std() > 10 and (live < 100).mean() > 0.005
    worst = json.loads((run_dir / "test_worst_errors.json").read_text())["samples"]
    assert worst, "a 2-epoch run on 12 test images misses some"
    shot = chromium_screenshot(run_dir / "report.html", tmp_path, height=6000)
    page = np.asarray(Image.open(shot).convert("L"), np.float32)
    grid = np.asarray(Image.open(run_dir / "test_worst_errors.png").convert("L"), np.float32)
    row, _, difference = _find(grid, page)
    assert difference < 2.0, (row, difference)  # drawn at its own size, as the run wrote it
