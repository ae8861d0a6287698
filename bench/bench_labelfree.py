"""Label-free prediction on microscopy-like pairs: does a U-Net beat the trivial predictions?

The pairs (tests/segmentation/data.py labelfree_pairs): targets of 2-4 bright discs ("nuclei") on black; sources the
target blurred (Gaussian, radius 2), dimmed (x 0.5), lifted (+ 0.2) and with noise (sd 0.05). One documented
glovita_train command (docs/segmentation.md) trains a U-Net on a ResNet-18 from scratch; the test split's PSNR and
SSIM are set beside those of the input itself (as grayscale) and of the mean target brightness, in the same run.

    .venv/bin/python bench/bench_labelfree.py [--epochs 10] [--train 256] [--size 64]
"""

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from glovita.cli.train import main as train  # noqa: E402
from tests.segmentation.data import labelfree_pairs  # noqa: E402


def scores(predicted: list[np.ndarray], truth: list[np.ndarray]) -> tuple[float, float]:
    """Mean PSNR and SSIM (torchmetrics, data range 1) over the images."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    errors = [float(np.mean((p - t) ** 2)) for p, t in zip(predicted, truth, strict=True)]
    psnr = np.mean([10 * math.log10(1.0 / max(e, 1e-12)) for e in errors])
    stacked = torch.tensor(np.stack(predicted))[:, None], torch.tensor(np.stack(truth))[:, None]
    ssim = float(structural_similarity_index_measure(*stacked, data_range=1.0))  # type: ignore[arg-type]
    return float(psnr), ssim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train", type=int, default=256)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = labelfree_pairs(Path(folder) / "pairs", (("train", args.train), ("val", 32), ("test", 64)), args.size)
        began = time.perf_counter()
        train(["--data.dataset", "generic_image_dataset", "--data.data_root_dir", str(root), "--data.split_source",
               "subdirs", "--data.task", "LabelFree", "--data.targets_dir", "targets", "--data.num_classes", "1",
               "--data.augmentation.image_size", str(args.size), "--data.augmentation.resize_size", str(args.size),
               "--model.encoder.type", "resnet18", "--model.encoder.no_pretrained", "--model.head.head_type", "unet",
               "--training.epochs", str(args.epochs), "--dataloading.num_workers", "0", "--experiments_dir",
               str(Path(folder) / "exp"), "--group", "labelfree"])  # fmt: skip
        seconds = time.perf_counter() - began
        run = Path(folder) / "exp" / "generic_image_dataset" / "labelfree" / "0"
        tested = json.loads((run / "test_metrics.json").read_text())
        targets = sorted((root / "targets" / "test" / "x").glob("*.png"))
        truth = [np.asarray(Image.open(p), np.float32) / 255 for p in targets]
        sources = [np.asarray(Image.open(root / "images" / "test" / "x" / p.name).convert("L"), np.float32) / 255
                   for p in targets]  # fmt: skip
        mean = float(np.mean(np.stack([np.asarray(Image.open(p), np.float32) / 255 for p in
                                       sorted((root / "targets" / "train" / "x").glob("*.png"))])))  # fmt: skip
        rows = [
            ("the input itself (grayscale)", *scores(sources, truth)),
            ("the training targets' mean brightness", *scores([np.full_like(t, mean) for t in truth], truth)),
            (f"U-Net on ResNet-18, {args.epochs} epochs", tested["test_psnr"], tested["test_ssim"]),
        ]
    print(f"\n{args.train} training pairs at {args.size} px, 64 test pairs; training {seconds:.0f} s\n")
    print("| prediction | test PSNR (dB) | test SSIM |\n|---|---:|---:|")
    for name, psnr, ssim in rows:
        print(f"| {name} | {psnr:.2f} | {ssim:.3f} |")


if __name__ == "__main__":
    main()
