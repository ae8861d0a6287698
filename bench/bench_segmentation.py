"""Segmentation: GloViTa's U-Net (timm ResNet-18 + smp decoder) and torchvision's DeepLabV3, trained here, against
a global Otsu threshold measured in the same run on the same test images, on two sets made locally:

- digit masks (glovita_make_digit_masks, 64x64): bundled digits on cluttered colour backgrounds;
- coins: scikit-image's shipped `coins` photograph, its mask made once by the classical method of scikit-image's
  own tutorial (Sobel elevation map + watershed from dark/bright markers + hole filling) and stored as files, cut
  into 64x64 tiles: the left 60 % of the photograph trains, the next 20 % validates, the right 20 % tests.

Otsu thresholds each test image's grey levels and keeps, per image, the polarity (bright or dark foreground) that
scores better against the truth: an oracle choice that favours the baseline. Scores are mIoU and Dice over both
classes from one pixel confusion matrix per method (glovita.metrics.segmentation), as test_metrics.json computes them.

    .venv/bin/python bench/bench_segmentation.py [--unet_epochs 15] [--deeplab_epochs 10] [--sets digits coins]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from glovita.cli.make_digit_masks import main as make_digit_masks
from glovita.cli.train import main as train_main
from glovita.metrics.segmentation import image_confusion, scores_from_confusion

TILE = 64


def make_coin_tiles(root: Path, stride: int = 16) -> Path:
    """The coins photograph as 64x64 RGB tiles with their label maps (0 background, 1 coin) and splits.json."""
    from scipy import ndimage
    from skimage import data, filters, segmentation

    coins = data.coins()
    markers = np.zeros_like(coins)
    markers[coins < 30], markers[coins > 150] = 1, 2
    mask = ndimage.binary_fill_holes(segmentation.watershed(filters.sobel(coins), markers) == 2).astype(np.uint8)
    height, width = coins.shape
    bounds = {
        "train": (0, int(0.6 * width)),
        "val": (int(0.6 * width), int(0.8 * width)),
        "test": (int(0.8 * width), width),
    }
    splits: dict[str, list[str]] = {}
    for split, (start, end) in bounds.items():
        splits[split] = []
        for top in range(0, height - TILE + 1, stride):
            for left in range(start, end - TILE + 1, stride):
                name = f"{split}_{top:03d}_{left:03d}.png"
                tile = coins[top : top + TILE, left : left + TILE]
                for folder, array in (
                    ("images", np.repeat(tile[..., None], 3, 2)),
                    ("masks", mask[top : top + TILE, left : left + TILE]),
                ):
                    (root / folder).mkdir(parents=True, exist_ok=True)
                    Image.fromarray(array).save(root / folder / name)
                splits[split].append(name)
    (root / "splits.json").write_text(json.dumps(splits))
    return root


def otsu(root: Path) -> dict[str, float]:
    from skimage.filters import threshold_otsu

    total = torch.zeros(2, 2, dtype=torch.long)
    for sample_id in json.loads((root / "splits.json").read_text())["test"]:
        grey = np.asarray(Image.open(root / "images" / sample_id).convert("L"), dtype=np.float64)
        truth = torch.from_numpy(np.array(Image.open((root / "masks" / sample_id).with_suffix(".png")))).long()
        bright = torch.from_numpy(grey > threshold_otsu(grey)).long()
        options = [image_confusion(p, truth, 2, 255) for p in (bright, 1 - bright)]
        total += max(options, key=lambda c: scores_from_confusion(c)["miou"])
    return scores_from_confusion(total)


def glovita(root: Path, model: list[str], epochs: int, work: Path, name: str) -> tuple[dict[str, float], float]:
    began = time.perf_counter()
    train_main([
        "--data.dataset", "generic_image_dataset", "--data.data_root_dir", str(root), "--data.num_classes", "2",
        "--data.task", "Segmentation", "--data.masks_dir", "masks", "--data.augmentation.image_size", str(TILE),
        "--data.augmentation.resize_size", str(TILE), *model, "--training.epochs", str(epochs),
        "--dataloading.batch_size", "32", "--experiments_dir", str(work / "exp"), "--group", name,
        "--training.checkpoint_every_n_epochs", "0",
    ])  # fmt: skip
    seconds = time.perf_counter() - began
    tested = json.loads((work / "exp" / "generic_image_dataset" / name / "0" / "test_metrics.json").read_text())
    return {key.removeprefix("test_"): value for key, value in tested.items()}, seconds


UNET = ["--model.encoder.type", "resnet18", "--model.encoder.no_pretrained", "--model.head.head_type", "unet"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--unet_epochs", type=int, default=15)
    parser.add_argument("--deeplab_epochs", type=int, default=10)
    parser.add_argument("--deeplab", default="deeplabv3_resnet50")
    parser.add_argument("--sets", nargs="+", default=["digits", "coins"])
    args = parser.parse_args()
    deeplab = ["--model.encoder.encoder_type", "torchvision_segmentation", "--model.encoder.type", args.deeplab,
               "--model.head.head_type", "torchvision_segmentation"]  # fmt: skip
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name in args.sets:
            if name == "digits":
                root = work / "digit_masks"
                make_digit_masks(["--output_dir", str(root), "--image_size", str(TILE)])
                methods = [("U-Net (ResNet-18)", UNET, args.unet_epochs), (args.deeplab, deeplab, args.deeplab_epochs)]
            else:
                root = make_coin_tiles(work / "coins")
                methods = [("U-Net (ResNet-18)", UNET, args.unet_epochs)]
            began = time.perf_counter()
            baseline = otsu(root)
            rows.append((name, "Otsu threshold (oracle polarity)", baseline, time.perf_counter() - began, 0))
            for label, model, epochs in methods:
                scores, seconds = glovita(root, model, epochs, work, f"{name}_{label.split()[0].lower()}")
                rows.append((name, label, scores, seconds, epochs))
    print("| set | method | epochs | test mIoU | test Dice | foreground IoU | seconds |")
    print("|---|---|---|---|---|---|---|")
    for name, label, scores, seconds, epochs in rows:
        print(f"| {name} | {label} | {epochs or '-'} | {scores['miou']:.3f} | {scores['dice']:.3f} | "
              f"{scores['iou_class_1']:.3f} | {seconds:.0f} |")  # fmt: skip


if __name__ == "__main__":
    main()
