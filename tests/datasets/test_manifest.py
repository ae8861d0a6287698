"""CSV manifests (data.split_source csv): rows with their split, paths relative to the CSV, a target column per task
(empty = no label for that task), errors naming the line and column; and a multi-task run trained from one, whose
glovita_infer metrics equal its test metrics for every head and whose export has one output per head."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from glovita.cli.export import main as export_main
from glovita.cli.infer import main as infer_main
from glovita.cli.train import main as train_main
from glovita.datasets.generic_image import collect_generic_samples
from glovita.datasets.manifest import TargetColumn
from glovita.runtime.batch import ID, INPUT, TARGETS
from tests.conftest import FAST, class_image

SIZE = TargetColumn("ink", classes=False, num_outputs=1)
PARITY = TargetColumn("parity", classes=True, num_outputs=2)


def _write(root: Path, per_split: dict[str, int], classes: int = 3) -> list[dict[str, str]]:
    """Images under root/pics/<class>/, listed in root/lists/manifest.csv (paths relative to the CSV's folder):
    the class name, its ink (mean pixel / 255) and its parity; every 5th row has no parity."""
    rows = []
    for split, count in per_split.items():
        for label in range(classes):
            for index in range(count):
                image = class_image(label, index + 100 * len(split), mode="L")
                path = root / "pics" / str(label) / f"{split}_{index}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                image.save(path)
                number = len(rows)
                rows.append({
                    "file": f"../pics/{label}/{split}_{index}.png",
                    "split": "valid" if split == "val" else split,
                    "label": f"class_{label}",
                    "ink": f"{np.asarray(image, dtype=np.float64).mean() / 255:.6f}",
                    "parity": "" if number % 5 == 4 else ("even", "odd")[label % 2],
                })  # fmt: skip
    (root / "lists").mkdir(parents=True, exist_ok=True)
    with (root / "lists" / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _collect(root: Path, columns: list[TargetColumn], manifest: str = "lists/manifest.csv", **kw: object):
    args = dict(
        root=root, images_dir=Path("images"), split_source="csv", splits_file=Path("splits.json"),
        label_source="csv", labels_file=None, csv_id_column="file", csv_label_column="label", fold=0,
        val_fraction=None, regression=False, num_classes=3, manifest_file=Path(manifest), columns=columns,
    )  # fmt: skip
    args.update(kw)
    return collect_generic_samples(**args)  # type: ignore[arg-type]


def test_a_manifest_gives_splits_labels_and_further_target_fields(tmp_path: Path) -> None:
    rows = _write(tmp_path, {"train": 3, "val": 2, "test": 2})
    samples = _collect(tmp_path, [SIZE, PARITY])
    assert (len(samples.train), len(samples.val), len(samples.test)) == (9, 6, 6)  # 'valid' is the val split
    assert samples.class_names == ["class_0", "class_1", "class_2"]
    assert samples.column_classes == {"parity": ["even", "odd"]}
    first = tmp_path / "lists" / rows[0]["file"]
    assert samples.train[0] == (first, 0) and first.resolve() == (tmp_path / "pics/0/train_0.png").resolve()
    from glovita.datasets.generic_image import GenericImageDataset

    dataset = GenericImageDataset(samples.test, "L", None, samples.fields)
    item = dataset[len(dataset) - 1]
    expected = rows[-1]
    assert set(item) == {INPUT, TARGETS, ID, "ink", "parity"}
    assert item[TARGETS] == 2 and item["ink"].tolist() == pytest.approx([float(expected["ink"])])
    no_parity = [r for r in rows if not r["parity"]]
    assert no_parity
    missing = [path for path, fields in samples.fields.items() if fields["parity"] == -1]
    assert len(missing) == len(no_parity)  # an empty cell is "no label" for that task, not an error


def test_a_folder_of_split_files_is_a_manifest_too(tmp_path: Path) -> None:
    rows = _write(tmp_path, {"train": 2, "val": 1, "test": 1})
    folder = tmp_path / "lists" / "by_split"
    folder.mkdir()
    for split, name in (("train", "train.csv"), ("valid", "valid.csv"), ("test", "test.csv")):
        kept = [{k: v for k, v in r.items() if k != "split"} | {"file": "../" + r["file"]} for r in rows
                if r["split"] == split]  # fmt: skip
        with (folder / name).open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(kept[0]))
            writer.writeheader()
            writer.writerows(kept)
    samples = _collect(tmp_path, [], manifest="lists/by_split")
    assert (len(samples.train), len(samples.val), len(samples.test)) == (6, 3, 3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r[3].update(file="../pics/0/nowhere.png"), "line 5, column 'file': '"),
        (lambda r: r[2].update(ink="heavy"), "line 4, column 'ink': 'heavy' is not a number"),
        (lambda r: r[1].update(split="holdout"), "line 3, column 'split': 'holdout' is not a split"),
        (lambda r: r[6].update(label=""), "line 8, column 'label': the main label is empty"),
        (lambda r: r[0].update(parity="maybe"), "model.heads' num_outputs of 'parity'=2 but column 'parity'"),
    ],
)
def test_a_bad_row_is_named_by_its_line_and_column(tmp_path: Path, change, message: str) -> None:
    rows = _write(tmp_path, {"train": 2, "val": 1})
    change(rows)
    with (tmp_path / "lists" / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises((ValueError, FileNotFoundError)) as caught:
        _collect(tmp_path, [SIZE, PARITY])
    assert message in str(caught.value)
    assert str(tmp_path / "lists" / "manifest.csv") in str(caught.value) or "parity" in str(caught.value)


HEADS = {
    "model": {
        "heads": {
            "ink": {"target_field": "ink", "num_outputs": 1, "task": "Regression", "subtask": "regression",
                    "head": {"head_type": "regression"}, "loss_weight": 2.0},
            "parity": {"target_field": "parity", "num_outputs": 2},
        }
    }
}  # fmt: skip


def test_a_two_task_run_from_a_manifest_trains_infers_and_exports_every_head(tmp_path: Path) -> None:
    rows = _write(tmp_path / "data", {"train": 8, "val": 3, "test": 3})
    (tmp_path / "heads.json").write_text(json.dumps(HEADS))
    args = [
        "--config", str(tmp_path / "heads.json"), "--data.dataset", "generic_image_dataset",
        "--data.data_root_dir", str(tmp_path / "data"), "--data.split_source", "csv",
        "--data.manifest_file", "lists/manifest.csv", "--data.csv_id_column", "file", "--data.num_classes", "3",
        "--model.encoder.input_channels", "1", "--training.epochs", "3", "--optimizer.lr", "0.003",
        "--training.best_checkpoint_metric", "ink_mae", "--experiments_dir", str(tmp_path / "exp"),
        "--group", "two", *FAST,
    ]  # fmt: skip
    train_main(args)
    run = tmp_path / "exp" / "generic_image_dataset" / "two" / "0"
    test = json.loads((run / "test_metrics.json").read_text())
    assert {"test_accuracy", "test_ink_mae", "test_ink_r2", "test_parity_accuracy", "test_parity_loss"} <= set(test)
    resolved = json.loads((run / "resolved_config.json").read_text())
    assert resolved["head_class_names"] == {"parity": ["even", "odd"]}
    assert resolved["best_metric"] == "val_ink_mae"
    ink = np.array([float(r["ink"]) for r in rows if r["split"] == "train"])  # the ink head learns it standardised
    assert resolved["target_statistics"] == {
        "ink": {"mean": pytest.approx([ink.mean()]), "std": pytest.approx([ink.std()])}
    }
    head = torch.load(run / "checkpoints" / "best.pt", weights_only=True)["model"]
    assert head["heads.ink.target_mean"].tolist() == pytest.approx([ink.mean()])

    best = str(run / "checkpoints" / "best.pt")
    infer_main(["--checkpoint_path", best, "--output_dir", str(tmp_path / "pred")])
    metrics = json.loads((tmp_path / "pred" / "metrics.json").read_text())
    for key in ("accuracy", "ink_mae", "ink_mse", "parity_accuracy"):
        assert metrics[key] == pytest.approx(test[f"test_{key}"], abs=1e-5), key
    with (tmp_path / "pred" / "predictions.csv").open() as handle:
        header = next(csv.reader(handle))
    assert header[-4:] == ["ink_prediction", "parity_prediction_label", "parity_prob_even", "parity_prob_odd"]

    export_main(["--checkpoint_path", best, "--output_dir", str(tmp_path / "ts"), "--format", "torchscript"])
    record = json.loads((tmp_path / "ts" / "preprocessing.json").read_text())
    assert list(record["outputs"]) == ["logits", "ink_logits", "parity_logits"]
    assert record["outputs"]["parity_logits"]["class_names"] == ["even", "odd"]
    loaded = torch.jit.load(str(tmp_path / "ts" / "model.pt"))
    outputs = loaded(torch.zeros(2, 1, 32, 32))
    assert [tuple(o.shape) for o in outputs] == [(2, 3), (2, 1), (2, 2)]
