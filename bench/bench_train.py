"""glovita_train vs a bare PyTorch loop on the same digits images, alternated in one run.

Same model (timm resnet18, from scratch), 32x32 images, batch size, epochs, optimizer (AdamW, cosine), loader
workers; both validate every epoch. GloViTa runs with the `default` train policy (resize + normalise) so that
both pipelines do the same image work. Reports steady-state training images/s (mean over epochs after the
first) and the whole command's wall time, and the ratios GloViTa / bare.

    .venv/bin/python bench/bench_train.py --epochs 5 --rounds 4
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from glovita.datasets.digits import prepare_digits


def _split_folders(digits_root: Path, target: Path) -> None:
    """ImageFolder trees train/<class>/ and val/<class>/ of symlinks to the digits split files."""
    splits = json.loads((digits_root / "splits.json").read_text())
    for split in ("train", "val"):
        for sample_id in splits[split]:
            link = target / split / sample_id
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to((digits_root / "images" / sample_id).resolve())


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"{command[0]} failed:\n{result.stderr[-3000:]}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--extra", default="", help="extra glovita_train flags, e.g. '--training.no_channels_last'")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="glovita-bench-"))
    digits = work / "digits"
    prepare_digits(digits)
    _split_folders(digits, work / "folders")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    bin_dir = Path(sys.executable).parent
    bare_cmd = [
        sys.executable,
        str(Path(__file__).with_name("bare_loop.py")),
        "--train_dir",
        str(work / "folders" / "train"),
        "--val_dir",
        str(work / "folders" / "val"),
        "--epochs",
        str(args.epochs),
        "--batch_size",
        str(args.batch_size),
        "--workers",
        str(args.workers),
        "--model",
        args.model,
    ]
    results: dict[str, dict[str, list[float]]] = {"glovita": {"rate": [], "wall": []}, "bare": {"rate": [], "wall": []}}
    for round_index in range(args.rounds):
        group = f"bench{round_index}"
        glovita_cmd = [
            str(bin_dir / "glovita_train"),
            "--data.data_root_dir",
            str(digits),
            "--experiments_dir",
            str(work / "exp"),
            "--group",
            group,
            "--model.encoder.type",
            args.model,
            "--model.encoder.no_pretrained",
            "--data.augmentation.train_policy",
            "default",
            "--training.epochs",
            str(args.epochs),
            "--dataloading.batch_size",
            str(args.batch_size),
            "--dataloading.num_workers",
            str(args.workers),
            "--training.checkpoint_every_n_epochs",
            "0",
            *args.extra.split(),
        ]
        start = time.perf_counter()
        _run(glovita_cmd, env)
        wall = time.perf_counter() - start
        lines = (work / "exp" / "digits" / group / "0" / "metrics.jsonl").read_text().splitlines()
        rates = [json.loads(line)["train_samples_per_second"] for line in lines]
        results["glovita"]["rate"].append(statistics.mean(rates[1:] or rates))
        results["glovita"]["wall"].append(wall)

        start = time.perf_counter()
        bare = json.loads(_run(bare_cmd, env).stdout.strip().splitlines()[-1])
        results["bare"]["wall"].append(time.perf_counter() - start)
        results["bare"]["rate"].append(statistics.mean(bare["rates"][1:] or bare["rates"]))
        print(
            f"round {round_index + 1}: glovita {results['glovita']['rate'][-1]:.0f} img/s, "
            f"{results['glovita']['wall'][-1]:.1f} s | bare {results['bare']['rate'][-1]:.0f} img/s, "
            f"{results['bare']['wall'][-1]:.1f} s",
            flush=True,
        )
    g_rate, b_rate = (statistics.median(results[k]["rate"]) for k in ("glovita", "bare"))
    g_wall, b_wall = (statistics.median(results[k]["wall"]) for k in ("glovita", "bare"))
    print(f"\nmedian of {args.rounds} alternated rounds")
    print(f"{'':10}{'train img/s':>14}{'wall s':>10}")
    print(f"{'glovita':10}{g_rate:14.0f}{g_wall:10.1f}")
    print(f"{'bare loop':10}{b_rate:14.0f}{b_wall:10.1f}")
    print(f"ratio glovita/bare: throughput {g_rate / b_rate:.3f}x, whole-command wall time {g_wall / b_wall:.3f}x")
    print(json.dumps({"glovita": results["glovita"], "bare": results["bare"], "args": vars(args)}))


if __name__ == "__main__":
    main()
