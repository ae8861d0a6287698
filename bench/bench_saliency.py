"""Decoy digits (after Ross et al. 2017's Decoy MNIST): does masked or saliency-guided classification recover what a
plain classifier loses to a shortcut?

glovita_make_digit_masks --style plain --decoy_size 6 draws each digit white on black with a grey square in a random
corner whose shade gives the digit away in train and val (255 - 25 x digit) and is random in test; the masks mark
the strokes only. The same images without the decoy give the ceiling. Methods, each a documented glovita_train
command, trained from scratch (ResNet-18) for the same epochs on the same splits:

- plain on clean digits (the ceiling) and plain on decoy digits;
- masked classification: a U-Net segmenter trained on the decoy set's masks, in front of the classifier (soft: image
  x P(stroke); hard: image x (P > 0.5));
- saliency-guided: cross-entropy + weight x (1 - share of the HiResCAM map inside the mask), at layer2 (4x4 at
  32 px), weight 1; and the input-gradient ("right for the right reasons") penalty, weight 1, outside the strokes
  grown by 2 pixels (--training.step.mask_dilation 2).

Each method runs with every seed; the table gives test accuracy (mean and each seed) and, for the saliency-guided
runs, test saliency IoU and pointing game.

    .venv/bin/python bench/bench_saliency.py [--epochs 10] [--seeds 0 1 2] [--methods plain_clean ...]
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from glovita.cli.make_digit_masks import main as make_digit_masks
from glovita.cli.train import main as train_main

SIZE = 32
"""Default image side; --size changes it (the decoy square grows with it: side / 32 x 6 pixels)."""


def common(size: int) -> list[str]:
    return [
        "--data.dataset", "generic_image_dataset", "--data.augmentation.image_size", str(size),
        "--data.augmentation.resize_size", str(size), "--model.encoder.type", "resnet18",
        "--model.encoder.no_pretrained", "--dataloading.batch_size", "32", "--training.checkpoint_every_n_epochs", "0",
    ]  # fmt: skip


CLASSIFY = ["--data.num_classes", "10"]
SALIENCY = ["--data.masks_dir", "masks", "--training.step.step_type", "saliency_guided"]
METHODS: dict[str, tuple[str, list[str]]] = {
    "plain_clean": ("clean", []),
    "plain_decoy": ("decoy", []),
    "masked_soft": ("decoy", ["--model.input_mask.mode", "soft"]),
    "masked_hard": ("decoy", ["--model.input_mask.mode", "hard"]),
    "saliency_hirescam": ("decoy", [*SALIENCY, "--training.step.target_layer", "layer2",
                                    "--training.step.saliency_weight", "1"]),
    "saliency_input_gradient": ("decoy", [*SALIENCY, "--training.step.method", "input_gradient",
                                          "--training.step.saliency_weight", "1", "--training.step.mask_dilation",
                                          "2"]),
}  # fmt: skip


def run(work: Path, data: Path, name: str, args: list[str], size: int = SIZE) -> tuple[dict[str, float], float]:
    began = time.perf_counter()
    train_main([*common(size), "--data.data_root_dir", str(data), *args, "--experiments_dir", str(work / "exp"),
                "--group", name])  # fmt: skip
    tested = json.loads((work / "exp" / "generic_image_dataset" / name / "0" / "test_metrics.json").read_text())
    return {key.removeprefix("test_"): value for key, value in tested.items()}, time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--segmenter_epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--work_dir", type=Path, default=None, help="keep the runs here (default: a temporary dir)")
    parser.add_argument("--size", type=int, default=SIZE, help="image side in pixels (the CAM layer's grid grows)")
    parser.add_argument("--target_layer", default="layer2", help="the HiResCAM layer of saliency_hirescam")
    args = parser.parse_args()
    decoy = str(max(1, round(6 * args.size / SIZE)))
    METHODS["saliency_hirescam"][1][METHODS["saliency_hirescam"][1].index("layer2")] = args.target_layer
    with tempfile.TemporaryDirectory() as folder:
        work = args.work_dir or Path(folder)
        sets = {}
        for name, extra in (("clean", []), ("decoy", ["--decoy_size", decoy])):
            sets[name] = work / f"digits_{name}"
            if not sets[name].exists():
                make_digit_masks(["--output_dir", str(sets[name]), "--image_size", str(args.size), "--style", "plain",
                                  *extra])  # fmt: skip
        segmenter = []
        if any(m.startswith("masked") for m in args.methods):
            seg_args = ["--data.num_classes", "2", "--data.task", "Segmentation", "--data.masks_dir", "masks",
                        "--model.head.head_type", "unet", "--training.epochs", str(args.segmenter_epochs)]  # fmt: skip
            scores, seconds = run(work, sets["decoy"], "segmenter", seg_args, args.size)
            print(f"segmenter: test mIoU {scores['miou']:.3f} ({seconds:.0f} s)", flush=True)
            checkpoint = work / "exp" / "generic_image_dataset" / "segmenter" / "0" / "checkpoints" / "best.pt"
            segmenter = ["--model.input_mask.checkpoint_path", str(checkpoint)]
        rows = []
        for method in args.methods:
            dataset, extra = METHODS[method]
            results = []
            for seed in args.seeds:
                masking = segmenter if method.startswith("masked") else []
                scores, seconds = run(work, sets[dataset], f"{method}_{seed}", [
                    *CLASSIFY, *masking, *extra, "--training.epochs", str(args.epochs), "--training.seed", str(seed),
                ], args.size)  # fmt: skip
                results.append((scores, seconds))
                print(f"{method} seed {seed}: test accuracy {scores['accuracy']:.3f} ({seconds:.0f} s)", flush=True)
            rows.append((method, results))
    print("\n| method | test accuracy (mean) | per seed | saliency IoU | pointing game | seconds per run |")
    print("|---|---|---|---|---|---|")
    for method, results in rows:
        accuracy = [scores["accuracy"] for scores, _ in results]
        seeds = " / ".join(f"{value:.3f}" for value in accuracy)
        iou = [scores["saliency_iou"] for scores, _ in results if "saliency_iou" in scores]
        hits = [scores["pointing_game"] for scores, _ in results if "pointing_game" in scores]
        shown = [f"{statistics.mean(v):.3f}" if v else "-" for v in (iou, hits)]
        seconds = statistics.mean(s for _, s in results)
        print(f"| {method} | {statistics.mean(accuracy):.3f} | {seeds} | {shown[0]} | {shown[1]} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
