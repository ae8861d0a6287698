"""Multi-task on digits from its manifest (data/digits/manifest.csv: the digit and its ink fraction, the mean of the
stored pixels / 255): one model with a class head and a named ink head, against a class-only and an ink-only run of
the same settings, three seeds each; the ink MAE of always predicting the training mean is the trivial baseline.

Every run is a glovita_train command on the manifest (--data.split_source csv): test_resnet at 16 px, batch 16,
AdamW lr 0.003, the same epochs for all. The two-task model adds the ink head's loss (MSE, weight --ink_weight)
to the cross-entropy.

    .venv/bin/python bench/bench_multitask.py [--epochs 15] [--seeds 0 1 2] [--ink_weight 1] [--runs class ink two]
"""

import argparse
import csv
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from glovita.cli.train import main as train_main
from glovita.datasets.digits import prepare_digits

COMMON = [
    "--data.dataset", "generic_image_dataset", "--data.data_root_dir", "data/digits", "--data.split_source", "csv",
    "--model.encoder.type", "test_resnet", "--model.encoder.no_pretrained", "--model.encoder.input_channels", "1",
    "--data.augmentation.image_size", "16", "--dataloading.batch_size", "16", "--optimizer.lr", "0.003",
    "--dataloading.num_workers", "0", "--training.checkpoint_every_n_epochs", "0",
]  # fmt: skip
CLASS = ["--data.num_classes", "10"]
INK = ["--data.task", "Regression", "--data.subtask", "regression", "--data.csv_label_column", "ink",
       "--data.num_classes", "1", "--model.head.head_type", "regression", "--model.head.loss", "mse"]  # fmt: skip


def heads_file(work: Path, weight: float) -> Path:
    path = work / "heads.json"
    head = {"target_field": "ink", "num_outputs": 1, "task": "Regression", "subtask": "regression",
            "head": {"head_type": "regression", "loss": "mse"}, "loss_weight": weight}  # fmt: skip
    path.write_text(json.dumps({"model": {"heads": {"ink": head}}}))
    return path


def run(work: Path, name: str, args: list[str]) -> tuple[dict, float]:
    began = time.perf_counter()
    train_main([*COMMON, *args, "--experiments_dir", str(work / "exp"), "--group", name])
    tested = json.loads((work / "exp" / "generic_image_dataset" / name / "0" / "test_metrics.json").read_text())
    return tested, time.perf_counter() - began


def mean_baseline(manifest: Path) -> float:
    """Test MAE of predicting the training split's mean ink."""
    with manifest.open() as handle:
        rows = list(csv.DictReader(handle))
    mean = statistics.fmean(float(r["ink"]) for r in rows if r["split"] == "train")
    return statistics.fmean(abs(float(r["ink"]) - mean) for r in rows if r["split"] == "test")


def summary(values: list[float]) -> str:
    return f"{statistics.fmean(values):.3f} ({', '.join(f'{v:.3f}' for v in values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--ink_weight", type=float, default=1.0)
    parser.add_argument("--runs", nargs="+", default=["class", "ink", "two"], choices=["class", "ink", "two"])
    options = parser.parse_args()
    accuracy: dict[str, list[float]] = {"class only": [], "two-task": []}
    mae: dict[str, list[float]] = {"ink only": [], "two-task": []}
    r2: dict[str, list[float]] = {"ink only": [], "two-task": []}
    seconds: dict[str, list[float]] = {"class only": [], "ink only": [], "two-task": []}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        os.chdir(work)
        prepare_digits(work / "data" / "digits")
        baseline = mean_baseline(work / "data" / "digits" / "manifest.csv")
        heads = heads_file(work, options.ink_weight)
        for seed in options.seeds:
            base = ["--training.seed", str(seed), "--training.epochs", str(options.epochs)]
            if "class" in options.runs:
                tested, took = run(work, f"class_{seed}", [*base, *CLASS])
                accuracy["class only"].append(tested["test_accuracy"])
                seconds["class only"].append(took)
            if "ink" in options.runs:
                tested, took = run(work, f"ink_{seed}", [*base, *INK])
                mae["ink only"].append(tested["test_mae"])
                r2["ink only"].append(tested["test_r2"])
                seconds["ink only"].append(took)
            if "two" in options.runs:
                tested, took = run(work, f"two_{seed}", ["--config", str(heads), *base, *CLASS])
                accuracy["two-task"].append(tested["test_accuracy"])
                mae["two-task"].append(tested["test_ink_mae"])
                r2["two-task"].append(tested["test_ink_r2"])
                seconds["two-task"].append(took)
    print("| run | test accuracy (digit) | test MAE (ink) | test R² (ink) | seconds / run |")
    print("|---|---|---|---|---|")
    for name in ("class only", "ink only", "two-task"):
        if not seconds[name]:
            continue
        acc = summary(accuracy[name]) if name in accuracy else "–"
        err = summary(mae[name]) if name in mae else "–"
        fit = summary(r2[name]) if name in r2 else "–"
        print(f"| {name} | {acc} | {err} | {fit} | {statistics.fmean(seconds[name]):.0f} |")
    print(f"| training mean (trivial) | – | {baseline:.3f} | 0 | – |")


if __name__ == "__main__":
    main()
