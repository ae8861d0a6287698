"""Fixtures that make small data in tmp_path; no test touches the network."""

import contextlib
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from glovita.runtime.batch import Batch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
if "GLOVITA_CACHE_DIR" not in os.environ:  # the suite never writes into the user's ~/.cache
    import tempfile

    os.environ["GLOVITA_CACHE_DIR"] = tempfile.mkdtemp(prefix="glovita-test-cache-")

FAST = [
    "--model.encoder.type",
    "test_resnet",
    "--model.encoder.no_pretrained",
    "--dataloading.num_workers",
    "0",
    "--dataloading.batch_size",
    "8",
    "--training.checkpoint_every_n_epochs",
    "1",
]
"""Flags that keep a CLI run small: a 0.4M-parameter timm test model, no workers, batch 8."""


def generic_args(root: Path, experiments: Path, num_classes: int = 3, *extra: str) -> list[str]:
    """CLI flags for a small run on a generic subdirs/folder-label dataset, plus FAST and `extra`."""
    return [
        "--data.dataset", "generic_image_dataset", "--data.data_root_dir", str(root),
        "--data.num_classes", str(num_classes), "--data.split_source", "subdirs", "--data.label_source", "folder",
        "--experiments_dir", str(experiments), *FAST, *extra,
    ]  # fmt: skip


def class_image(label: int, index: int, size: int = 32, mode: str = "RGB") -> Image.Image:
    """A separable synthetic image: class k is a bright horizontal band at row block k, plus noise."""
    rng = np.random.default_rng(label * 1000 + index)
    pixels = rng.integers(0, 40, (size, size), dtype=np.uint8)
    band = size // 4
    pixels[label * band % size : label * band % size + band, :] = 220
    gray = Image.fromarray(pixels, mode="L")
    return gray.convert(mode)


def write_images(folder: Path, label: int, count: int, mode: str = "RGB", prefix: str = "") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"{prefix}{label}_{i:03d}.png"
        class_image(label, i + hash(prefix) % 97, mode=mode).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def subdirs_dataset(tmp_path: Path) -> Path:
    """images/{train,val,test}/<class>/*.png with classes a, b, c."""
    root = tmp_path / "subdirs_ds"
    for split, count in (("train", 12), ("val", 4), ("test", 4)):
        for label, name in enumerate("abc"):
            write_images(root / "images" / split / name, label, count, prefix=split)
    return root


@pytest.fixture
def splits_json_dataset(tmp_path: Path) -> Path:
    """images/<class>/*.png, splits.json with train/val/test, labels.json and labels.csv (class names)."""
    root = tmp_path / "json_ds"
    ids: list[str] = []
    for label, name in enumerate(("cat", "dog")):
        for path in write_images(root / "images" / name, label, 15):
            ids.append(path.relative_to(root / "images").as_posix())
    splits = {"train": ids[0:9] + ids[15:24], "val": ids[9:12] + ids[24:27], "test": ids[12:15] + ids[27:30]}
    (root / "splits.json").write_text(json.dumps(splits))
    labels = {i: i.split("/")[0] for i in ids}
    (root / "labels.json").write_text(json.dumps(labels))
    rows = "\n".join(f"{i},{label}" for i, label in labels.items())
    (root / "labels.csv").write_text(f"image,label\n{rows}\n")
    return root


@pytest.fixture
def regression_dataset(tmp_path: Path) -> Path:
    """Flat images/ folder, splits.json, labels.csv with a float target = brightness band position."""
    root = tmp_path / "reg_ds"
    ids: list[str] = []
    values = {}
    for label in range(4):
        for path in write_images(root / "images", label, 8):
            sample_id = path.name
            ids.append(sample_id)
            values[sample_id] = label * 0.5
    splits = {"train": ids[::2], "val": ids[1::4], "test": ids[3::4]}
    (root / "splits.json").write_text(json.dumps(splits))
    (root / "labels.csv").write_text("image,label\n" + "\n".join(f"{k},{v}" for k, v in values.items()) + "\n")
    return root


def write_feature_file(path: Path, layout: str, count: int, dim: int = 8, seed: int = 0, **extra) -> Path:
    """A separable feature file: class-1 samples (or bags holding one 'positive' instance) are shifted.

    layout: 'instances' (N, D), 'fixed' (B, 6, D), 'ptr' or 'lengths' (variable bags of 2..9 instances).
    """
    import h5py

    rng = np.random.default_rng(seed)
    labels = np.arange(count) % 2
    with h5py.File(path, "w") as handle:
        if layout == "instances":
            features = rng.normal(0, 1, (count, dim)).astype(np.float32)
            features[labels == 1, :2] += 3.0
        else:
            lengths = np.full(count, 6) if layout == "fixed" else rng.integers(2, 10, count)
            bags = []
            for length, label in zip(lengths, labels, strict=True):
                bag = rng.normal(0, 1, (length, dim)).astype(np.float32)
                if label:
                    bag[rng.integers(0, length), :2] += 4.0
                bags.append(bag)
            features = np.stack(bags) if layout == "fixed" else np.concatenate(bags)
            if layout == "ptr":
                handle["bag_ptr"] = np.concatenate([[0], np.cumsum(lengths)])
            elif layout == "lengths":
                handle["bag_lengths"] = lengths
        handle["features"] = features
        handle["labels"] = labels
        handle["ids"] = np.array([f"s{i}" for i in range(count)], dtype="S")
        for key, value in extra.items():
            if key in handle:
                del handle[key]
            handle[key] = value
    return path


