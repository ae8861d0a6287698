"""3D volumes: every file format, shape handling, every 3D policy, 2D/3D mismatches refused, and 3D encoders
(residual encoder, Primus) trained end to end on generated volumes."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from glovita.augmentation.policies.shared_3d import build_3d_policy
from glovita.cli.train import main, parse_root_config
from glovita.configs.augmentation import POLICIES_3D
from glovita.datasets.volumes import VolumeDataset, fit_shape, read_volume
from tests.datasets.volume_data import class_volume, make_volume_dataset, write_volume

RESIDUAL_3D = [
    "--model.encoder.encoder_type", "residual_encoder", "--model.encoder.spatial_dims", "3",
    "--model.encoder.input_channels", "1", "--model.encoder.features_per_stage", "8", "16",
    "--model.encoder.blocks_per_stage", "1", "1", "--model.encoder.strides", "1", "2",
]  # fmt: skip
PRIMUS = [
    "--model.encoder.encoder_type", "primus", "--model.encoder.input_shape", "16", "16", "16",
    "--model.encoder.embed_dim", "48", "--model.encoder.num_heads", "2", "--model.encoder.depth", "2",
]  # fmt: skip


@pytest.fixture(scope="module")
def volumes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_volume_dataset(tmp_path_factory.mktemp("volumes") / "ds")


def _args(root: Path, experiments: Path, encoder: list[str], *extra: str) -> list[str]:
    return [
        "--data.dataset", "generic_volume_dataset", "--data.data_root_dir", str(root), "--data.num_classes", "2",
        "--data.volume_size", "16", "16", "16", *encoder, "--training.epochs", "5", "--dataloading.batch_size", "4",
        "--dataloading.num_workers", "0", "--optimizer.lr", "3e-3", "--experiments_dir", str(experiments),
        "--group", "g", *extra,
    ]  # fmt: skip


@pytest.mark.parametrize("suffix", ["npy", "npz", "nii.gz", "tif"])
def test_every_volume_format_reads_back(tmp_path: Path, suffix: str) -> None:
    volume = class_volume(1, 0, (6, 7, 8))
    path = tmp_path / f"v.{suffix}"
    write_volume(path, volume)
    np.testing.assert_array_equal(read_volume(path), volume)


def test_numpy_volumes_read_in_threads_never_parse_two_headers_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file check reads volumes in a thread pool; NumPy parses .npy headers with ast.literal_eval, which CPython
    3.11 cannot run in two threads at once (a flaky SystemError). Every header parse is held to one at a time."""
    import ast
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from glovita.runtime.volume_files import check_volume_header

    paths = []
    for i in range(8):
        for suffix in ("npy", "npz"):
            paths.append(tmp_path / f"v{i}.{suffix}")
            write_volume(paths[-1], class_volume(i % 2, i, (4, 5, 6)))
    literal_eval, inside, overlaps = ast.literal_eval, [0], []
    guard = threading.Lock()

    def watched(text: str) -> object:
        with guard:
            inside[0] += 1
            overlaps.append(inside[0] > 1)
        time.sleep(0.002)  # a thread switch in the middle of a parse, as a garbage collection can cause
        try:
            return literal_eval(text)
        finally:
            with guard:
                inside[0] -= 1

    monkeypatch.setattr(ast, "literal_eval", watched)
    with ThreadPoolExecutor(max_workers=8) as pool:
        arrays = list(pool.map(read_volume, paths))
        shapes = list(pool.map(check_volume_header, paths))
    assert len(overlaps) >= 2 * len(paths) and not any(overlaps)
    assert [a.shape for a in arrays] == [(4, 5, 6)] * len(paths) and shapes == [(4, 5, 6)] * len(paths)


