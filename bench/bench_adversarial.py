"""Adversarial training on digits: clean and PGD-robust test accuracy of a plain run, PGD training and TRADES, at
two L-inf radii, three seeds each.

Every run is a documented glovita_train command (training.step:adversarial-step-config): the same tiny ResNet
(test_resnet) on the bundled digits at 16 px for the same epochs; the plain run is the adversarial step with
epsilon 0 (it trains on the images themselves) and eval_epsilon set, so all runs are scored by the same attack:
PGD-10 with a random start, step 2.5 x eps / 10, on the whole test split, in pixel units of [0, 1].

    .venv/bin/python bench/bench_adversarial.py [--epochs 8] [--seeds 0 1 2] [--epsilons 0.05 0.1]
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from glovita.cli.train import main as train_main

COMMON = [
    "--model.encoder.type", "test_resnet", "--model.encoder.no_pretrained", "--data.augmentation.image_size", "16",
    "--dataloading.batch_size", "32", "--optimizer.lr", "0.003", "--dataloading.num_workers", "0",
    "--training.checkpoint_every_n_epochs", "0", "training.step:adversarial-step-config",
    "--training.step.steps", "5", "--training.step.robust_eval_every_n_epochs", "100",
    "--training.step.robust_eval_max_samples", "100000",
]  # fmt: skip


def methods(eps: float) -> dict[str, list[str]]:
    return {
        "plain": ["--training.step.epsilon", "0", "--training.step.eval_epsilon", str(eps)],
        "pgd": ["--training.step.epsilon", str(eps)],
        "trades": ["--training.step.method", "trades", "--training.step.epsilon", str(eps)],
    }


def run(work: Path, name: str, args: list[str]) -> tuple[dict[str, float], float]:
    began = time.perf_counter()
    train_main([*COMMON, *args, "--experiments_dir", str(work / "exp"), "--group", name])
    tested = json.loads((work / "exp" / "digits" / name / "0" / "test_metrics.json").read_text())
    return tested, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0.05, 0.1])
    options = parser.parse_args()
    rows: list[tuple[str, float, list[float], list[float], float]] = []
    with tempfile.TemporaryDirectory() as folder:
        import os

        work = Path(folder)
        os.chdir(work)  # the digits folder is written under ./data
        for eps in options.epsilons:
            for name, extra in methods(eps).items():
                clean, robust, seconds = [], [], 0.0
                for seed in options.seeds:  # seeds inside the method: the runs of one row are alternated with none
                    tested, took = run(work, f"{name}_{eps}_{seed}", [*extra, "--training.epochs", str(options.epochs),
                                                                      "--training.seed", str(seed)])  # fmt: skip
                    clean.append(tested["test_accuracy"])
                    robust.append(tested["test_robust_accuracy"])
                    seconds += took
                rows.append((name, eps, clean, robust, seconds / len(options.seeds)))
    print("| method | eps (L-inf, pixels) | test accuracy | PGD-10 robust accuracy | seconds / run |")
    print("|---|---|---|---|---|")
    for name, eps, clean, robust, seconds in rows:
        each_clean = ", ".join(f"{v:.3f}" for v in clean)
        each_robust = ", ".join(f"{v:.3f}" for v in robust)
        print(f"| {name} | {eps} | {statistics.fmean(clean):.3f} ({each_clean}) | {statistics.fmean(robust):.3f} "
              f"({each_robust}) | {seconds:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
