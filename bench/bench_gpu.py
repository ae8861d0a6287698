"""GPU training throughput: glovita_train vs a bare AMP loop with the same settings, alternated in one run.

Both train the same timm model from scratch on the same images (the bundled digits, resized to --image_size; a
generic_image_dataset folder for GloViTa, torchvision ImageFolder for the bare loop), with the same batch size,
loader workers, AdamW + cosine, mixed precision (--precision, default bf16-mixed), channels_last and optionally
torch.compile, and validate every epoch. Prints steady-state training images/s (epochs after the first), the
ratio, and peak GPU memory of each.

    .venv/bin/python bench/bench_gpu.py                      # CUDA: resnet50 at 224 px, bf16-mixed, channels_last
    .venv/bin/python bench/bench_gpu.py --compile            # also torch.compile
    .venv/bin/python bench/bench_gpu.py --tiny               # CPU smoke test (tiny model, 32 px; run by make test)
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


def _folders(digits: Path, target: Path, max_train: int, max_val: int) -> None:
    """images/train/<class>/ and images/val/<class>/ of symlinks to the first digits of each split."""
    splits = json.loads((digits / "splits.json").read_text())
    for split, limit in (("train", max_train), ("val", max_val)):
        for sample_id in splits[split][:limit]:
            link = target / "images" / split / sample_id
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to((digits / "images" / sample_id).resolve())


def _run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"{Path(command[1] if command[0] == sys.executable else command[0]).name} failed:\n"
                 f"{result.stderr[-3000:]}")  # fmt: skip
    return result.stdout


def _run_in_process(command: list[str]) -> str:
    """The same command in this process (--tiny: no interpreter start-up per run); returns its stdout."""
    import contextlib
    import io
    import runpy

    out = io.StringIO()
    saved = sys.argv
    try:
        with contextlib.redirect_stdout(out):
            if command[0] == sys.executable:  # the bare loop script
                sys.argv = command[1:]
                runpy.run_path(command[1], run_name="__main__")
            else:
                from glovita.cli.train import main as train

                train(command[1:])
    finally:
        sys.argv = saved
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="alternated rounds (GloViTa first, then bare first)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--precision", choices=["32", "bf16-mixed", "16-mixed"], default="bf16-mixed")
    parser.add_argument("--no_channels_last", action="store_true")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--max_train", type=int, default=100_000, help="training images (of the digits' 1,078)")
    parser.add_argument("--tiny", action="store_true", help="CPU smoke test: test_resnet, 32 px, 1 epoch, in-process")
    args = parser.parse_args()
    if args.tiny:
        args.model, args.image_size, args.batch_size, args.epochs, args.rounds = "test_resnet", 32, 32, 1, 1
        args.workers, args.device, args.max_train = 0, "cpu", 128
    else:
        import torch

        if args.device == "cuda" and not torch.cuda.is_available():
            sys.exit("No CUDA device here: run on a GPU machine, or use --tiny for the CPU smoke test.")

    work = Path(tempfile.mkdtemp(prefix="glovita-gpu-"))
    prepare_digits(work / "digits")
    _folders(work / "digits", work / "data", args.max_train, args.max_train // 2)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    bare_cmd = [sys.executable, str(Path(__file__).with_name("bare_loop.py")),
                "--train_dir", str(work / "data" / "images" / "train"),
                "--val_dir", str(work / "data" / "images" / "val"),
                "--epochs", str(args.epochs), "--batch_size", str(args.batch_size), "--workers", str(args.workers),
                "--model", args.model, "--image_size", str(args.image_size), "--device", args.device,
                "--precision", args.precision, *([] if args.no_channels_last else ["--channels_last"]),
                *(["--compile"] if args.compile else [])]  # fmt: skip
    results: dict[str, dict[str, list[float]]] = {name: {"rate": [], "wall": [], "peak_gb": []} for name in
                                                  ("glovita", "bare")}  # fmt: skip
    for round_index in range(args.rounds):
        group = f"gpu{round_index}"
        glovita_cmd = [str(Path(sys.executable).with_name("glovita_train")),
                       "--data.dataset", "generic_image_dataset", "--data.data_root_dir", str(work / "data"),
                       "--data.split_source", "subdirs", "--data.label_source", "folder", "--data.num_classes", "10",
                       "--data.augmentation.train_policy", "default",
                       "--data.augmentation.image_size", str(args.image_size),
                       "--data.augmentation.resize_size", str(args.image_size),
                       "--data.augmentation.mean", "0.485", "0.456", "0.406",
                       "--data.augmentation.std", "0.229", "0.224", "0.225",
                       "--model.encoder.type", args.model, "--model.encoder.no_pretrained",
                       "--training.epochs", str(args.epochs), "--training.precision", args.precision,
                       "--training.device", args.device, "--training.checkpoint_every_n_epochs", "0",
                       *(["--training.no_channels_last"] if args.no_channels_last else []),
                       *(["--training.compile"] if args.compile else []),
                       "--dataloading.batch_size", str(args.batch_size), "--dataloading.num_workers", str(args.workers),
                       "--experiments_dir", str(work / "exp"), "--group", group]  # fmt: skip
        order = [("glovita", glovita_cmd), ("bare", bare_cmd)]
        for name, command in order if round_index % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            out = _run_in_process(command) if args.tiny else _run(command, env)
            results[name]["wall"].append(time.perf_counter() - start)
            if name == "glovita":
                lines = (work / "exp" / "generic_image_dataset" / group / "0" / "metrics.jsonl").read_text()
                epochs = [json.loads(line) for line in lines.splitlines()]
                rates = [e["train_samples_per_second"] for e in epochs]
                peak = max((e.get("cuda_peak_memory_gb") or 0.0 for e in epochs), default=0.0)
            else:
                bare = json.loads(out.strip().splitlines()[-1])
                rates, peak = bare["rates"], bare.get("cuda_peak_memory_gb") or 0.0
            results[name]["rate"].append(statistics.mean(rates[1:] or rates))
            results[name]["peak_gb"].append(peak)
        print(f"round {round_index + 1}: glovita {results['glovita']['rate'][-1]:.0f} img/s | bare "
              f"{results['bare']['rate'][-1]:.0f} img/s", flush=True)  # fmt: skip
    g_rate, b_rate = (statistics.mean(results[k]["rate"]) for k in ("glovita", "bare"))
    g_peak, b_peak = (max(results[k]["peak_gb"]) for k in ("glovita", "bare"))
    device = args.device
    if device == "cuda":
        import torch

        device = torch.cuda.get_device_name(0)
    layout = "contiguous" if args.no_channels_last else "channels_last"
    compiled = ", compiled" if args.compile else ""
    settings = f"{args.model} at {args.image_size} px, batch {args.batch_size}, {args.precision}, {layout}{compiled}"
    print(f"\n{settings} on {device}")
    print(f"{'':10}{'train img/s':>14}{'peak GPU GB':>14}")
    print(f"{'glovita':10}{g_rate:14.0f}{g_peak:14.2f}")
    print(f"{'bare loop':10}{b_rate:14.0f}{b_peak:14.2f}")
    print(f"ratio glovita/bare: throughput {g_rate / b_rate:.3f}x")
    print(json.dumps({"glovita": results["glovita"], "bare": results["bare"], "ratio": g_rate / b_rate,
                      "device": device, "args": vars(args)}))  # fmt: skip


if __name__ == "__main__":
    main()
