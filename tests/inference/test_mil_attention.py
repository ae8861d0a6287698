"""Digit slides end to end: the generator's CLAM layout, an ABMIL run on it, glovita_infer's per-slide attention
files and glovita_mil_heatmap, whose hottest patches are the 9s."""

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from glovita.cli.infer import main as infer
from glovita.cli.make_digit_slides import main as make_slides
from glovita.cli.mil_heatmap import main as heatmap_main
from glovita.cli.train import main as train
from glovita.configs.mil_heatmap import MilHeatmapConfig
from glovita.inference.attention import read_attention
from glovita.inference.heatmap import draw_heatmap


@pytest.fixture(scope="module")
def slides_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(slides folder, run directory, glovita_infer output) of an ABMIL run on 96 raw-pixel digit slides."""
    root = tmp_path_factory.mktemp("digit_slides")
    slides = root / "slides"
    make_slides(["--output_dir", str(slides), "--num_slides", "160", "--grid_min", "2", "--grid_max", "4"])
    train([
        "--data.dataset", "precomputed_features", "--data.feature_layout", "slide_folder",
        "--data.features_dir", str(slides), "--data.labels_csv", str(slides / "labels.csv"),
        "--data.splits_dir", str(slides / "splits"), "--data.num_classes", "2",
        "--model.encoder.encoder_type", "precomputed", "--model.head.head_type", "abmil", "--optimizer.lr", "2e-3",
        "--dataloading.batch_size", "8", "--dataloading.num_workers", "0", "--training.epochs", "15",
        "--experiments_dir", str(root / "exp"), "--group", "abmil",
    ])  # fmt: skip
    run_dir = root / "exp" / "precomputed_features" / "abmil" / "0"
    out = root / "pred"
    infer(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(out)])
    return slides, run_dir, out


def _split(slides: Path, split: str) -> list[str]:
    with (slides / "splits" / "splits_0.csv").open() as handle:
        return [row[split] for row in csv.DictReader(handle) if row[split]]


def test_generator_writes_clam_layout_with_case_disjoint_splits(slides_run: tuple[Path, Path, Path]) -> None:
    slides, _, _ = slides_run
    with (slides / "labels.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 160 and {r["label"] for r in rows} == {"positive", "negative"}
    for row in rows[:12]:
        with h5py.File(slides / "h5_files" / f"{row['slide_id']}.h5") as handle:
            digits, coords, features = handle["digits"][()], handle["coords"][()], handle["features"][()]
        assert (row["label"] == "positive") == (9 in digits)
        assert features.shape == (len(digits), 64) and coords.shape == (len(digits), 2)
        width, height = Image.open(slides / "thumbnails" / f"{row['slide_id']}.png").size
        assert (width, height) == (coords[:, 0].max() + 32, coords[:, 1].max() + 32)
    case = {r["slide_id"]: r["case_id"] for r in rows}
    tests = [_split(slides, "test")]
    for fold in range(3):
        with (slides / "splits" / f"splits_{fold}.csv").open() as handle:
            table = list(csv.DictReader(handle))
        members = {s: {row[s] for row in table if row[s]} for s in ("train", "val", "test")}
        cases = {s: {case[x] for x in m} for s, m in members.items()}
        assert not (cases["train"] & cases["val"]) and not (cases["train"] & cases["test"])
        tests.append(sorted(members["test"]))
    assert len({tuple(sorted(t)) for t in tests}) == 1  # the same test cases in every fold


def test_infer_writes_attention_per_slide_and_the_9s_get_it(slides_run: tuple[Path, Path, Path]) -> None:
    slides, run_dir, out = slides_run
    tested = json.loads((run_dir / "test_metrics.json").read_text())
    assert tested["test_auroc"] >= 0.85, tested
    test_ids = _split(slides, "test")
    assert sorted(p.stem for p in (out / "attention").glob("*.h5")) == sorted(test_ids)
    with (out / "predictions.csv").open() as handle:
        predicted = {row["id"]: row for row in csv.DictReader(handle)}
    hits, positives = 0, 0
    for slide in test_ids:
        record = read_attention(out / "attention" / f"{slide}.h5")
        with h5py.File(slides / "h5_files" / f"{slide}.h5") as handle:
            digits, coords = handle["digits"][()], handle["coords"][()]
        assert record.scores.shape == (len(digits), 1) and record.branches == ["attention"]
        assert record.scores.sum() == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_array_equal(record.coords, coords)
        assert record.prediction == predicted[slide]["prediction_label"] and record.target == predicted[slide]["target"]
        if 9 in digits:
            positives += 1
            hits += int(digits[int(record.scores[:, 0].argmax())] == 9)
    assert positives >= 8 and hits / positives >= 0.8, (hits, positives)


def test_heatmap_paints_the_top_instance_hottest_over_the_thumbnail(
    slides_run: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    slides, _, out = slides_run
    slide = _split(slides, "test")[0]
    attention = out / "attention" / f"{slide}.h5"
    config = MilHeatmapConfig(attention_file=attention, thumbnail=slides / "thumbnails" / f"{slide}.png",
                              patch_size=32, top_k=3, output_file=tmp_path / "map.png")  # fmt: skip
    drawn = draw_heatmap(config)
    record = read_attention(attention)
    best = int(record.scores[:, 0].argmax())
    x, y = (int(v) for v in record.coords[best])
    assert drawn.top[0][:3] == (best, x, y) and drawn.scale == 1.0
    assert drawn.colours.shape == Image.open(config.thumbnail).size[::-1]
    assert np.all(drawn.colours[y : y + 32, x : x + 32] == 1.0)  # percentile 1: the highest score
    assert np.nanmin(drawn.colours) == pytest.approx(1 / len(record.scores), abs=1e-6)
    with drawn.top_csv.open() as handle:  # type: ignore[union-attr]
        assert [int(r["instance"]) for r in csv.DictReader(handle)] == [t[0] for t in drawn.top]
    assert Image.open(drawn.png).size[0] > 300


def test_csv_attention_matches_h5_and_heatmap_needs_coords(
    slides_run: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _, run_dir, out = slides_run
    infer(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path),
           "--attention_format", "csv"])  # fmt: skip
    name = sorted((tmp_path / "attention").glob("*.csv"))[0]
    from_csv, from_h5 = read_attention(name), read_attention(out / "attention" / f"{name.stem}.h5")
    assert from_csv.branches == ["attention"]
    np.testing.assert_allclose(from_csv.scores, from_h5.scores, rtol=1e-5)
    np.testing.assert_array_equal(from_csv.coords, from_h5.coords)
    lines = name.read_text().splitlines()
    assert lines[0] == "instance,x,y,attention"
    no_coords = tmp_path / "bag.csv"
    no_coords.write_text("instance,attention\n0,0.25\n1,0.75\n")
    with pytest.raises(SystemExit):
        heatmap_main(["--attention_file", str(no_coords), "--patch_size", "32"])
    assert "has no coords" in capsys.readouterr().err
