"""The volume cache (--data.cache_dir): first- and second-epoch time of a 3D run on compressed NIfTI volumes that need
resampling, with and without the cache, alternated in one process.

The data: `--volumes` gzip-compressed .nii.gz volumes of 160 x 160 x 160 voxels at spacing (1.0, 0.8, 0.8), resampled
to (1.25, 1.0, 1.0) (128^3) and used at volume_size 128^3. The model is deliberately small (a 3-stage residual
encoder, 8-16-32 features) so the time is the data's, as on a GPU where the model is fast and the loader is the
bottleneck. Each "cached" run starts from an empty cache folder: its first epoch fills it, its second reads it.
`--labelfree` writes a target volume per volume (the bright cube, in 0..1000) and trains a label-free U-Net on it
(data.task LabelFree): the cache then holds each volume with its prepared target.

    .venv/bin/python bench/bench_volume_cache.py [--volumes 24] [--rounds 2] [--workers 0] [--labelfree]
"""

import argparse
import json
import os
import shutil
import statistics
import tempfile
from pathlib import Path

import numpy as np

from glovita.cli.train import main as train_main


def write_volumes(root: Path, count: int, targets: bool) -> None:
    import nibabel

    rng = np.random.default_rng(0)
    (root / "volumes").mkdir(parents=True)
    ids, labels = [], {}
    affine = np.diag([1.0, 0.8, 0.8, 1.0])  # the spacing nibabel reports (the zooms)
    for index in range(count):
        label = index % 2
        volume = rng.normal(0, 1, (160, 160, 160)).astype(np.float32)
        if label:
            volume[50:110, 50:110, 50:110] += 1.5
        name = f"case_{index:03d}.nii.gz"
        nibabel.save(nibabel.Nifti1Image(volume, affine), str(root / "volumes" / name))
        if targets:
            (root / "targets").mkdir(exist_ok=True)
            target = np.zeros((160, 160, 160), np.float32)
            target[50:110, 50:110, 50:110] = 1000.0 * label
            nibabel.save(nibabel.Nifti1Image(target, affine), str(root / "targets" / name))
        ids.append(name)
        labels[name] = label
    cut = count * 3 // 4
    (root / "splits.json").write_text(json.dumps({"train": ids[:cut], "val": ids[cut:]}))
    (root / "labels.json").write_text(json.dumps(labels))


def run(work: Path, name: str, workers: int, cache: Path | None, labelfree: bool) -> list[tuple[float, float]]:
    args = [
        "--data.dataset", "generic_volume_dataset", "--data.data_root_dir", str(work / "data"),
        "--data.num_classes", "2", "--data.volume_size", "128", "128", "128",
        "--data.target_spacing", "1.25", "1.0", "1.0", "--data.augmentation.train_policy", "default_3d",
        "--model.encoder.encoder_type", "residual_encoder", "--model.encoder.spatial_dims", "3",
        "--model.encoder.input_channels", "1", "--model.encoder.features_per_stage", "8", "16", "32",
        "--model.encoder.blocks_per_stage", "1", "1", "1", "--model.encoder.strides", "2", "2", "2",
        "--dataloading.batch_size", "2", "--dataloading.num_workers", str(workers), "--training.epochs", "2",
        "--training.checkpoint_every_n_epochs", "0", "--experiments_dir", str(work / "exp"), "--group", name,
    ]  # fmt: skip
    if cache is not None:
        args += ["--data.cache_dir", str(cache)]
    if labelfree:
        args += ["--data.task", "LabelFree", "--data.targets_dir", "targets", "--data.num_classes", "1",
                 "--data.target_range", "0", "1000", "--model.head.head_type", "unet"]  # fmt: skip
    train_main(args)
    records = (work / "exp" / "generic_volume_dataset" / name / "0" / "metrics.jsonl").read_text().splitlines()
    return [(json.loads(line)["epoch_seconds"], json.loads(line)["train_data_seconds"]) for line in records]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volumes", type=int, default=24)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--labelfree", action="store_true")
    options = parser.parse_args()
    times: dict[str, list[list[tuple[float, float]]]] = {"no cache": [], "cache": []}
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        os.chdir(work)
        write_volumes(work / "data", options.volumes, options.labelfree)
        size = sum(p.stat().st_size for p in (work / "data").rglob("*.nii.gz")) / 2**20
        for round_index in range(options.rounds):
            times["no cache"].append(run(work, f"plain_{round_index}", options.workers, None, options.labelfree))
            cache = work / f"cache_{round_index}"
            times["cache"].append(run(work, f"cached_{round_index}", options.workers, cache, options.labelfree))
            cached = sum(p.stat().st_size for p in cache.rglob("*.npz")) / 2**20
            shutil.rmtree(cache)
    kind = "label-free volume + target pairs" if options.labelfree else "volumes"
    print(f"{options.volumes} {kind}, {size:.0f} MiB compressed; cache {cached:.0f} MiB")
    print("| run | epoch 1 (s) | of it waiting for data | epoch 2 (s) | of it waiting for data |")
    print("|---|---|---|---|---|")
    for name, rounds in times.items():
        cells = []
        for epoch in (0, 1):
            for part in (0, 1):
                values = [r[epoch][part] for r in rounds]
                cells.append(f"{statistics.median(values):.1f} ({', '.join(f'{v:.1f}' for v in values)})")
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
