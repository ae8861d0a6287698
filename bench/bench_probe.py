"""Linear probes on feature files: glovita_train (the spec's feature-file command, unchanged) against
scikit-learn's LogisticRegression on the same files, in one process, alternated.

1. digits pixels: the 64 pixel values of scikit-learn's digits as features, GloViTa's digits split (60/20/20).
2. extracted: a resnet10t trained on the digits with glovita_train, its 512-d features written by
   glovita_extract_features (checkpoint mode, train split through the eval transform).

For each: test accuracy and whole-command wall time of GloViTa's default (full-batch L-BFGS), of the old
mini-batch default (--data.probe_optimizer configured: AdamW), and of LogisticRegression(max_iter=1000) fitted on
the training file alone (sklearn's default C=1); median wall over --rounds.

    .venv/bin/python bench/bench_probe.py
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from glovita.cli.extract_features import main as extract_main
from glovita.cli.train import main as train_main


def _write(path: Path, features: np.ndarray, labels: np.ndarray) -> None:
    with h5py.File(path, "w") as handle:
        handle["features"] = features.astype(np.float32)
        handle["labels"] = labels.astype(np.int64)


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path) as handle:
        return handle["features"][:], handle["labels"][:]


def digits_pixel_files(folder: Path) -> Path:
    """train/val/test.h5 of the digits' 64 pixel values, split as GloViTa's digits dataset splits the images."""
    from sklearn.datasets import load_digits

    from glovita.datasets.splits import stratified_split

    digits = load_digits()
    labels = digits.target.tolist()
    rest, test = stratified_split(labels, 0.2, 0, stratify=True)
    train_pos, val_pos = stratified_split([labels[i] for i in rest], 0.25, 0, stratify=True)
    members = {"train": [rest[i] for i in train_pos], "val": [rest[i] for i in val_pos], "test": test}
    folder.mkdir(parents=True)
    for split, rows in members.items():
        _write(folder / f"{split}.h5", digits.data[rows], digits.target[rows])
    return folder


def extracted_files(work: Path) -> Path:
    """Features of a resnet10t trained on the digits for 6 epochs, written by glovita_extract_features."""
    train_main(["--data.data_root_dir", str(work / "digits"), "--experiments_dir", str(work / "exp"),
                "--group", "encoder", "--model.encoder.type", "resnet10t", "--model.encoder.no_pretrained",
                "--training.epochs", "6", "--training.checkpoint_every_n_epochs", "0"])  # fmt: skip
    checkpoint = work / "exp" / "digits" / "encoder" / "0" / "checkpoints" / "best.pt"
    extract_main(["--checkpoint_path", str(checkpoint), "--output_dir", str(work / "extracted"),
                  "--output_filename", "{split}.h5", "--use_eval_transform_for_train"])  # fmt: skip
    return work / "extracted"


def glovita_probe(folder: Path, work: Path, name: str, extra: list[str]) -> tuple[float, float]:
    """Test accuracy and wall seconds of the spec's feature-file command on `folder`."""
    dim = _read(folder / "val.h5")[0].shape[1]
    began = time.perf_counter()
    train_main(["--data.dataset", "precomputed_features", "--data.data_root_dir", str(folder),
                "--data.num_classes", "10", "--data.train_features_file", "train.h5",
                "--data.val_features_file", "val.h5", "--data.test_features_file", "test.h5",
                "--model.encoder.encoder_type", "precomputed", "--model.encoder.feature_dim", str(dim),
                "--model.head.head_type", "classification", "--dataloading.batch_size", "512",
                "--experiments_dir", str(work / "probes"), "--group", name, *extra])  # fmt: skip
    wall = time.perf_counter() - began
    metrics = json.loads((work / "probes" / "precomputed_features" / name / "0" / "test_metrics.json").read_text())
    return metrics["test_accuracy"], wall


def sklearn_probe(folder: Path) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    began = time.perf_counter()
    (x_train, y_train), (x_test, y_test) = _read(folder / "train.h5"), _read(folder / "test.h5")
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    accuracy = float(model.score(x_test, y_test))
    return accuracy, time.perf_counter() - began


def compare(folder: Path, work: Path, label: str, rounds: int) -> dict:
    runs = {
        "glovita_lbfgs": lambda r: glovita_probe(folder, work, f"{label}_lbfgs_{r}", []),
        "glovita_adamw": lambda r: glovita_probe(folder, work, f"{label}_adamw_{r}", ["--data.probe_optimizer",
                                                                                      "configured"]),
        "sklearn": lambda r: sklearn_probe(folder),
    }  # fmt: skip
    results: dict[str, dict[str, list[float]]] = {name: {"accuracy": [], "wall": []} for name in runs}
    for r in range(rounds):
        for name in runs if r % 2 == 0 else list(runs)[::-1]:
            accuracy, wall = runs[name](r)
            results[name]["accuracy"].append(accuracy)
            results[name]["wall"].append(wall)
    return {
        name: {"test_accuracy": values["accuracy"][0], "median_wall_s": statistics.median(values["wall"]),
               "walls": values["wall"]}
        for name, values in results.items()
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="glovita-probe-"))
    report = {
        "digits_pixels": compare(digits_pixel_files(work / "pixels"), work, "pixels", args.rounds),
        "extracted_resnet10t": compare(extracted_files(work), work, "extracted", args.rounds),
    }
    print(json.dumps(report, indent=1))
    for data, rows in report.items():
        print(f"\n{data}")
        for name, row in rows.items():
            print(f"  {name:14} test accuracy {row['test_accuracy']:.4f}  wall {row['median_wall_s']:.2f} s")


if __name__ == "__main__":
    main()
