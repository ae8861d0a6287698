"""Six things a user found broken (issue 35): a run's config.json works with glovita_show_augmentations and
glovita_extract_features; --config with a required flag on the command line; --preset refused where it means
nothing; the 2-class confusion-matrix title fits; the reliability gap looks as its legend does; the learning-rate
chart keeps a cosine run's last epoch."""

import re
from pathlib import Path

import numpy as np
import pytest

from glovita.cli.compare import main as compare
from glovita.cli.extract_features import main as extract
from glovita.cli.infer import main as infer
from glovita.cli.plot_umap import main as plot_umap
from glovita.cli.show_augmentations import main as show
from glovita.cli.train import main as train
from tests.conftest import generic_args


def test_a_runs_config_and_a_required_flag_work_with_the_other_commands(
    subdirs_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train(generic_args(subdirs_dataset, tmp_path / "exp", 3, "--training.epochs", "1", "--group", "g"))
    run = tmp_path / "exp" / "generic_image_dataset" / "g" / "0"
    show(["--config", str(run / "config.json"), "--output_file", str(tmp_path / "grid.png"), "--num_samples", "2"])
    assert (tmp_path / "grid.png").is_file()
    extract(["--config", str(run / "config.json"), "--method", "avg", "--output_dir", str(tmp_path / "feats"),
             "--split", "test"])  # fmt: skip
    assert len(list((tmp_path / "feats").glob("*test*.h5"))) == 1
    (tmp_path / "infer.yaml").write_text(f"output_dir: {tmp_path / 'preds'}\n")
    infer(["--config", str(tmp_path / "infer.yaml"), "--checkpoint_path", str(run / "checkpoints" / "best.pt")])
    assert (tmp_path / "preds" / "predictions.csv").is_file()
    for command, args in ((compare, [str(run)]), (plot_umap, ["--features_file", "x.h5"])):
        with pytest.raises(SystemExit):
            command(["--preset", "digits_quick", *args])
        err = " ".join(capsys.readouterr().err.split())
        assert "--preset sets training blocks" in err and "leave --preset out" in err and "input_value" not in err


def test_the_two_class_confusion_matrix_title_fits_its_figure() -> None:
    from glovita.metrics.plots import confusion_figure

    title = "precomputed_features test, best.pt = epoch_0007 (a long group name for the record)"
    fig = confusion_figure(np.array([[5, 1], [2, 7]]), ["negative", "positive"], title)
    fig.canvas.draw()
    box = fig.axes[0].title.get_window_extent(fig.canvas.get_renderer())
    assert box.x0 >= 0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1


def test_the_reliability_gap_looks_as_its_legend_does() -> None:
    from glovita.metrics.plots import reliability_figure

    bins = {"count": [10, 10, 10, 10], "accuracy": [0.9, 0.2, 0.6, 0.95], "confidence": [0.3, 0.3, 0.6, 0.9]}
    fig = reliability_figure(bins, 0.2, "test")
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())
    top = fig.axes[0]

    def colour_at(x: float, y: float) -> tuple[int, ...]:  # display coordinates, origin bottom left
        return tuple(pixels[int(pixels.shape[0] - y), int(x)][:3])

    under = top.transData.transform((0.125, (0.3 + 0.9) / 2))  # bin 0: accuracy 0.9 above confidence 0.3
    over = top.transData.transform((0.375, (0.2 + 0.3) / 2))  # bin 1: confidence above accuracy
    legend = top.get_legend()
    handle = legend.legend_handles[[t.get_text() for t in legend.get_texts()].index("gap")]
    patch = handle.get_window_extent(fig.canvas.get_renderer())
    expected = colour_at((patch.x0 + patch.x1) / 2, (patch.y0 + patch.y1) / 2)
    assert colour_at(*under) == expected and colour_at(*over) == expected


def test_the_learning_rate_chart_keeps_the_last_epoch_of_a_cosine_run() -> None:
    from glovita.reports.html import _curves

    epochs = [{"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 1.0, "lr": lr} for e, lr in
              enumerate([1e-3, 7.5e-4, 2.5e-4, 0.0])]  # fmt: skip
    chart = next(c for c in _curves(epochs, None, "min") if 'aria-label="learning rate"' in c)
    points = re.search(r'<polyline[^>]*points="([^"]+)"', chart).group(1).split()  # type: ignore[union-attr]
    assert len(points) == 4
