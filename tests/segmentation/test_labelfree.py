"""Label-free (image-to-image) runs: a dense head learns to predict a target image from a source image; the target
moves with the image through geometric transforms and keeps its values through colour ones; glovita_infer writes the
predicted images, listed in predictions.csv, and reproduces the run's test metrics."""

import csv
import json
import math
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import v2

from glovita.augmentation.target_image import TargetImage
from glovita.cli.infer import main as infer
from glovita.cli.train import main as train
from tests.segmentation.data import labelfree_pairs, labelfree_volume_pairs

ARGS = [
    "--data.dataset", "generic_image_dataset", "--data.split_source", "subdirs", "--data.task", "LabelFree",
    "--data.targets_dir", "targets", "--data.num_classes", "1", "--data.augmentation.image_size", "32",
    "--data.augmentation.resize_size", "32", "--model.encoder.type", "test_resnet", "--model.encoder.no_pretrained",
    "--model.head.head_type", "unet", "--model.head.decoder_channels", "8", "8", "8", "8", "8",
    "--optimizer.lr", "3e-3", "--dataloading.batch_size", "8", "--dataloading.num_workers", "0",
]  # fmt: skip


@pytest.fixture(scope="module")
def labelfree_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(data root, run directory) of a 6-epoch U-Net run on 48 microscopy-like pairs."""
    root = labelfree_pairs(tmp_path_factory.mktemp("labelfree") / "pairs")
    train([*ARGS, "--data.data_root_dir", str(root), "--training.epochs", "6", "--experiments_dir",
           str(root.parent / "exp"), "--group", "lf"])  # fmt: skip
    return root, root.parent / "exp" / "generic_image_dataset" / "lf" / "0"


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(1.0 / float(np.mean((a - b) ** 2)))


def test_a_labelfree_model_beats_its_input_and_infer_writes_its_images(
    labelfree_run: tuple[Path, Path], tmp_path: Path
) -> None:
    root, run_dir = labelfree_run
    tested = json.loads((run_dir / "test_metrics.json").read_text())
    assert set(tested) == {"test_loss", "test_psnr", "test_ssim", "test_mae", "test_mse"}
    targets = sorted((root / "targets" / "test" / "x").glob("*.png"))
    truth = [np.asarray(Image.open(p), np.float32) / 255 for p in targets]
    sources = [np.asarray(Image.open(root / "images" / "test" / "x" / p.name).convert("L"), np.float32) / 255
               for p in targets]  # fmt: skip
    as_is = np.mean([_psnr(s, t) for s, t in zip(sources, truth, strict=True)])  # the trivial baseline: the input
    mean_image = np.mean([_psnr(np.full_like(t, np.mean(truth)), t) for t in truth])  # the mean brightness
    assert tested["test_psnr"] > max(as_is, mean_image) + 2, (tested, as_is, mean_image)
    resolved = json.loads((run_dir / "resolved_config.json").read_text())
    assert resolved["best_metric"] == "val_psnr" and resolved["best_metric_mode"] == "max"
    assert (run_dir / "test_predictions.png").is_file() and "test images, targets and predicted images" in (
        run_dir / "report.html"
    ).read_text()

    infer(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path),
           "--dataloading.num_workers", "0"])  # fmt: skip
    predicted = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("psnr", "ssim", "mae", "mse"):
        assert predicted[key] == pytest.approx(tested[f"test_{key}"], abs=1e-6), key
    rows = list(csv.DictReader((tmp_path / "predictions.csv").open()))
    assert len(rows) == len(targets) and list(rows[0]) == ["id", "image_file", "psnr", "ssim", "mae"]
    assert np.mean([float(r["psnr"]) for r in rows]) == pytest.approx(tested["test_psnr"], abs=1e-3)
    for row in rows:  # 8-bit PNGs at the model's size, whose PSNR against the target is the row's
        image = Image.open(tmp_path / row["image_file"])
        assert image.mode == "L" and image.size == (32, 32)
        target = np.asarray(Image.open(root / "targets" / "test" / "x" / Path(row["id"]).name), np.float32) / 255
        assert _psnr(np.asarray(image, np.float32) / 255, target) == pytest.approx(float(row["psnr"]), abs=0.05)


def test_a_target_image_moves_with_its_image_and_keeps_its_values() -> None:
    values = torch.rand(1, 40, 50)
    image = tv_tensors.Image(values.repeat(3, 1, 1))
    geometric = v2.Compose([v2.RandomResizedCrop(24), v2.RandomHorizontalFlip(), v2.RandomAffine(20)])
    for seed in range(3):
        torch.manual_seed(seed)
        moved_image, moved_target = geometric(image, TargetImage(values))
        assert isinstance(moved_target, TargetImage) and torch.allclose(moved_image[0], moved_target[0], atol=1e-6)
    colour = v2.Compose([v2.ColorJitter(0.8, 0.8), v2.GaussianBlur(3), v2.Normalize([0.5] * 3, [0.2] * 3)])
    changed, kept = colour(image, TargetImage(values))
    assert not torch.allclose(changed[0], values[0]) and torch.equal(kept.as_subclass(torch.Tensor), values)


def test_labelfree_settings_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = labelfree_pairs(tmp_path / "pairs", counts=(("train", 4), ("val", 2)))
    (root / "targets" / "val" / "x" / "001.png").unlink()
    Image.new("L", (16, 16)).save(root / "targets" / "val" / "x" / "001.png")  # a target of another size
    cases = [
        (
            ["--data.task", "Classification", "--data.num_classes", "3"],
            "data.task LabelFree reads its targets from --data.targets_dir",
        ),
        (["--data.num_classes", "2"], "a LabelFree target image has 1 (grayscale) or 3 (RGB) channels"),
        (["--model.head.head_type", "classification"], "target images (--data.task LabelFree) go with a dense head"),
        (["--data.targets_dir", "nothing"], "data.targets_dir: '"),
        (["--data.csv_target_column", "target"], "data.csv_target_column names a column of the manifest"),
        ([], "is 16x16 but its image"),
    ]
    head = ARGS.index("--model.head.head_type")
    plain = ARGS[:head] + ARGS[head + 8 :]  # without the U-Net head and its decoder channels
    for extra, message in cases:
        base = plain if "--model.head.head_type" in extra else ARGS
        with pytest.raises(SystemExit):
            train([*base, "--data.data_root_dir", str(root), "--experiments_dir", str(tmp_path / "exp"), *extra])
        error = capsys.readouterr().err
        assert message in error and "Traceback" not in error, (extra, error)


def test_the_image_loss_is_the_chosen_error() -> None:
    from glovita.cli.train import parse_root_config
    from glovita.models.factory import build_model
    from glovita.models.heads.dense import ImageLoss
    from glovita.runtime.batch import TARGET_IMAGE, Batch

    predicted, target = torch.tensor([[[[0.0, 1.0]]]]), torch.tensor([[[[0.5, 0.0]]]])
    batch = Batch(inputs=torch.empty(1, 0), targets=torch.zeros(1), fields={TARGET_IMAGE: target})
    assert float(ImageLoss("mse")(predicted, batch)) == pytest.approx((0.25 + 1.0) / 2)
    assert float(ImageLoss("l1")(predicted, batch)) == pytest.approx((0.5 + 1.0) / 2)
    cfg = parse_root_config([*ARGS, "--data.data_root_dir", ".", "--model.head.image_loss", "l1"])
    model = build_model(cfg.model, cfg.peft, 1, 0.0, image_targets=True)
    assert model.head.dense_loss.kind == "l1"  # type: ignore[union-attr]
    assert float(model.head.predict(torch.tensor([[[[-0.5, 1.5]]]])).max()) == 1.0  # type: ignore[operator]


VOLUME_ARGS = [
    "--data.dataset", "generic_volume_dataset", "--data.task", "LabelFree", "--data.targets_dir", "targets",
    "--data.num_classes", "1", "--data.target_range", "0", "1000", "--data.volume_size", "16", "16", "16",
    "--model.encoder.encoder_type", "residual_encoder", "--model.encoder.spatial_dims", "3",
    "--model.encoder.input_channels", "1", "--model.encoder.features_per_stage", "8", "16",
    "--model.encoder.blocks_per_stage", "1", "1", "--model.encoder.strides", "1", "2", "--model.head.head_type", "unet",
    "--optimizer.lr", "3e-3", "--dataloading.batch_size", "2", "--dataloading.num_workers", "0",
]  # fmt: skip


def _read_volume(path: Path) -> np.ndarray:
    from glovita.runtime.volume_files import read_volume

    return np.asarray(read_volume(path), np.float32)


def test_a_3d_labelfree_model_with_a_cache_beats_its_input_and_infer_writes_volumes(tmp_path: Path) -> None:
    """Target volumes in their own units (0..1000, data.target_range) are prepared with their volumes (20^3 cropped
    to 16^3) and cached with them; the U-Net beats the input and the mean volume; glovita_infer writes each
    prediction back in those units on its source's grid (NIfTI with the source's affine, or .npy), scored as the run
    scored it."""
    from glovita.datasets.volumes import fit_shape

    root = labelfree_volume_pairs(tmp_path / "pairs", size=20)
    train([*VOLUME_ARGS, "--data.data_root_dir", str(root), "--data.cache_dir", str(tmp_path / "cache"),
           "--training.epochs", "6", "--experiments_dir", str(tmp_path / "exp"), "--group", "lf3d"])  # fmt: skip
    run_dir = tmp_path / "exp" / "generic_volume_dataset" / "lf3d" / "0"
    tested = json.loads((run_dir / "test_metrics.json").read_text())
    splits = json.loads((root / "splits.json").read_text())
    assert len(list((tmp_path / "cache").rglob("*.npz"))) == sum(len(ids) for ids in splits.values())

    def seen(array: np.ndarray) -> np.ndarray:  # what the model sees of a 20^3 array: its centre 16^3
        return fit_shape(array[None], (16, 16, 16))[0]

    mean = np.mean([seen(_read_volume(root / "targets" / i)).mean() / 1000 for i in splits["train"]])
    as_is, mean_volume = [], []
    for sample_id in splits["test"]:
        target = seen(_read_volume(root / "targets" / sample_id)) / 1000
        as_is.append(_psnr(np.clip(seen(_read_volume(root / "volumes" / sample_id)), 0, 1), target))
        mean_volume.append(_psnr(np.full_like(target, mean), target))
    assert tested["test_psnr"] > max(np.mean(as_is), np.mean(mean_volume)) + 1.5, (tested, as_is, mean_volume)
    assert (run_dir / "test_predictions.png").is_file()

    infer(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path / "pred"),
           "--dataloading.num_workers", "0"])  # fmt: skip
    predicted = json.loads((tmp_path / "pred" / "metrics.json").read_text())
    for key in ("psnr", "ssim", "mae", "mse"):
        assert predicted[key] == pytest.approx(tested[f"test_{key}"], abs=1e-6), key
    rows = list(csv.DictReader((tmp_path / "pred" / "predictions.csv").open()))
    assert [Path(r["id"]).name for r in rows] == splits["test"]
    for row in rows:
        written = tmp_path / "pred" / row["image_file"]
        assert written.name == Path(row["id"]).name  # NIfTI stays NIfTI, .npy stays .npy
        values = _read_volume(written)
        assert values.shape == (20, 20, 20) and values.min() >= 0 and values.max() <= 1000  # the source's grid
        assert not values[:2].any() and not values[-2:].any()  # what the crop cut off: the range's low end
        target = seen(_read_volume(root / "targets" / written.name)) / 1000
        assert _psnr(seen(values) / 1000, target) == pytest.approx(float(row["psnr"]), abs=1e-3)
        if written.name.endswith(".nii.gz"):
            import nibabel

            source: Any = nibabel.load(str(root / "volumes" / written.name))
            assert np.array_equal(cast(Any, nibabel.load(str(written))).affine, source.affine)


def test_a_target_volume_moves_with_its_volume_and_keeps_its_values() -> None:
    """batchgeneratorsv2's spatial transforms move the target as the volume (linearly); intensity ones and the
    z-score leave it alone."""
    from batchgeneratorsv2.transforms.intensity.gaussian_noise import GaussianNoiseTransform
    from batchgeneratorsv2.transforms.spatial.mirroring import MirrorTransform

    from glovita.augmentation.policies.shared_3d import VolumePolicy, zscore

    volume = torch.rand(1, 8, 10, 12) * 50 + 7
    target = (volume - 7) / 50  # the same picture in [0, 1]
    flips = VolumePolicy([MirrorTransform(allowed_axes=(0, 1, 2))])
    for seed in range(3):
        torch.manual_seed(seed)
        moved_volume, moved_target = flips.joint_target(volume, target)
        expected = zscore(moved_target * 50 + 7)
        assert torch.allclose(moved_volume, expected, atol=1e-5)
    noisy = VolumePolicy([GaussianNoiseTransform(noise_variance=(0.5, 0.5), p_per_channel=1)])
    changed, kept = noisy.joint_target(volume, target)
    assert not torch.allclose(changed, zscore(volume), atol=1e-2) and torch.equal(kept, target)


def test_3d_labelfree_targets_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = labelfree_volume_pairs(tmp_path / "pairs", count=8)
    cases = [
        (["--data.target_range", "0", "1"], "outside data.target_range=(0.0, 1.0). Set --data.target_range 0 "),
        (["--data.target_range", "0", "1", "--data.no_check_files"], "outside data.target_range=(0.0, 1.0)."),
        (["--data.target_range", "5", "5"], "give (low, high) with low < high"),
        (["--data.num_classes", "2"], "has 1 channel(s) but data.num_classes=2. Set --data.num_classes 1."),
    ]
    for extra, message in cases:
        with pytest.raises(SystemExit):
            train([*VOLUME_ARGS, "--data.data_root_dir", str(root), "--experiments_dir", str(tmp_path / "exp"), *extra])
        error = capsys.readouterr().err
        assert message in error and "Traceback" not in error, (extra, error)


def test_a_manifest_names_each_images_target(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """--data.split_source csv with --data.csv_target_column: each row names its image and its target file (paths
    relative to the CSV); the run reads exactly those pairs; a target that does not exist is named with its line."""
    root = labelfree_pairs(tmp_path / "pairs", counts=(("train", 8), ("val", 2), ("test", 2)))
    rows = ["file,split,target"]
    for image in sorted((root / "images").rglob("*.png")):
        relative = image.relative_to(root / "images")
        target = Path("..") / "targets" / relative  # the CSV lives in lists/
        rows.append(f"../images/{relative.as_posix()},{relative.parts[0]},{target.as_posix()}")
    (root / "lists").mkdir()
    (root / "lists" / "pairs.csv").write_text("\n".join(rows) + "\n")
    args = [a for a in ARGS if a not in ("--data.targets_dir", "targets")]
    args[args.index("subdirs")] = "csv"
    args += ["--data.manifest_file", "lists/pairs.csv", "--data.csv_id_column", "file", "--data.csv_target_column",
             "target", "--data.data_root_dir", str(root), "--experiments_dir", str(tmp_path / "exp")]  # fmt: skip
    train([*args, "--training.epochs", "1", "--group", "csv"])
    run_dir = tmp_path / "exp" / "generic_image_dataset" / "csv" / "0"
    infer(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path / "pred"),
           "--dataloading.num_workers", "0"])  # fmt: skip
    predicted = json.loads((tmp_path / "pred" / "metrics.json").read_text())
    tested = json.loads((run_dir / "test_metrics.json").read_text())
    assert predicted["num_samples"] == 2 and predicted["psnr"] == pytest.approx(tested["test_psnr"], abs=1e-6)
    for row in csv.DictReader((tmp_path / "pred" / "predictions.csv").open()):  # scored against the row's target
        picture = np.asarray(Image.open(tmp_path / "pred" / row["image_file"]), np.float32) / 255
        target = np.asarray(Image.open(root / "targets" / "test" / "x" / Path(row["id"]).name), np.float32) / 255
        assert _psnr(picture, target) == pytest.approx(float(row["psnr"]), abs=0.05)

    (root / "lists" / "pairs.csv").write_text("\n".join([*rows, "../images/val/x/000.png,val,../targets/nope.png"]))
    with pytest.raises(SystemExit):
        train([*args, "--training.epochs", "1", "--group", "missing"])
    error = capsys.readouterr().err
    assert f"pairs.csv' line {len(rows) + 1}, column 'target'" in error and "nope.png' does not exist" in error
