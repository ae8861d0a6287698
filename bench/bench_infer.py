"""glovita_infer vs a bare `torch.no_grad()` forward loop over the same images and model, alternated in one run.

A resnet18 run is trained for three epochs on the bundled digits (32x32), then both predict every digits image
(1,797 PNGs in class folders) with the same model object, transform (the run's `default` test policy), batch size
and loader workers. The bare loop is ImageFolder -> DataLoader -> model(x).softmax(-1) under no_grad.
GloViTa's call also rebuilds the model from the run directory, computes the metrics and writes the CSV and
metrics.json: its whole-call rate is reported beside its loop rate.

    .venv/bin/python bench/bench_infer.py --rounds 3
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision.datasets import ImageFolder

from glovita.cli.train import main as train
from glovita.configs.infer import InferConfig
from glovita.datasets.digits import prepare_digits
from glovita.inference.predict import build_transform_for, predict
from glovita.inference.restore import load_run, load_weights
from glovita.models.factory import build_model


def bare_loop(model: torch.nn.Module, folder: Path, transform, batch_size: int, workers: int) -> float:
    """Images/s of a plain ImageFolder + DataLoader + no_grad forward + softmax."""
    dataset = ImageFolder(str(folder), transform=lambda image: transform(image.convert("RGB")))
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers)
    model.eval()
    start = time.perf_counter()
    seen = 0
    with torch.no_grad():
        for images, _ in loader:
            probabilities = model(images).softmax(dim=-1)
            seen += probabilities.shape[0]
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default="resnet18")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="glovita-bench-infer-"))
    digits = work / "digits"
    prepare_digits(digits)
    train(
        [
            "--data.data_root_dir", str(digits), "--model.encoder.type", args.model, "--model.encoder.no_pretrained",
            "--training.epochs", "3", "--experiments_dir", str(work / "exp"), "--group", "bench",
        ]
    )  # fmt: skip
    checkpoint = work / "exp" / "digits" / "bench" / "0" / "checkpoints" / "best.pt"
    run = load_run(checkpoint)
    model = build_model(run.config.model, run.config.peft, run.config.data.num_classes, 0.0)
    load_weights(model, run)
    transform = build_transform_for(run, model)
    images = digits / "images"
    cfg = InferConfig(
        checkpoint_path=checkpoint,
        output_dir=work / "pred",
        image_dir=images,
        dataloading={"batch_size": args.batch_size, "num_workers": args.workers},
    )

    bare, ours_loop, ours_call = [], [], []
    for _ in range(args.rounds):
        bare.append(bare_loop(model, images, transform, args.batch_size, args.workers))
        began = time.perf_counter()
        result = predict(cfg)
        ours_call.append(result.num_samples / (time.perf_counter() - began))
        ours_loop.append(result.num_samples / result.seconds)
    b, loop, call = (statistics.median(v) for v in (bare, ours_loop, ours_call))
    print(f"\n{args.model} on {result.num_samples} digits images, batch {args.batch_size}, {args.workers} workers, "
          f"{torch.get_num_threads()} threads, median of {args.rounds} rounds")  # fmt: skip
    print(f"bare no_grad loop:            {b:8.0f} images/s")
    print(f"glovita_infer loop:           {loop:8.0f} images/s  ({loop / b:.2f}x bare)")
    print(f"glovita_infer whole call:     {call:8.0f} images/s  ({call / b:.2f}x bare)")
    print(f"accuracy reported by glovita_infer: {result.metrics['accuracy']:.4f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
