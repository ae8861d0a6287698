"""Data-pipeline throughput: GloViTa's dataset + policy vs the same torchvision transforms called directly.

Both decode the same 256x256 PNG files (crops of scikit-learn's bundled photos) with PIL and apply
`default_2d_3` at 224x224 (GloViTa: GenericImageDataset + TransformedDataset with per-sample seeding; direct:
a torchvision ImageFolder with the identical v2 Compose), batch 64, 2 workers, alternated in one run.
The 3D part does the same for `default_nnunet` on 128^3 float32 volumes (.npy): GloViTa's VolumeDataset +
TransformedDataset (per-sample torch and numpy seeding) against a plain Dataset calling np.load and the same
batchgeneratorsv2 pipeline, batch 2. Also reports, for the digits demo configuration, how long the training
loop waited for data per epoch.

    .venv/bin/python bench/bench_augment.py --rounds 3
"""

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_sample_images
from torchvision import datasets

from glovita.augmentation.factory import build_transform
from glovita.augmentation.preprocessing import Preprocessing
from glovita.cli.train import main as train_main
from glovita.configs.data import GenericImageDatasetConfig
from glovita.datasets.factory import build_datasets
from glovita.modalities.images import JointImageTransform
from glovita.modalities.volumes import joint_volume_transform
from glovita.runtime.batch import Batch, collate_samples
from glovita.runtime.loaders import EpochPlan, SeededSampler, TransformedDataset, make_loader

PARAMS = Preprocessing(224, 256, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), "bilinear")


def _make_images(root: Path, per_class: int) -> None:
    rng = np.random.default_rng(0)
    for label, photo in zip(("china", "flower"), load_sample_images().images, strict=True):
        folder = root / "images" / "train" / label
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            y, x = rng.integers(0, photo.shape[0] - 256), rng.integers(0, photo.shape[1] - 256)
            Image.fromarray(photo[y : y + 256, x : x + 256]).save(folder / f"{i}.png")
        (root / "images" / "val" / label).mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo[:256, :256]).save(root / "images" / "val" / label / "0.png")


def _epoch(loader) -> float:
    began, seen = time.perf_counter(), 0
    for batch in loader:
        seen += len(batch) if isinstance(batch, Batch) else batch[0].shape[0]
    return seen / (time.perf_counter() - began)


def _alternate(glovita, direct, rounds: int) -> dict:
    """Epoch rates of both loaders, alternating which goes first, after one warm-up epoch each."""
    _epoch(glovita), _epoch(direct)  # start persistent workers, warm the page cache
    results: dict[str, list[float]] = {"glovita": [], "direct": []}
    for index in range(rounds):
        pair = [("glovita", glovita), ("direct", direct)]
        for name, loader in pair if index % 2 == 0 else pair[::-1]:
            results[name].append(_epoch(loader))
    return {"median_samples_per_second": {k: statistics.median(v) for k, v in results.items()}, "rounds": results}


def pipeline(rounds: int, per_class: int, workers: int) -> dict:
    root = Path(tempfile.mkdtemp()) / "photos"
    _make_images(root, per_class)
    splits = build_datasets(
        GenericImageDatasetConfig(data_root_dir=root, num_classes=2, split_source="subdirs"), input_channels=3
    )
    policy = build_transform("default_2d_3", PARAMS, "train_policy")
    sampler = SeededSampler(EpochPlan(len(splits.train), 0, True))
    augmented = TransformedDataset(splits.train, JointImageTransform(policy, "default_2d_3"))
    glovita = make_loader(augmented, 64, sampler, workers, False, True, 2, False, collate_samples)
    direct_set = datasets.ImageFolder(
        str(root / "images" / "train"), transform=build_transform("default_2d_3", PARAMS, "p")
    )
    direct = torch.utils.data.DataLoader(direct_set, batch_size=64, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0)  # fmt: skip
    return _alternate(glovita, direct, rounds)


class _DirectVolumes(torch.utils.data.Dataset):
    """np.load + the policy, nothing else."""

    def __init__(self, paths: list[Path], policy) -> None:
        self.paths, self.policy = paths, policy

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        return self.policy(torch.from_numpy(np.load(self.paths[index])[None])), 0


def volume_pipeline(rounds: int, count: int, workers: int) -> dict:
    from glovita.augmentation.policies.shared_3d import build_3d_policy
    from glovita.datasets.volumes import VolumeDataset

    root = Path(tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        paths.append(root / f"v{i}.npy")
        np.save(paths[-1], rng.normal(0, 1, (128, 128, 128)).astype(np.float32))
    policy = build_3d_policy("default_nnunet", (128, 128, 128))
    dataset = VolumeDataset([(p, 0) for p in paths], 1, (128, 128, 128), pad_crop=False)
    sampler = SeededSampler(EpochPlan(count, 0, True))
    glovita = make_loader(
        TransformedDataset(dataset, joint_volume_transform(policy), seed_numpy=True),
        2,
        sampler,
        workers,
        False,
        True,
        2,
        False,
        collate_samples,
    )
    direct = torch.utils.data.DataLoader(_DirectVolumes(paths, policy), batch_size=2, shuffle=True,
                                         num_workers=workers, persistent_workers=workers > 0)  # fmt: skip
    return _alternate(glovita, direct, rounds)


def demo_data_wait() -> dict:
    work = Path(tempfile.mkdtemp())
    train_main(["--data.data_root_dir", str(work / "digits"), "--experiments_dir", str(work / "exp"), "--group", "g",
                "--model.encoder.type", "resnet18", "--model.encoder.no_pretrained", "--training.epochs", "3",
                "--training.checkpoint_every_n_epochs", "0"])  # fmt: skip
    lines = [
        json.loads(line) for line in (work / "exp" / "digits" / "g" / "0" / "metrics.jsonl").read_text().splitlines()
    ]
    return {
        "epoch_seconds": [r["epoch_seconds"] for r in lines],
        "data_seconds": [r["train_data_seconds"] for r in lines],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per_class", type=int, default=160)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--volumes", type=int, default=12, help="128^3 volumes in the 3D pipeline; 0 skips it")
    args = parser.parse_args()
    report = {"default_2d_3_224": pipeline(args.rounds, args.per_class, args.workers), "digits_demo": demo_data_wait()}
    if args.volumes:
        report["default_nnunet_128"] = volume_pipeline(args.rounds, args.volumes, args.workers)
    print(json.dumps(report, indent=1))
    if args.volumes:
        speeds = report["default_nnunet_128"]["median_samples_per_second"]
        print(f"default_nnunet @128^3: glovita {speeds['glovita']:.2f} / direct {speeds['direct']:.2f} volumes/s "
              f"= {speeds['glovita'] / speeds['direct']:.3f}x")  # fmt: skip
    speeds = report["default_2d_3_224"]["median_samples_per_second"]
    print(f"default_2d_3 @224: glovita {speeds['glovita']:.0f} / direct {speeds['direct']:.0f} samples/s "
          f"= {speeds['glovita'] / speeds['direct']:.3f}x")  # fmt: skip
    demo = report["digits_demo"]
    for epoch, (total, data) in enumerate(zip(demo["epoch_seconds"], demo["data_seconds"], strict=True)):
        print(f"digits demo epoch {epoch}: {total:.2f} s, of which waiting for data {data:.3f} s ({data / total:.1%})")


if __name__ == "__main__":
    main()
