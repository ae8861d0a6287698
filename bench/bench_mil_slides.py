"""MIL on per-slide feature folders (CLAM's layout), measured on this machine.

1. Reading: one epoch over S slides of N x D float16 instances (one h5 file each, as CLAM writes them) through
   GloViTa's training loader (slide_folder dataset, seeded sampler, bag collate, batch size 1) against a plain
   loop that opens each file with h5py, reads `features` and makes a float32 tensor of it, in the same order.
   Each epoch runs in a fresh process, alternating the two, so peak memory (max RSS) is per epoch; the median
   over rounds is reported. The files are read from the page cache after the first round.
2. Digit slides: a resnet10t trained on the digits with glovita_train, its features extracted with
   glovita_extract_features, slides made with glovita_make_digit_slides; CLAM and ABMIL trained on fold 0 for
   several seeds; test AUROC, and attention localisation: the share of positive test slides whose most-attended
   patch (glovita_infer's attention files) is a 9.

    .venv/bin/python bench/bench_mil_slides.py                      # both parts (500 x 2,000 x 1,024)
    .venv/bin/python bench/bench_mil_slides.py --part read --slides 100
"""

import argparse
import csv
import json
import multiprocessing as mp
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch


def write_slides(folder: Path, slides: int, instances: int, dim: int) -> None:
    files = folder / "h5_files"
    files.mkdir(parents=True)
    rng = np.random.default_rng(0)
    block = rng.standard_normal((instances, dim), dtype=np.float32).astype(np.float16)
    rows = ["case_id,slide_id,label,split"]
    for i in range(slides):
        with h5py.File(files / f"slide_{i:04d}.h5", "w") as handle:
            handle["features"] = np.roll(block, i, axis=0)
            handle["coords"] = np.stack([np.arange(instances) * 256, np.zeros(instances, dtype=np.int64)], axis=1)
        rows.append(f"case_{i},slide_{i:04d},{i % 2},{'val' if i == 0 else 'train'}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")


def _glovita_epoch(folder: Path, workers: int, queue: mp.Queue) -> None:
    from glovita.configs.data import PrecomputedFeaturesConfig
    from glovita.datasets.factory import build_datasets
    from glovita.runtime.loaders import EpochPlan, make_loader

    began = time.perf_counter()
    cfg = PrecomputedFeaturesConfig(feature_layout="slide_folder", features_dir=folder, num_classes=2,
                                    labels_csv=folder / "labels.csv")  # fmt: skip
    splits = build_datasets(cfg, None)
    scanned = time.perf_counter()
    plan = EpochPlan(len(splits.train), seed=1, shuffle=True)  # type: ignore[arg-type]
    sampler = splits.modality.train_sampler(plan, 1, False)
    loader = make_loader(splits.train, 1, sampler, workers, False, False, 2 if workers else None, False,
                         splits.modality.collate)  # fmt: skip
    total = 0.0
    for batch in loader:
        total += float(batch.inputs[0, 0, 0])
    ended = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put((ended - began, peak, total, scanned - began))


def _plain_epoch(folder: Path, workers: int, queue: mp.Queue) -> None:
    began = time.perf_counter()
    slides = sorted((folder / "h5_files").glob("*.h5"))[1:]  # slide 0 is the validation slide
    order = torch.randperm(len(slides), generator=torch.Generator().manual_seed(1)).tolist()
    total = 0.0
    for index in order:
        with h5py.File(slides[index], "r") as handle:
            features = torch.from_numpy(handle["features"][()]).float()[None]
        total += float(features[0, 0, 0])
    queue.put((time.perf_counter() - began, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, total, 0.0))


def read_timing(work: Path, slides: int, instances: int, dim: int, rounds: int, workers: int) -> dict:
    folder = work / "slides"
    write_slides(folder, slides, instances, dim)
    context = mp.get_context("spawn")
    results: dict[str, list[tuple[float, float, float]]] = {"glovita": [], "plain": []}
    kinds = {"glovita": _glovita_epoch, "plain": _plain_epoch}
    for round_index in range(rounds):
        order = list(kinds) if round_index % 2 == 0 else list(kinds)[::-1]
        for name in order:
            queue = context.Queue()
            process = context.Process(target=kinds[name], args=(folder, workers, queue))
            process.start()
            seconds, peak_mb, _, scan = queue.get()
            process.join()
            results[name].append((seconds, peak_mb, scan))
    shutil.rmtree(folder)
    summary: dict = {
        name: {
            "seconds": statistics.median(s for s, _, _ in r),
            "scan_seconds": statistics.median(c for _, _, c in r),
            "peak_rss_mb": max(m for _, m, _ in r),
        }
        for name, r in results.items()
    }
    glovita, plain = summary["glovita"], summary["plain"]
    summary["ratio"] = plain["seconds"] / glovita["seconds"]
    summary["ratio_after_scan"] = plain["seconds"] / (glovita["seconds"] - glovita["scan_seconds"])
    return {**summary, "rounds": results}


def _localisation(slides: Path, attention: Path) -> tuple[float, int]:
    hits = positives = 0
    for path in sorted(attention.glob("*.h5")):
        with h5py.File(path) as handle:
            scores = handle["attention"][()]
        with h5py.File(slides / "h5_files" / path.name) as handle:
            digits = handle["digits"][()]
        if 9 in digits:
            positives += 1
            hits += int(digits[int(scores[:, 0].argmax())] == 9)
    return hits / max(positives, 1), positives


