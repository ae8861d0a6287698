"""Precomputed features and MIL, measured on this machine.

1. digits-bags (after Ilse et al. 2018's MNIST-bags): an encoder is trained on the digits with glovita_train,
   glovita_extract_features extracts its features, bags of digit features (size ~ N(10, 2), at least 2) are
   positive iff they contain a 9. 50/100/200 training bags from the train split, 100 validation bags from the
   val split, a fixed 1,000-bag test set from the test split. abmil and clam are trained on each; test AUROC.
2. One epoch over a 1M x 768 float16 instance file through GloViTa's loader vs a plain h5py/numpy read of
   the same array into memory followed by the same shuffled batches; alternated.
3. Extraction images/s: glovita_extract_features vs a bare torch.no_grad() forward loop (same model, weights,
   images, transform, batch size, workers); alternated.

    .venv/bin/python bench/bench_mil.py
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from glovita.cli.extract_features import main as extract_main
from glovita.cli.train import main as train_main


def _bags(features: np.ndarray, labels: np.ndarray, count: int, rng: np.random.Generator, path: Path) -> None:
    sizes = np.maximum(2, np.rint(rng.normal(10, 2, count))).astype(int)
    members = [rng.choice(len(features), size) for size in sizes]
    with h5py.File(path, "w") as handle:
        handle["features"] = np.concatenate([features[m] for m in members])
        handle["bag_lengths"] = sizes
        handle["labels"] = np.array([int(9 in labels[m]) for m in members])


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path) as handle:
        return handle["features"][:], handle["labels"][:]


def digits_bags(work: Path, seeds: int, epochs: int) -> dict:
    digits = work / "digits"
    train_main(["--data.data_root_dir", str(digits), "--experiments_dir", str(work / "exp"), "--group", "encoder",
                "--model.encoder.type", "resnet10t", "--model.encoder.no_pretrained", "--training.epochs", "8",
                "--training.checkpoint_every_n_epochs", "0"])  # fmt: skip
    run_dir = work / "exp" / "digits" / "encoder" / "0"
    encoder_accuracy = json.loads((run_dir / "test_metrics.json").read_text())["test_accuracy"]
    extract_main(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(work / "f"),
                  "--output_filename", "{split}.h5"])  # fmt: skip
    split_data = {split: _read(work / "f" / f"{split}.h5") for split in ("train", "val", "test")}
    rng = np.random.default_rng(0)
    bags = work / "bags"
    bags.mkdir()
    _bags(*split_data["val"], 100, rng, bags / "val.h5")
    _bags(*split_data["test"], 1000, rng, bags / "test.h5")
    for n in (50, 100, 200):
        _bags(*split_data["train"], n, rng, bags / f"train_{n}.h5")
    dim = split_data["train"][0].shape[1]
    heads = {
        "abmil": ["--model.head.head_type", "abmil"],
        "clam": ["--model.head.head_type", "clam", "--model.head.variant", "sb", "--model.head.instance_eval"],
    }
    table: dict[str, dict[int, list[float]]] = {head: {} for head in heads}
    for head, flags in heads.items():
        for n in (50, 100, 200):
            for seed in range(seeds):
                group = f"{head}_{n}_{seed}"
                train_main(["--data.dataset", "precomputed_features", "--data.num_classes", "2",
                            "--data.train_features_file", str(bags / f"train_{n}.h5"),
                            "--data.val_features_file", str(bags / "val.h5"),
                            "--data.test_features_file", str(bags / "test.h5"),
                            "--model.encoder.encoder_type", "precomputed", "--model.encoder.feature_dim", str(dim),
                            *flags, "--training.epochs", str(epochs), "--dataloading.batch_size", "4",
                            "--dataloading.num_workers", "0", "--optimizer.lr", "5e-4", "--training.seed", str(seed),
                            "--training.best_checkpoint_metric", "auroc", "--training.checkpoint_every_n_epochs", "0",
                            "--experiments_dir", str(work / "exp"), "--group", group])  # fmt: skip
                metrics = json.loads(
                    (work / "exp" / "precomputed_features" / group / "0" / "test_metrics.json").read_text()
                )
                table[head].setdefault(n, []).append(metrics["test_auroc"])
    positives = float(np.mean(_read(bags / "test.h5")[1]))
    return {"encoder_test_accuracy": encoder_accuracy, "test_positive_rate": positives, "auroc": table}


def read_timing(work: Path, rounds: int, rows: int = 1_000_000, dim: int = 768, batch: int = 512) -> dict:
    from glovita.datasets.precomputed_features import PrecomputedFeatureDataset, read_layout
    from glovita.modalities.features import InstanceModality
    from glovita.runtime.loaders import EpochPlan, SeededBatchSampler, make_loader

    path = work / "big.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as handle:
        features = handle.create_dataset("features", (rows, dim), dtype=np.float16)
        for start in range(0, rows, 100_000):
            features[start : start + 100_000] = rng.standard_normal((100_000, dim), dtype=np.float32)
        handle["labels"] = rng.integers(0, 2, rows)

    def numpy_epoch() -> float:
        began = time.perf_counter()
        with h5py.File(path) as handle:
            array, labels = handle["features"][:], handle["labels"][:]
        order = np.random.default_rng(1).permutation(rows)
        for start in range(0, rows, batch):
            index = order[start : start + batch]
            torch.from_numpy(array[index]).float(), torch.from_numpy(labels[index])
        return time.perf_counter() - began

    def glovita_epoch() -> float:
        began = time.perf_counter()
        dataset = PrecomputedFeatureDataset(path, read_layout(path), False, 2, "auto")
        sampler = SeededBatchSampler(
            EpochPlan(rows, seed=1, shuffle=True), batch, drop_last=False
        )  # as glovita_train uses
        collate = InstanceModality().collate
        for _batch in make_loader(dataset, None, sampler, 0, False, False, None, False, collate):
            pass
        return time.perf_counter() - began

    results: dict[str, list[float]] = {"glovita": [], "numpy": []}
    for round_index in range(rounds):
        order = (("numpy", numpy_epoch), ("glovita", glovita_epoch))
        for name, epoch in order if round_index % 2 == 0 else order[::-1]:
            results[name].append(epoch())
    path.unlink()
    return {**{name: statistics.median(times) for name, times in results.items()}, "rounds": results}


def extraction_timing(work: Path, rounds: int) -> dict:
    import timm
    from torchvision import datasets, transforms

    from glovita.configs.extract import ExtractFeaturesConfig
    from glovita.features.extract import extract_features

    digits = work / "digits"
    checkpoint = work / "exp" / "digits" / "encoder" / "0" / "checkpoints" / "best.pt"
    folder = work / "test_folder"
    for sample_id in json.loads((digits / "splits.json").read_text())["test"]:
        link = folder / sample_id
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to((digits / "images" / sample_id).resolve())
    model = timm.create_model("resnet10t", num_classes=0)
    weights = torch.load(checkpoint, weights_only=True)["model"]
    model.load_state_dict(
        {k.removeprefix("encoder.model."): v for k, v in weights.items() if k.startswith("encoder.model.")}
    )
    model.eval()
    resolved = json.loads((checkpoint.parent.parent / "resolved_config.json").read_text())["augmentation"]
    transform = transforms.Compose([transforms.Grayscale(3), transforms.Resize(32), transforms.ToTensor(),
                                    transforms.Normalize(resolved["mean"], resolved["std"])])  # fmt: skip
    loader = torch.utils.data.DataLoader(datasets.ImageFolder(str(folder), transform), batch_size=128, num_workers=2)
    cfg = ExtractFeaturesConfig(checkpoint_path=checkpoint, split="test", output_dir=work / "timing",
                                dataloading={"batch_size": 128, "num_workers": 2})  # fmt: skip
    results: dict[str, list[float]] = {"glovita": [], "bare": []}
    for _ in range(rounds):
        written = extract_features(cfg)[0]
        results["glovita"].append(written.num_samples / written.seconds)
        began, seen = time.perf_counter(), 0
        with torch.no_grad():
            for images, _ in loader:
                model(images)
                seen += images.shape[0]
        results["bare"].append(seen / (time.perf_counter() - began))
    return {name: statistics.mean(values) for name, values in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip_read_timing", action="store_true")
    parser.add_argument("--only_read_timing", action="store_true", help="only part 2 (the 1M x 768 epoch)")
    parser.add_argument("--read_rounds", type=int, default=8, help="alternated rounds of part 2")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="glovita-mil-"))
    report: dict = {}
    if not args.only_read_timing:
        report["digits_bags"] = digits_bags(work, args.seeds, args.epochs)
        report["extraction_images_per_second"] = extraction_timing(work, args.rounds)
    if not args.skip_read_timing:
        report["epoch_seconds_1M_x_768_fp16"] = read_timing(work, args.read_rounds)
    print(json.dumps(report, indent=1))
    if "digits_bags" in report:
        print("\ndigits-bags test AUROC (mean ± std over seeds)")
        for head, by_n in report["digits_bags"]["auroc"].items():
            cells = "  ".join(f"{n} bags: {np.mean(v):.3f} ± {np.std(v):.3f}" for n, v in by_n.items())
            print(f"  {head:6} {cells}")
        ex = report["extraction_images_per_second"]
        ratio = ex["glovita"] / ex["bare"]
        print(f"extraction: glovita {ex['glovita']:.0f} img/s, bare {ex['bare']:.0f} img/s, ratio {ratio:.3f}")
    if "epoch_seconds_1M_x_768_fp16" in report:
        rt = report["epoch_seconds_1M_x_768_fp16"]
        print(f"1M x 768 fp16 epoch: glovita {rt['glovita']:.2f} s, numpy {rt['numpy']:.2f} s, "
              f"speed ratio {rt['numpy'] / rt['glovita']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
