"""Every encoder family at a small size on the bundled digits, and LoRA vs full fine-tuning, in one run.

Each configuration runs `glovita_train` as its own process (so peak memory is its own) on the digits
(32x32, batch 64, 2 workers, AdamW, from scratch) for --epochs epochs; reported: training images/s (median
over epochs after the first), test accuracy, wall time, peak resident memory.

    .venv/bin/python bench/bench_models.py --epochs 5
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

FAMILIES = {
    "timm resnet18": ["--model.encoder.type", "resnet18"],
    "torchvision resnet18": ["--model.encoder.encoder_type", "torchvision", "--model.encoder.type", "resnet18"],
    "transformer vit (192, 6 layers)": [
        "--model.encoder.encoder_type", "transformer", "--model.encoder.type", "vit", "--model.encoder.model_kwargs",
        "hidden_size", "192", "num_hidden_layers", "6", "num_attention_heads", "3", "intermediate_size", "768",
        "image_size", "32", "patch_size", "4",
    ],
    "dinov2 vit-s/14 reg4 (6 blocks)": [
        "--model.encoder.encoder_type", "dinov2", "--model.encoder.model_kwargs", "depth", "6",
    ],
    "dinov3 vit-s/16 (6 blocks)": [
        "--model.encoder.encoder_type", "dinov3", "--model.encoder.model_kwargs", "depth", "6",
    ],
    "residual_encoder 2D (32-256)": ["--model.encoder.encoder_type", "residual_encoder"],
}  # fmt: skip
VIT_S = [
    "--model.encoder.type", "vit_small_patch16_224",
    "--model.encoder.model_kwargs", "img_size", "32", "patch_size", "4",
]  # fmt: skip
PEFT = {"vit-s/4 full fine-tuning": [*VIT_S], "vit-s/4 LoRA r=8": [*VIT_S, "--peft.method", "lora"]}

_RUNNER = (
    "import resource, sys; from glovita.cli.train import main; main(sys.argv[1:]); "
    "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
)


def run(name: str, flags: list[str], epochs: int, work: Path) -> dict:
    group = "".join(c if c.isalnum() else "_" for c in name)
    args = [
        "--data.data_root_dir", str(work / "digits"), "--model.encoder.no_pretrained", "--training.epochs",
        str(epochs), "--experiments_dir", str(work / "exp"), "--group", group, "--dataloading.num_workers", "2",
        *flags,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run([sys.executable, "-c", _RUNNER, *args], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.exit(f"{name} failed:\n{result.stderr[-3000:]}")
    run_dir = work / "exp" / "digits" / group / "0"
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    test = json.loads((run_dir / "test_metrics.json").read_text())
    info = json.loads((run_dir / "runtime_info.json").read_text())
    resolved = json.loads((run_dir / "resolved_config.json").read_text())
    rss = next(int(line.split()[1]) for line in result.stdout.splitlines() if line.startswith("MAXRSS_KB"))
    rates = [r["train_samples_per_second"] for r in records[1:]] or [records[0]["train_samples_per_second"]]
    steps = resolved["steps_per_epoch"]
    return {
        "name": name,
        "images_per_second": statistics.median(rates),
        "step_ms": 1000 * statistics.median(r["epoch_seconds"] for r in records[1:] or records) / steps,
        "test_accuracy": test["test_accuracy"],
        "wall_seconds": info["wall_seconds"],
        "peak_rss_mb": rss / 1024,
        "trainable": resolved["parameters"]["trainable"],
        "total": resolved["parameters"]["total"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--peft_epochs", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="glovita-bench-models-"))
    from glovita.datasets.digits import prepare_digits

    prepare_digits(work / "digits")
    print(f"| family (digits 32x32, {args.epochs} epochs, from scratch) | params | images/s | test accuracy | wall s |")
    print("|---|---|---|---|---|")
    for name, flags in FAMILIES.items():
        r = run(name, flags, args.epochs, work)
        print(f"| {name} | {r['total'] / 1e6:.1f}M | {r['images_per_second']:.0f} | {r['test_accuracy']:.3f} | "
              f"{r['wall_seconds']:.0f} |", flush=True)  # fmt: skip
    print(f"\n| ViT-S/4 on digits ({args.peft_epochs} epochs) | trainable / total | step ms | images/s | peak RSS MB |")
    print("|---|---|---|---|---|")
    for name, flags in PEFT.items():
        r = run(name, flags, args.peft_epochs, work)
        share = f"{r['trainable'] / 1e6:.2f}M / {r['total'] / 1e6:.2f}M"
        print(f"| {name} | {share} | {r['step_ms']:.0f} | {r['images_per_second']:.0f} | {r['peak_rss_mb']:.0f} |",
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