def digit_slides(work: Path, seeds: int, epochs: int, num_slides: int) -> dict:
    from glovita.cli.extract_features import main as extract_main
    from glovita.cli.infer import main as infer_main
    from glovita.cli.make_digit_slides import main as slides_main
    from glovita.cli.train import main as train_main

    exp = work / "exp"
    train_main(["--data.data_root_dir", str(work / "digits"), "--experiments_dir", str(exp), "--group", "encoder",
                "--model.encoder.type", "resnet10t", "--model.encoder.no_pretrained", "--training.epochs", "8",
                "--training.checkpoint_every_n_epochs", "0"])  # fmt: skip
    encoder = exp / "digits" / "encoder" / "0"
    extract_main(["--checkpoint_path", str(encoder / "checkpoints" / "best.pt"), "--output_dir", str(work / "f"),
                  "--output_filename", "{split}.h5"])  # fmt: skip
    slides = work / "digit_slides"
    slides_main(["--features_dir", str(work / "f"), "--output_dir", str(slides), "--num_slides", str(num_slides)])
    heads = {
        "abmil": ["--model.head.head_type", "abmil"],
        "clam": ["--model.head.head_type", "clam", "--model.head.instance_eval"],
    }
    table: dict[str, dict[str, list[float]]] = {}
    for head, flags in heads.items():
        for seed in range(seeds):
            group = f"{head}_{seed}"
            train_main(["--data.dataset", "precomputed_features", "--data.feature_layout", "slide_folder",
                        "--data.features_dir", str(slides), "--data.labels_csv", str(slides / "labels.csv"),
                        "--data.splits_dir", str(slides / "splits"), "--data.num_classes", "2",
                        "--model.encoder.encoder_type", "precomputed", *flags, "--training.epochs", str(epochs),
                        "--dataloading.batch_size", "8", "--dataloading.num_workers", "0", "--training.seed",
                        str(seed), "--training.best_checkpoint_metric", "auroc",
                        "--experiments_dir", str(exp), "--group", group])  # fmt: skip
            run = exp / "precomputed_features" / group / "0"
            metrics = json.loads((run / "test_metrics.json").read_text())
            out = work / "pred" / group
            infer_main(["--checkpoint_path", str(run / "checkpoints" / "best.pt"), "--output_dir", str(out)])
            share, positives = _localisation(slides, out / "attention")
            cell = table.setdefault(head, {"auroc": [], "top1_is_9": []})
            cell["auroc"].append(metrics["test_auroc"])
            cell["top1_is_9"].append(share)
    with (slides / "splits" / "splits_0.csv").open() as handle:
        test_slides = sum(1 for row in csv.DictReader(handle) if row["test"])
    encoder_accuracy = json.loads((encoder / "test_metrics.json").read_text())["test_accuracy"]
    return {"encoder_test_accuracy": encoder_accuracy, "test_slides": test_slides,
            "positive_test_slides": positives, "heads": table}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["all", "read", "digit_slides"], default="all")
    parser.add_argument("--slides", type=int, default=500, help="part 1: slides")
    parser.add_argument("--instances", type=int, default=2000, help="part 1: instances per slide")
    parser.add_argument("--dim", type=int, default=1024, help="part 1: feature dim")
    parser.add_argument("--rounds", type=int, default=4, help="part 1: alternated rounds")
    parser.add_argument("--workers", type=int, default=0, help="part 1: GloViTa loader workers")
    parser.add_argument("--seeds", type=int, default=3, help="part 2: seeds per head")
    parser.add_argument("--epochs", type=int, default=30, help="part 2: MIL epochs")
    parser.add_argument("--num_slides", type=int, default=300, help="part 2: digit slides")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="glovita-slides-"))
    report: dict = {}
    if args.part in ("all", "read"):
        report["read"] = read_timing(work, args.slides, args.instances, args.dim, args.rounds, args.workers)
    if args.part in ("all", "digit_slides"):
        report["digit_slides"] = digit_slides(work, args.seeds, args.epochs, args.num_slides)
    print(json.dumps(report, indent=1))
    if "read" in report:
        r = report["read"]
        print(f"\n{args.slides} slides x {args.instances} x {args.dim} fp16, one epoch (median of {args.rounds}): "
              f"glovita {r['glovita']['seconds']:.2f} s (peak RSS {r['glovita']['peak_rss_mb']:.0f} MB), plain h5py "
              f"{r['plain']['seconds']:.2f} s (peak RSS {r['plain']['peak_rss_mb']:.0f} MB), speed ratio "
              f"{r['ratio']:.3f}; without the one-time scan of the folder ({r['glovita']['scan_seconds']:.2f} s) "
              f"{r['ratio_after_scan']:.3f}")  # fmt: skip
    if "digit_slides" in report:
        for head, cell in report["digit_slides"]["heads"].items():
            print(f"{head:6} test AUROC {np.mean(cell['auroc']):.3f} ± {np.std(cell['auroc']):.3f}   top-attention "
                  f"patch is a 9: {np.mean(cell['top1_is_9']):.3f} ± {np.std(cell['top1_is_9']):.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