def feature_args(tmp_path: Path, layout: str, head: list[str], dim: int = 8, group: str = "g") -> list[str]:
    """CLI flags for a run on small separable feature files (64 train / 20 val / 20 test) under tmp_path/exp."""
    train = tmp_path / "train.h5"
    if not train.exists():
        write_feature_file(train, layout, 64)
        write_feature_file(tmp_path / "val.h5", layout, 20, seed=1)
        write_feature_file(tmp_path / "test.h5", layout, 20, seed=2)
    return [
        "--data.dataset", "precomputed_features", "--data.data_root_dir", ".", "--data.num_classes", "2",
        "--data.train_features_file", str(train), "--data.val_features_file", str(tmp_path / "val.h5"),
        "--data.test_features_file", str(tmp_path / "test.h5"), "--model.encoder.encoder_type", "precomputed",
        "--model.encoder.feature_dim", str(dim), "--optimizer.lr", "3e-3", *head, "--dataloading.batch_size", "8",
        "--dataloading.num_workers", "0", "--training.epochs", "8",
        "--experiments_dir", str(tmp_path / "exp"), "--group", group,
    ]  # fmt: skip


def labels_batch(targets: torch.Tensor) -> Batch:
    """A Batch holding only targets, for head-loss tests that call a head directly."""
    return Batch(inputs=torch.empty(len(targets), 0), targets=targets)


def train_cli_without_torch(args: list[str]) -> subprocess.CompletedProcess[str]:
    """Run glovita_train's main(args) in a fresh interpreter and assert it imported neither torch nor timm
    (parsing, --help and --print_config must stay fast); returns the finished process (stdout holds the output)."""
    code = (
        f"import sys\nfrom glovita.cli.train import main\ntry:\n    main({args!r})\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules and 'timm' not in sys.modules, 'torch was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result


def write_ts_file(path: Path, cases: list[np.ndarray], labels: list[str], classes: list[str]) -> Path:
    """A UCR/UEA .ts file of `cases` (C, T_i) with class labels; the first case is on line 6."""
    lines = ["@problemName test", f"@dimensions {cases[0].shape[0]}", f"@classLabel true {' '.join(classes)}",
             "# a comment", "@data"]  # fmt: skip
    for values, label in zip(cases, labels, strict=True):
        lines.append(":".join(",".join(f"{v:g}" for v in channel) for channel in values) + f":{label}")
    path.write_text("\n".join(lines) + "\n")
    return path


def series_args(root: Path, encoder: str = "fcn") -> list[str]:
    """CLI flags for a run on small separable 2-channel series of 16..24 steps (train .ts with a held-out
    validation fold, test .ts) under root/exp, group g."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 30), ("test", 12)):
        cases, labels = [], []
        for i in range(count):
            steps = int(rng.integers(16, 25)) if i else 24  # the first training case is the longest
            time = np.linspace(0, 2 * np.pi, steps)
            wave = np.sin(time) if i % 2 else np.sign(np.sin(time))
            cases.append(np.stack([wave, wave[::-1]]) + rng.normal(0, 0.1, (2, steps)))
            labels.append("square" if i % 2 == 0 else "sine")
        write_ts_file(root / f"{split}.ts", cases, labels, classes=["sine", "square"])
    return [
        "--data.dataset", "generic_timeseries_dataset", "--data.data_root_dir", str(root),
        "--data.train_file", "train.ts", "--data.test_file", "test.ts", "--data.num_classes", "2",
        "--data.normalization", "per_series",
        "--model.encoder.encoder_type", "series_cnn", "--model.encoder.type", encoder,
        "--model.encoder.input_channels", "2", "--dataloading.batch_size", "8", "--dataloading.num_workers", "0",
        "--experiments_dir", str(root / "exp"), "--group", "g",
    ]  # fmt: skip


@dataclass(frozen=True)
class ObservedRun:
    """A small feature run with the TensorBoard backend, watched while it ran (2 epochs), then resumed to 3."""

    run_dir: Path
    console: str
    """What the first attempt printed on stderr."""
    first_log: list[str]
    """train.log after the first attempt."""
    report_writes: list[tuple[str, int]]
    """Each report.html write of the first attempt: ('running' while it reloads itself, else 'final'), epochs done."""


@pytest.fixture(scope="session")
def observed_run(tmp_path_factory: pytest.TempPathFactory) -> ObservedRun:
    from glovita.cli.train import main as train
    from glovita.reports import html as html_module

    root = tmp_path_factory.mktemp("observed")
    args = feature_args(root, "instances", ["--model.head.head_type", "classification"])
    args += ["--logger.backend", "tensorboard"]
    writes: list[tuple[str, int]] = []
    original = html_module.write_run_report

    def recording(folder: Path) -> Path:
        path = original(folder)
        epochs = len((folder / "metrics.jsonl").read_text().splitlines())
        writes.append(("running" if 'http-equiv="refresh"' in path.read_text() else "final", epochs))
        return path

    console = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(console):
        patch.setattr(html_module, "write_run_report", recording)
        train([*args, "--training.epochs", "2"])
    run_dir = root / "exp" / "precomputed_features" / "g" / "0"
    first_log = (run_dir / "train.log").read_text().splitlines()
    train([*args, "--training.epochs", "3", "--training.resume"])
    return ObservedRun(run_dir, console.getvalue(), first_log, writes)