def test_shapes_are_padded_cropped_or_refused(tmp_path: Path) -> None:
    volume = np.arange(2 * 4 * 6 * 8, dtype=np.float32).reshape(2, 4, 6, 8)
    fitted = fit_shape(volume, (6, 6, 4))
    assert fitted.shape == (2, 6, 6, 4)
    np.testing.assert_array_equal(fitted[:, 1:5, :, :], volume[:, :, :, 2:6])  # depth padded, width cropped
    assert fitted[:, 0].sum() == 0 and fitted[:, 5].sum() == 0
    path = tmp_path / "odd.npy"
    np.save(path, np.zeros((5, 5, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"Volume file '.*odd.npy' has shape \(5, 5, 5\) but data.volume_size"):
        VolumeDataset([(path, 0)], 1, (4, 4, 4), pad_crop=False)[0]
    assert VolumeDataset([(path, 0)], 1, (4, 4, 4), pad_crop=True)[0][0].shape == (1, 4, 4, 4)


@pytest.mark.parametrize("policy", POLICIES_3D)
def test_every_3d_policy(policy: str) -> None:
    volume = torch.from_numpy(class_volume(1, 3))[None]
    transform = build_3d_policy(policy, (16, 16, 16))
    torch.manual_seed(0)
    first = transform(volume.clone())
    assert first.shape == (1, 16, 16, 16) and torch.isfinite(first).all()
    if policy == "default_3d":
        torch.testing.assert_close(first.mean(), torch.tensor(0.0), atol=1e-5, rtol=0)  # z-scored
        torch.testing.assert_close(transform(volume.clone()), first)
    else:
        outputs = []
        for seed in range(6):
            torch.manual_seed(seed)
            np.random.seed(seed)
            outputs.append(transform(volume.clone()))
        assert any(not torch.equal(outputs[0], other) for other in outputs[1:])


@pytest.mark.parametrize("encoder", [RESIDUAL_3D, PRIMUS], ids=["residual_encoder_3d", "primus"])
def test_3d_encoders_train_end_to_end(volumes: Path, tmp_path: Path, encoder: list[str]) -> None:
    main(_args(volumes, tmp_path / "exp", encoder, "--data.augmentation.train_policy", "default_nnunet"))
    run_dir = tmp_path / "exp" / "generic_volume_dataset" / "g" / "0"
    assert json.loads((run_dir / "test_metrics.json").read_text())["test_auroc"] >= 0.9
    resolved = json.loads((run_dir / "resolved_config.json").read_text())
    assert resolved["augmentation"]["train_policy"] == "default_nnunet"
    assert resolved["augmentation"]["volume_size"] == [16, 16, 16]
    assert resolved["class_names"] == ["class0", "class1"]


@pytest.mark.parametrize(
    ("encoder", "extra", "message"),
    [
        (RESIDUAL_3D, ["--data.augmentation.train_policy", "default_2d_3"], "'default_2d_3' is a 2D policy"),
        (["--model.encoder.encoder_type", "timm"], [], "yields 3D volumes (B, C, D, H, W) but model.encoder"),
        ([*PRIMUS, "--model.encoder.input_shape", "32", "32", "32"], [], "must equal data.volume_size=(16, 16, 16)"),
    ],
    ids=["2d-policy", "2d-encoder", "primus-shape"],
)
def test_dimension_mismatches_are_refused(volumes: Path, tmp_path: Path, capsys, encoder, extra, message) -> None:
    with pytest.raises(SystemExit):
        parse_root_config(_args(volumes, tmp_path, encoder, *extra))
    assert message in " ".join(capsys.readouterr().err.split())


def test_3d_policy_on_images_is_refused(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_root_config(["--data.augmentation.train_policy", "default_nnunet"])
    err = " ".join(capsys.readouterr().err.split())
    assert "'default_nnunet' is a 3D policy and data.dataset='digits' yields images" in err


def test_volume_run_is_predicted_by_glovita_infer(volumes: Path, tmp_path: Path) -> None:
    from glovita.cli.infer import main as infer

    main(_args(volumes, tmp_path / "exp", RESIDUAL_3D, "--training.epochs", "2"))
    run_dir = tmp_path / "exp" / "generic_volume_dataset" / "g" / "0"
    infer(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path / "out"),
           "--dataloading.num_workers", "0"])  # fmt: skip
    predicted = json.loads((tmp_path / "out" / "metrics.json").read_text())
    tested = json.loads((run_dir / "test_metrics.json").read_text())
    assert predicted["auroc"] == pytest.approx(tested["test_auroc"]) and predicted["num_samples"] == 6


def test_show_augmentations_draws_mid_slices(volumes: Path, tmp_path: Path) -> None:
    from PIL import Image

    from glovita.cli.show_augmentations import main as show

    out = tmp_path / "grid.png"
    show(["--data.dataset", "generic_volume_dataset", "--data.data_root_dir", str(volumes), "--data.num_classes",
          "2", "--data.volume_size", "16", "16", "16", "--data.augmentation.train_policy", "default_nnunet",
          "--num_samples", "2", "--repeats", "2", "--output_file", str(out)])  # fmt: skip
    with Image.open(out) as image:
        width, height = image.size
    assert width > 2 * height  # three slices side by side per view


def test_volumes_are_resampled_to_the_target_spacing(tmp_path: Path) -> None:
    import nibabel

    from glovita.configs.data import GenericVolumeDatasetConfig
    from glovita.datasets.factory import build_datasets

    root = tmp_path / "ds"
    (root / "volumes").mkdir(parents=True)
    coarse = np.zeros((8, 8, 8), dtype=np.float32)
    coarse[2:6, 2:6, 2:6] = 1.0
    nibabel.save(nibabel.Nifti1Image(coarse, np.diag([2.0, 2.0, 2.0, 1.0])), str(root / "volumes" / "a.nii.gz"))
    np.save(root / "volumes" / "b.npy", coarse)
    (root / "splits.json").write_text(json.dumps({"train": ["a.nii.gz", "b.npy"], "val": ["a.nii.gz"]}))
    (root / "labels.json").write_text(json.dumps({"a.nii.gz": 0, "b.npy": 1}))
    (root / "spacing.json").write_text(json.dumps({"b.npy": [4.0, 4.0, 4.0]}))
    cfg = GenericVolumeDatasetConfig(
        data_root_dir=root, num_classes=2, volume_size=(16, 16, 16), target_spacing=(1.0, 1.0, 1.0),
        allow_overlapping_splits=True,  # two files are enough here: one validates too
    )  # fmt: skip
    train = build_datasets(cfg, 1).train
    header, _ = train[0]  # 8 voxels of 2 mm -> 16 of 1 mm: the cube fills the middle half
    assert header.shape == (1, 16, 16, 16) and header[0, 8, 8, 8] > 0.9 and header[0, 1, 1, 1] == 0
    from_json, _ = train[1]  # 8 voxels of 4 mm -> 32 of 1 mm, centre-cropped to 16: all inside the cube
    assert from_json[0, 8, 8, 8] > 0.9 and from_json[0, 3, 3, 3] > 0.9  # away from the interpolated edge
    (root / "spacing.json").unlink()
    with pytest.raises(ValueError, match="has no spacing: add it to data.spacing_file"):
        build_datasets(cfg, 1).train[1]
