"""Semi-supervised learning on digits: with 5 % and 10 % of the training labels, supervised on those labels alone
vs FixMatch vs mean teacher (the rest of the training split as unlabeled images), three seeds each.

Every run is a documented glovita_train command: test_resnet on the bundled digits at 16 px, batch 16, AdamW, EMA
weights (decay 0.95: the runs are a few hundred steps long) evaluated beside the raw ones for every method. The
supervised run trains for the same number of optimizer steps as the semi-supervised ones (its epochs are shorter:
the labeled images only). The table gives test accuracy of the EMA weights (and of the raw weights).

    .venv/bin/python bench/bench_semi_supervised.py [--epochs 30] [--seeds 0 1 2] [--fractions 0.05 0.1]
"""

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from glovita.cli.train import main as train_main

COMMON = [
    "--model.encoder.type", "test_resnet", "--model.encoder.no_pretrained", "--data.augmentation.image_size", "16",
    "--dataloading.batch_size", "16", "--optimizer.lr", "0.003", "--dataloading.num_workers", "0",
    "--training.checkpoint_every_n_epochs", "0", "--training.ema_decay", "0.95",
]  # fmt: skip
SEMI = ["training.step:semi-supervised-step-config", "--training.step.unlabeled_ratio", "5"]
METHODS = {
    "fixmatch": [*SEMI, "--training.step.threshold", "0.8"],
    "mean_teacher": [*SEMI, "--training.step.method", "mean_teacher", "--training.step.unlabeled_weight", "10"],
}


def run(work: Path, name: str, args: list[str]) -> tuple[dict, dict, float]:
    began = time.perf_counter()
    train_main([*COMMON, *args, "--experiments_dir", str(work / "exp"), "--group", name])
    run_dir = work / "exp" / "digits" / name / "0"
    tested = json.loads((run_dir / "test_metrics.json").read_text())
    return tested, json.loads((run_dir / "resolved_config.json").read_text()), time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.05, 0.1])
    options = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        os.chdir(work)  # the digits folder is written under ./data
        for fraction in options.fractions:
            results: dict[str, list[tuple[float, float, float]]] = {"supervised": [], **{m: [] for m in METHODS}}
            for seed in options.seeds:
                base = ["--data.data_fraction", str(fraction), "--training.seed", str(seed)]
                steps = 0
                for method, extra in METHODS.items():
                    tested, resolved, took = run(work, f"{method}_{fraction}_{seed}",
                                                 [*base, *extra, "--training.epochs", str(options.epochs)])  # fmt: skip
                    steps = resolved["total_steps"]
                    results[method].append((tested["test_ema_accuracy"], tested["test_accuracy"], took))
                labeled = json.loads((work / "exp" / "digits" / f"fixmatch_{fraction}_{seed}" / "0" /
                                      "resolved_config.json").read_text())["dataset_sizes"]["train"]  # fmt: skip
                per_epoch = -(-labeled // 16)
                epochs = max(1, round(steps / per_epoch))  # as many optimizer steps as the semi-supervised runs
                tested, _, took = run(work, f"supervised_{fraction}_{seed}", [*base, "--training.epochs", str(epochs)])
                results["supervised"].append((tested["test_ema_accuracy"], tested["test_accuracy"], took))
            for method, values in results.items():
                rows.append((fraction, method, values))
    print("| labels | method | test accuracy, EMA weights | raw weights | seconds / run |")
    print("|---|---|---|---|---|")
    for fraction, method, values in rows:
        ema = [v[0] for v in values]
        raw = [v[1] for v in values]
        each = ", ".join(f"{v:.3f}" for v in ema)
        seconds = statistics.fmean(v[2] for v in values)
        print(f"| {fraction:.0%} | {method} | {statistics.fmean(ema):.3f} ({each}) | {statistics.fmean(raw):.3f} | "
              f"{seconds:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
