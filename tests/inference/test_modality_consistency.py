"""For every modality: glovita_infer reproduces the run's test metrics, and glovita_infer and
glovita_extract_features feed the model exactly the run's test-time transform output (checked against a
hand-computed transform, tight enough to see a missing normalisation)."""

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from glovita.cli.export import main as export
from glovita.cli.extract_features import main as extract
from glovita.cli.infer import main as infer
from glovita.cli.make_digit_masks import main as make_digit_masks
from glovita.cli.make_digit_slides import main as make_slides
from glovita.cli.make_moving_digits import main as make_moving_digits
from glovita.cli.train import main as train
from glovita.datasets.factory import build_datasets, sample_ids
from glovita.datasets.volumes import read_volume
from glovita.inference.predict import eval_pipeline
from glovita.inference.restore import load_run, load_weights, without_pretrained_weights
from glovita.models.factory import build_model
from tests.conftest import FAST, feature_args, series_args, write_images
from tests.datasets.volume_data import (
    make_volume_annotation_dataset,
    make_volume_dataset,
    make_volume_segmentation_dataset,
)

RESIDUAL_3D = [
    "--model.encoder.encoder_type", "residual_encoder", "--model.encoder.spatial_dims", "3",
    "--model.encoder.features_per_stage", "8", "16", "--model.encoder.blocks_per_stage", "1", "1",
    "--model.encoder.strides", "1", "2",
]  # fmt: skip


def _images(root: Path) -> list[str]:
    data = root / "images_ds"
    for split, count in (("train", 8), ("val", 3), ("test", 4)):
        for label, name in enumerate("ab"):
            write_images(data / "images" / split / name, label, count, prefix=split)
    return [
        "--data.dataset", "generic_image_dataset", "--data.data_root_dir", str(data), "--data.num_classes", "2",
        "--data.split_source", "subdirs", "--data.label_source", "folder", "--data.augmentation.image_size", "32",
        "--data.augmentation.resize_size", "32", "--data.augmentation.mean", "0.2", "0.3", "0.4",
        "--data.augmentation.std", "0.5", "0.6", "0.7", "--experiments_dir", str(root / "exp"), "--group", "g",
        "--training.epochs", "2", *FAST,
    ]  # fmt: skip


def _volumes(root: Path) -> list[str]:
    data = make_volume_dataset(root / "volumes_ds", per_class=8)
    return [
        "--data.dataset", "generic_volume_dataset", "--data.data_root_dir", str(data), "--data.num_classes", "2",
        "--data.volume_size", "16", "16", "16", *RESIDUAL_3D, "--model.encoder.input_channels", "1",
        "--training.epochs", "2",
        "--dataloading.batch_size", "4", "--dataloading.num_workers", "0", "--experiments_dir", str(root / "exp"),
        "--group", "g",
    ]  # fmt: skip


def _features(layout: str, head: list[str]):
    def args(root: Path) -> list[str]:
        return feature_args(root, layout, head) + ["--training.epochs", "2"]

    return args


def _slides(root: Path) -> list[str]:
    """A per-slide folder (digit slides, raw pixels); training samples at most 4 instances of a slide, evaluation
    reads them all, in the run's test pass and in glovita_infer alike."""
    make_slides(["--output_dir", str(root / "slides"), "--num_slides", "40", "--grid_min", "2", "--grid_max", "3"])
    slides = root / "slides"
    return [
        "--data.dataset", "precomputed_features", "--data.feature_layout", "slide_folder", "--data.features_dir",
        str(slides), "--data.labels_csv", str(slides / "labels.csv"), "--data.splits_dir", str(slides / "splits"),
        "--data.num_classes", "2", "--data.max_instances", "4", "--model.encoder.encoder_type", "precomputed",
        "--model.head.head_type", "clam", "--dataloading.batch_size", "4", "--dataloading.num_workers", "0",
        "--training.epochs", "2", "--experiments_dir", str(root / "exp"), "--group", "g",
    ]  # fmt: skip


def _series(root: Path) -> list[str]:
    return series_args(root) + ["--training.epochs", "2"]


VIDEO_FRAMES = [
    "--model.encoder.encoder_type", "framewise_image", "--model.encoder.type", "test_resnet",
    "--model.encoder.no_pretrained", "--data.augmentation.image_size", "16", "--data.augmentation.resize_size", "16",
    "--data.augmentation.mean", "0.2", "0.3", "0.4", "--data.augmentation.std", "0.5", "0.6", "0.7",
    "--dataloading.batch_size", "4", "--dataloading.num_workers", "0", "--training.epochs", "2",
]  # fmt: skip


def _videos(root: Path) -> list[str]:
    """Moving-digit clips; evaluation averages two clips of 4 frames (stride 2) per video."""
    make_moving_digits(["--output_dir", str(root / "md"), "--num_videos", "16", "--num_frames", "10",
                        "--frame_size", "16", "--digit_size", "8"])  # fmt: skip
    return [
        "--data.dataset", "generic_video_dataset", "--data.data_root_dir", str(root / "md"), "--data.num_classes",
        "4", "--data.num_frames", "4", "--data.frame_stride", "2", "--data.eval_clips", "2", *VIDEO_FRAMES,
        "--experiments_dir", str(root / "exp"), "--group", "g",
    ]  # fmt: skip


def _video_frames(root: Path) -> list[str]:
    """Moving digits labelled per frame: training windows of 8 frames, whole videos in evaluation."""
    make_moving_digits(["--output_dir", str(root / "mdf"), "--framewise", "--num_videos", "10", "--num_frames",
                        "14", "--frame_size", "16", "--digit_size", "8", "--min_segment_frames", "3"])  # fmt: skip
    return [
        "--data.dataset", "generic_video_dataset", "--data.data_root_dir", str(root / "mdf"), "--data.num_classes",
        "4", "--data.frame_labels_file", "frame_labels.csv", "--data.subtask", "framewise", "--data.num_frames", "8",
        "--model.head.head_type", "framewise_decoder_1d", "--model.head.num_layers", "3", "--model.head.hidden_dim",
        "16", *VIDEO_FRAMES, "--experiments_dir", str(root / "exp"), "--group", "g",
    ]  # fmt: skip


def _segmentation(root: Path) -> list[str]:
    """Digit masks (24 train / 8 val / 8 test images of 24x24), a U-Net decoder on a tiny timm ResNet."""
    make_digit_masks(["--output_dir", str(root / "dm"), "--num_images", "40", "--image_size", "24"])
    return [
        "--data.dataset", "generic_image_dataset", "--data.data_root_dir", str(root / "dm"), "--data.num_classes",
        "2", "--data.task", "Segmentation", "--data.masks_dir", "masks", "--data.augmentation.image_size", "24",
        "--data.augmentation.resize_size", "24", "--data.augmentation.mean", "0.2", "0.3", "0.4",
        "--data.augmentation.std", "0.5", "0.6", "0.7", "--model.head.head_type", "unet",
        "--model.head.decoder_channels", "8", "8", "8", "8", "8", "--experiments_dir", str(root / "exp"), "--group",
        "g", "--training.epochs", "2", *FAST,
    ]  # fmt: skip


def _saliency(root: Path) -> list[str]:
    """Digit classes with their stroke masks, trained with the saliency-guided step (HiResCAM at a 4x4 stage)."""
    make_digit_masks(["--output_dir", str(root / "dm"), "--num_images", "40", "--image_size", "32"])
    return [
        "--data.dataset", "generic_image_dataset", "--data.data_root_dir", str(root / "dm"), "--data.num_classes",
        "10", "--data.masks_dir", "masks", "--data.augmentation.image_size", "32", "--data.augmentation.resize_size",
        "32", "--training.step.step_type", "saliency_guided", "--training.step.target_layer", "layer2",
        "--experiments_dir", str(root / "exp"), "--group", "g", "--training.epochs", "2", *FAST,
    ]  # fmt: skip


def _masked_images(root: Path) -> list[str]:
    """A classifier of digit classes behind the segmenter of a segmentation run (hard masks)."""
    segmenter = _segmentation(root)
    train([*segmenter, "--group", "segmenter"])
    data = segmenter[segmenter.index("--data.data_root_dir") + 1]
    return [
        "--data.dataset", "generic_image_dataset", "--data.data_root_dir", data, "--data.num_classes", "10",
        "--data.augmentation.image_size", "32", "--data.augmentation.resize_size", "32",
        "--model.input_mask.checkpoint_path",
        str(root / "exp" / "generic_image_dataset" / "segmenter" / "0" / "checkpoints" / "best.pt"),
        "--model.input_mask.mode", "hard", "--experiments_dir", str(root / "exp"), "--group", "g",
        "--training.epochs", "2", *FAST,
    ]  # fmt: skip


def _volume_saliency(root: Path) -> list[str]:
    """Volumes whose class is a bright or dark box, the box annotated; saliency-guided with HiResCAM at the residual
    encoder's last stage (8^3 on 16^3 volumes)."""
    data = make_volume_annotation_dataset(root / "vsal")
    return [
        "--data.dataset", "generic_volume_dataset", "--data.data_root_dir", str(data), "--data.num_classes", "2",
        "--data.masks_dir", "masks", "--data.volume_size", "16", "16", "16", *RESIDUAL_3D,
        "--model.encoder.input_channels", "1", "--training.step.step_type", "saliency_guided",
        "--training.epochs", "2", "--dataloading.batch_size", "4", "--dataloading.num_workers", "0",
        "--experiments_dir", str(root / "exp"), "--group", "g",
    ]  # fmt: skip


def _volume_segmentation(root: Path) -> list[str]:
    """3D label maps (boxes in noise, 18x16x16 cropped to 16^3) with nnU-Net's encoder and decoder."""
    data = make_volume_segmentation_dataset(root / "vseg")
    return [
        "--data.dataset", "generic_volume_dataset", "--data.data_root_dir", str(data), "--data.num_classes", "3",
        "--data.task", "Segmentation", "--data.masks_dir", "masks", "--data.volume_size", "16", "16", "16",
        *RESIDUAL_3D, "--model.encoder.input_channels", "1", "--model.head.head_type", "unet",
        "--training.epochs", "2", "--dataloading.batch_size", "4", "--dataloading.num_workers", "0",
        "--experiments_dir", str(root / "exp"), "--group", "g",
    ]  # fmt: skip


MODALITIES = {
    "segmentation": (_segmentation, "generic_image_dataset"),
    "volume_segmentation": (_volume_segmentation, "generic_volume_dataset"),
    "saliency": (_saliency, "generic_image_dataset"),
    "volume_saliency": (_volume_saliency, "generic_volume_dataset"),
    "masked_images": (_masked_images, "generic_image_dataset"),
    "videos": (_videos, "generic_video_dataset"),
    "video_frames": (_video_frames, "generic_video_dataset"),
    "images": (_images, "generic_image_dataset"),
    "volumes": (_volumes, "generic_volume_dataset"),
    "instances": (  # standardised: infer must reuse the training statistics stored in the checkpoint
        _features("instances", ["--model.head.head_type", "classification", "--data.standardize_features"]),
        "precomputed_features",
    ),
    "bags": (_features("ptr", ["--model.head.head_type", "abmil"]), "precomputed_features"),
    "slides": (_slides, "precomputed_features"),
    "series": (_series, "generic_timeseries_dataset"),
    "series_masked": (  # padded steps masked out of the pooled features, in training and in glovita_infer
        lambda root: _series(root) + ["--data.length_policy", "pad_mask"],
        "generic_timeseries_dataset",
    ),
}


@pytest.fixture(scope="module", params=sorted(MODALITIES))
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """(modality, run directory) of a 2-epoch run on tiny data of that modality."""
    make_args, dataset = MODALITIES[request.param]
    root = tmp_path_factory.mktemp(request.param)
    train(make_args(root))
    return request.param, root / "exp" / dataset / "g" / "0"


def test_infer_metrics_equal_the_runs_test_metrics(run: tuple[str, Path], tmp_path: Path) -> None:
    _, run_dir = run
    infer(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path),
           "--dataloading.num_workers", "0"])  # fmt: skip
    predicted = json.loads((tmp_path / "metrics.json").read_text())
    tested = json.loads((run_dir / "test_metrics.json").read_text())
    shared = [key for key in predicted if f"test_{key}" in tested]
    expected = {
        "segmentation": {"miou", "dice", "pixel_accuracy", "iou_class_1"},
        "volume_segmentation": {"miou", "dice", "pixel_accuracy", "iou_class_2"},
        "video_frames": {"accuracy", "f1_macro", "edit", "f1_at_50"},
    }.get(run[0], {"accuracy", "f1_macro", "auroc", "ece"})
    assert expected <= set(shared)
    for key in shared:
        assert predicted[key] == pytest.approx(tested[f"test_{key}"], abs=1e-6, nan_ok=True), key
    _check_worst_errors(run[0], run_dir, tmp_path / "predictions.csv")


DRAWN = {"images", "masked_images", "saliency", "volumes", "volume_saliency", "videos", "series", "series_masked"}
"""Classifying runs whose samples have pictures: their report shows the worst test errors and the augmentation."""


def _check_worst_errors(modality: str, run_dir: Path, predictions_csv: Path) -> None:
    """test_worst_errors.json lists the misclassified test samples with the lowest probability of their true class,
    as glovita_infer's probabilities rank them, and the PNG draws one tile per sample (feature runs: none)."""
    import csv

    worst = run_dir / "test_worst_errors.json"
    pictures = DRAWN | {"segmentation", "volume_segmentation", "video_frames"}  # dense tasks rank no misses
    assert (run_dir / "augmentations.png").exists() == (modality in pictures)
    if modality not in DRAWN:
        assert not worst.exists()
        return
    assert Image.open(run_dir / "augmentations.png").size[0] > 100
    rows = list(csv.DictReader(predictions_csv.open()))
    missed = sorted((float(r[f"prob_{r['target']}"]), r["id"]) for r in rows if r["prediction_label"] != r["target"])
    listed = json.loads(worst.read_text())["samples"]
    assert [(r["true"], r["predicted"].split(" (p=")[0]) for r in listed] == [
        next((row["target"], row["prediction_label"]) for row in rows if row["id"].endswith(r["id"])) for r in listed
    ]
    assert len(listed) == min(len(missed), 12)
    ranked = {sample_id: p_true for p_true, sample_id in missed}
    listed_p = [next(p for i, p in ranked.items() if i.endswith(r["id"])) for r in listed]
    assert listed_p == sorted(listed_p) or np.allclose(listed_p, sorted(listed_p), atol=1e-5)
    if listed:  # every sample left out is at least as right as the last one shown
        assert all(p >= listed_p[-1] - 1e-5 for p, _ in missed[len(listed) :])
        grid = Image.open(run_dir / "test_worst_errors.png")
        assert grid.size[0] >= 100 and grid.size[1] >= 24 + 112 * -(-len(listed) // 8)
    else:
        assert not (run_dir / "test_worst_errors.png").exists()


def _hand_transformed(modality: str, run_dir: Path) -> tuple[list[Path], torch.Tensor]:
    """The test samples' files and their test-time inputs computed by hand from the files and the config."""
    config = json.loads((run_dir / "config.json").read_text())
    if modality.startswith("series"):  # z-scored per series and channel, then zero-padded to the longest (24)
        from glovita.datasets.timeseries import read_ts_file

        read = read_ts_file(Path(config["data"]["data_root_dir"]) / "test.ts", regression=False)
        rows = []
        for values in read.series:
            padded = np.zeros((2, 24))
            padded[:, : values.shape[1]] = (values - values.mean(1, keepdims=True)) / values.std(1, keepdims=True)
            rows.append(torch.from_numpy(padded).float())
        return [Path(name) for name in read.names], torch.stack(rows)
    if modality == "images":
        files = sorted((Path(config["data"]["data_root_dir"]) / "images" / "test").rglob("*.png"))
        mean, std = torch.tensor([0.2, 0.3, 0.4]), torch.tensor([0.5, 0.6, 0.7])
        pixels = [torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) / 255) for f in files]
        return files, torch.stack([(p.permute(2, 0, 1) - mean[:, None, None]) / std[:, None, None] for p in pixels])
    root = Path(config["data"]["data_root_dir"])
    test_ids = json.loads((root / "splits.json").read_text())["test"]
    if modality == "videos":  # PyAV's own decode; two clips of frames 0, 2, 4, 6 and 3, 5, 7, 9 (10 frames)
        import av

        files = [root / "videos" / name for name in test_ids]
        mean, std = torch.tensor([0.2, 0.3, 0.4]), torch.tensor([0.5, 0.6, 0.7])
        clips = []
        for path in files:
            with av.open(str(path)) as container:
                decoded = [torch.from_numpy(f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
            video = (torch.stack(decoded).float() / 255 - mean) / std  # (T, H, W, C)
            clips.append(torch.stack([video[frames].permute(3, 0, 1, 2) for frames in ([0, 2, 4, 6], [3, 5, 7, 9])]))
        return files, torch.stack(clips)
    files = [root / "volumes" / name for name in test_ids]
    volumes = []
    for path in files:
        volume = torch.as_tensor(read_volume(path), dtype=torch.float32)[None]  # (1, D, H, W)
        flat = volume.flatten(1)
        volumes.append((volume - flat.mean(1)[:, None, None, None]) / flat.std(1)[:, None, None, None])
    return files, torch.stack(volumes)


# Feature files have no transform.
@pytest.mark.parametrize("run", ["images", "volumes", "series", "series_masked", "videos"], indirect=True)
def test_infer_and_extract_use_the_runs_test_transform(run: tuple[str, Path], tmp_path: Path) -> None:
    modality, run_dir = run
    restored = load_run(run_dir / "checkpoints" / "best.pt")
    classes = restored.config.data.num_classes
    model = build_model(without_pretrained_weights(restored.config.model), restored.config.peft, classes, 0.0)
    load_weights(model, restored)
    model.eval()
    splits = build_datasets(restored.config.data, getattr(restored.config.model.encoder, "input_channels", 3))
    pipeline = eval_pipeline(restored, splits.modality, model)
    files, expected = _hand_transformed(modality, run_dir)
    by_id = {Path(i).name: n for n, i in enumerate(sample_ids(splits.test))}
    assert len(by_id) == len(files)
    for path, wanted in zip(files, expected, strict=True):
        sample = splits.test[by_id[path.name]][0]
        got = sample if pipeline.eval is None else pipeline.eval(sample)  # series: no eval transform
        got = torch.nan_to_num(got)  # pad_mask series hold NaN padding until the batch is collated
        torch.testing.assert_close(got.float(), wanted, atol=1e-5, rtol=1e-5)

    series = modality.startswith("series")
    method = "native" if series else "avg"  # series CNNs pool over time themselves
    extract(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path),
             "--split", "test", "--method", method, "--dataloading.num_workers", "0"])  # fmt: skip
    (written,) = list(tmp_path.glob("*.h5"))
    with h5py.File(written) as handle:
        features = torch.from_numpy(handle["features"][:])
        ids = [Path(i.decode()).name for i in handle["ids"][:]]
    avg_cfg = restored.config.model.model_copy(update={"feature_aggregation_method": None if series else "avg"})
    encoder_model = build_model(without_pretrained_weights(avg_cfg), restored.config.peft, classes, 0.0)
    load_weights(encoder_model, restored)
    with torch.no_grad():
        if modality == "series_masked":  # the mean over the real steps only
            real = torch.stack([row.abs().sum(0) != 0 for row in expected])  # padding is exactly zero
            by_hand = encoder_model.encoder.eval()(expected, real)  # type: ignore[call-arg]
        else:
            by_hand = encoder_model.encoder.eval()(expected)
    order = [ids.index(path.name) for path in files]
    torch.testing.assert_close(features[order], by_hand, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("run", ["series"], indirect=True)
def test_infer_on_a_series_file_reads_it_as_the_run_read_its_test_split(
    run: tuple[str, Path], tmp_path: Path, capsys
) -> None:
    """--series_file: the run's own test file gives test_metrics.json again; an unlabelled file gives predictions
    only; a series longer than the trained length is refused naming series_length."""
    import csv

    from tests.conftest import write_ts_file

    _, run_dir = run
    data_root = Path(json.loads((run_dir / "config.json").read_text())["data"]["data_root_dir"])
    best = str(run_dir / "checkpoints" / "best.pt")
    infer(["--checkpoint_path", best, "--series_file", str(data_root / "test.ts"), "--output_dir", str(tmp_path / "a")])
    predicted = json.loads((tmp_path / "a" / "metrics.json").read_text())
    tested = json.loads((run_dir / "test_metrics.json").read_text())
    assert predicted["accuracy"] == pytest.approx(tested["test_accuracy"], abs=1e-6)
    assert predicted["auroc"] == pytest.approx(tested["test_auroc"], abs=1e-6)
    unlabelled = tmp_path / "new.ts"
    lines = (data_root / "test.ts").read_text().splitlines()
    header = [line.replace("@classLabel true sine square", "@classLabel false") for line in lines[:5]]
    unlabelled.write_text("\n".join(header + [line.rsplit(":", 1)[0] for line in lines[5:8]]) + "\n")
    infer(["--checkpoint_path", best, "--series_file", str(unlabelled), "--output_dir", str(tmp_path / "b")])
    with (tmp_path / "b" / "predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 and "target" not in rows[0] and rows[0]["prediction_label"] in ("sine", "square")
    assert not (tmp_path / "b" / "metrics.json").exists()
    long = write_ts_file(tmp_path / "long.ts", [np.zeros((2, 30))], ["sine"], classes=["sine", "square"])
    with pytest.raises(SystemExit):
        infer(["--checkpoint_path", best, "--series_file", str(long), "--output_dir", str(tmp_path / "c")])
    assert "30 time steps, more than data.series_length=24" in capsys.readouterr().err


def _torch_logits(run_dir: Path, inputs: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    restored = load_run(run_dir / "checkpoints" / "best.pt")
    classes = restored.config.data.num_classes
    model = build_model(without_pretrained_weights(restored.config.model), restored.config.peft, classes, 0.0)
    load_weights(model, restored)
    with torch.no_grad():
        return model.eval().head.logits(model(inputs, mask))


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated")
@pytest.mark.parametrize(
    ("run", "fmt"),
    [("images", "onnx"), ("bags", "onnx"), ("series", "torchscript"), ("segmentation", "onnx")],
    indirect=["run"],
)
def test_export_reproduces_the_model_at_other_batch_sizes(run: tuple[str, Path], fmt: str, tmp_path: Path) -> None:
    """glovita_export checks itself on the test split; here the exported file is run again, independently, on
    inputs of another batch size (and, for bags, other bag sizes) against the PyTorch model."""
    modality, run_dir = run
    export(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--format", fmt,
            "--output_dir", str(tmp_path), "--verify_samples", "8"])  # fmt: skip
    record = json.loads((tmp_path / "preprocessing.json").read_text())
    assert record["verification"]["samples"] == 8 and record["verification"]["argmax_agreement"] == 1.0
    assert record["verification"]["max_abs_logit_difference"] < 1e-4 and record["probabilities"].startswith("softmax")
    mask = None
    if modality == "images":
        assert record["preprocessing"]["mean"] == [0.2, 0.3, 0.4] and record["inputs"]["inputs"]["shape"][1:] == [
            3,
            32,
            32,
        ]
        inputs = _hand_transformed("images", run_dir)[1][:3]
    elif modality == "bags":
        inputs = torch.randn(3, 11, 8)
        mask = torch.arange(11)[None] < torch.tensor([[5], [11], [2]])
        assert record["inputs"]["mask"]["dtype"] == "bool"
    elif modality == "segmentation":  # label maps follow the image: another height and width than trained
        assert record["inputs"]["inputs"]["shape"] == ["batch", 3, "height", "width"]
        inputs = torch.randn(3, 3, 40, 29)
    else:
        inputs = _hand_transformed("series", run_dir)[1][:3]
    expected = _torch_logits(run_dir, inputs, mask)
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
        feeds = {"inputs": inputs.numpy(), **({"mask": mask.numpy()} if mask is not None else {})}
        got = torch.from_numpy(session.run(["logits"], feeds)[0])
    else:
        got = torch.jit.load(str(tmp_path / "model.pt"))(inputs)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("run", ["images"], indirect=True)
def test_a_timm_export_loads_in_timm_with_its_preprocessing_and_logits(run: tuple[str, Path], tmp_path: Path) -> None:
    """--format timm: timm itself loads the folder (local-dir), its own data config and create_transform give the
    run's evaluation inputs, and its model gives the run's logits."""
    import timm
    from timm.data import create_transform, resolve_data_config

    _, run_dir = run
    export(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--format", "timm",
            "--output_dir", str(tmp_path), "--verify_samples", "8"])  # fmt: skip
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["architecture"] == "test_resnet" and saved["num_classes"] == 2
    model = timm.create_model(f"local-dir:{tmp_path}", pretrained=True).eval()
    transform = create_transform(**resolve_data_config({}, model=model))
    files, expected_inputs = _hand_transformed("images", run_dir)
    inputs = torch.stack([transform(Image.open(f).convert("RGB")) for f in files])
    torch.testing.assert_close(inputs, expected_inputs, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        got = model(inputs)
    torch.testing.assert_close(got, _torch_logits(run_dir, expected_inputs, None), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("run", ["instances"], indirect=True)
def test_a_run_timm_cannot_hold_is_refused_naming_why(run: tuple[str, Path], tmp_path: Path, capsys) -> None:
    _, run_dir = run
    with pytest.raises(SystemExit):
        export(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--format", "timm",
                "--output_dir", str(tmp_path)])  # fmt: skip
    err = capsys.readouterr().err
    assert "--format timm writes a plain timm classifier" in err and "model.encoder.encoder_type='precomputed'" in err
    assert not (tmp_path / "model.safetensors").exists()


@pytest.mark.parametrize("run", ["bags"], indirect=True)
def test_export_failure_names_the_op_and_opset(
    run: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def refuse(*args, **kwargs):
        raise RuntimeError("Unsupported FX nodes: {'call_function': ['aten.grid_sampler_3d.default']}")

    monkeypatch.setattr(torch.onnx, "export", refuse)
    with pytest.raises(SystemExit):
        export(["--checkpoint_path", str(run[1] / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path),
                "--opset", "17"])  # fmt: skip
    err = capsys.readouterr().err
    assert "ONNX export (opset 17) failed: unsupported op(s) aten.grid_sampler_3d.default" in err
    assert not list(tmp_path.glob("*.onnx")) and not (tmp_path / "preprocessing.json").exists()


@pytest.mark.parametrize("run", ["video_frames"], indirect=True)
def test_framewise_runs_predict_and_extract_every_frame(run: tuple[str, Path], tmp_path: Path) -> None:
    """glovita_infer writes a row per frame; glovita_extract_features one bag per video whose frame labels are the
    segments of frame_labels.csv."""
    _, run_dir = run
    checkpoint = str(run_dir / "checkpoints" / "best.pt")
    data = Path(json.loads((run_dir / "config.json").read_text())["data"]["data_root_dir"])
    test_ids = json.loads((data / "splits.json").read_text())["test"]
    names = ["0", "1", "2", "none"]
    expected = {}
    for line in (data / "frame_labels.csv").read_text().splitlines()[1:]:
        video, start, end, label = line.split(",")
        expected.setdefault(video, []).extend([names.index(label)] * (int(end) - int(start) + 1))
    infer(["--checkpoint_path", checkpoint, "--output_dir", str(tmp_path / "p"), "--dataloading.num_workers", "0"])
    frame_rows = (tmp_path / "p" / "frame_predictions.csv").read_text().splitlines()
    assert frame_rows[0] == "id,frame,target,prediction_label,prob_0,prob_1,prob_2,prob_none"
    assert len(frame_rows) == 1 + 14 * len(test_ids)
    first_video = Path(frame_rows[1].split(",")[0]).name
    assert [row.split(",")[2] for row in frame_rows[1:15]] == [names[k] for k in expected[first_video]]
    extract(["--checkpoint_path", checkpoint, "--output_dir", str(tmp_path / "f"), "--dataloading.num_workers", "0",
             "--output_filename", "{split}.h5"])  # fmt: skip
    with h5py.File(tmp_path / "f" / "test.h5") as handle:
        offsets, frame_labels = handle["bag_ptr"][:], handle["frame_labels"][:]
        ids = [Path(i.decode()).name for i in handle["ids"][:]]
        assert handle["features"].shape == (14 * len(test_ids), 96)
    assert np.diff(offsets).tolist() == [14] * len(test_ids)
    for k, video in enumerate(ids):
        assert frame_labels[offsets[k] : offsets[k + 1]].tolist() == expected[video]
    # The per-frame features train a framewise head as they are (each video a bag of its frames).
    features = tmp_path / "f"
    train([
        "--data.dataset", "precomputed_features", "--data.num_classes", "4", "--data.subtask", "framewise",
        "--data.train_features_file", str(features / "train.h5"), "--data.val_features_file", str(features / "val.h5"),
        "--data.test_features_file", str(features / "test.h5"), "--model.encoder.encoder_type", "precomputed",
        "--model.head.head_type", "framewise_decoder_1d", "--model.head.num_layers", "3", "--training.epochs", "2",
        "--dataloading.batch_size", "4", "--dataloading.num_workers", "0", "--experiments_dir", str(tmp_path / "exp"),
        "--group", "bags",
    ])  # fmt: skip
    bag_run = tmp_path / "exp" / "precomputed_features" / "bags" / "0"
    infer(["--checkpoint_path", str(bag_run / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path / "pb")])
    tested = json.loads((bag_run / "test_metrics.json").read_text())
    predicted = json.loads((tmp_path / "pb" / "metrics.json").read_text())
    assert {"test_edit", "test_f1_at_25"} <= set(tested)
    for key in ("accuracy", "edit", "f1_at_10", "f1_at_25", "f1_at_50"):
        assert predicted[key] == pytest.approx(tested[f"test_{key}"], abs=1e-9), key
    assert len((tmp_path / "pb" / "frame_predictions.csv").read_text().splitlines()) == 1 + 14 * len(test_ids)


@pytest.mark.parametrize("run", ["videos"], indirect=True)
def test_infer_on_a_video_folder_labels_videos_by_their_subfolder(run: tuple[str, Path], tmp_path: Path) -> None:
    """--video_dir: every video file under the folder gets a row; subfolders named like the run's classes give
    true labels, so accuracy is written too."""
    _, run_dir = run
    videos = Path(json.loads((run_dir / "config.json").read_text())["data"]["data_root_dir"]) / "videos"
    infer(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path),
           "--video_dir", str(videos), "--dataloading.num_workers", "0"])  # fmt: skip
    rows = (tmp_path / "predictions.csv").read_text().splitlines()
    assert rows[0].startswith("id,target,prediction_label,prob_down")
    assert len(rows) == 1 + len(list(videos.rglob("*.mp4")))
    assert {row.split(",")[1] for row in rows[1:]} == {"down", "left", "right", "up"}
    assert json.loads((tmp_path / "metrics.json").read_text())["num_samples"] == len(rows) - 1


@pytest.mark.parametrize("run", ["videos"], indirect=True)
def test_infer_on_a_video_run_names_the_right_flag_and_skips_unreadable_videos(
    run: tuple[str, Path], tmp_path: Path, capsys
) -> None:
    """--image_dir on a video run names --video_dir; a damaged video in --video_dir is named (fail, the default)
    or skipped with a warning (--on_unreadable skip), the others predicted."""
    import shutil

    _, run_dir = run
    videos = tmp_path / "videos"
    shutil.copytree(Path(json.loads((run_dir / "config.json").read_text())["data"]["data_root_dir"]) / "videos", videos)
    damaged = sorted(videos.rglob("*.mp4"))[0]
    body = damaged.read_bytes()
    start, end = body.find(b"mdat") + 8, body.find(b"moov") - 8
    damaged.write_bytes(body[:start] + b"\xff" * (end - start) + body[end:])  # header intact, frames garbage
    (tmp_path / "empty.mp4").write_bytes(b"")
    shutil.move(tmp_path / "empty.mp4", videos / "empty.mp4")
    checkpoint = ["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--dataloading.num_workers", "0"]
    with pytest.raises(SystemExit):
        infer([*checkpoint, "--output_dir", str(tmp_path / "a"), "--image_dir", str(videos)])
    assert "--image_dir / --image_csv read 2D images. Use --video_dir" in " ".join(capsys.readouterr().err.split())
    with pytest.raises(SystemExit):
        infer([*checkpoint, "--output_dir", str(tmp_path / "b"), "--video_dir", str(videos)])
    assert f"1 of {len(list(videos.rglob('*.mp4')))} videos of video_dir" in " ".join(capsys.readouterr().err.split())
    infer([*checkpoint, "--output_dir", str(tmp_path / "c"), "--video_dir", str(videos), "--on_unreadable", "skip"])
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: skipped 2 unreadable video(s)" in err and str(damaged) in err and "empty.mp4" in err
    rows = (tmp_path / "c" / "predictions.csv").read_text().splitlines()
    assert len(rows) == 1 + len(list(videos.rglob("*.mp4"))) - 2


@pytest.mark.parametrize("run", ["segmentation"], indirect=True)
def test_segmentation_infer_writes_masks_that_score_as_the_test_pass(run: tuple[str, Path], tmp_path: Path) -> None:
    """glovita_infer writes a label map per test image at its size; scored against the stored truth, the files give
    test_metrics.json's mIoU, and each predictions.csv row its own image's. The run drew its overlays."""
    import csv

    from glovita.metrics.segmentation import image_confusion, scores_from_confusion

    _, run_dir = run
    assert (run_dir / "val_overlays.png").is_file() and (run_dir / "test_overlays.png").is_file()
    report = (run_dir / "report.html").read_text()
    assert 'alt="test images, true and predicted label maps"' in report and "<td>miou</td>" in report
    infer(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path)])
    with (tmp_path / "predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    data_root = Path(json.loads((run_dir / "config.json").read_text())["data"]["data_root_dir"])
    test_ids = json.loads((data_root / "splits.json").read_text())["test"]
    assert sorted(Path(row["id"]).relative_to(data_root / "images").as_posix() for row in rows) == sorted(test_ids)
    total = torch.zeros(2, 2, dtype=torch.long)
    for row in rows:
        written = torch.from_numpy(np.array(Image.open(tmp_path / row["mask_file"]))).long()
        truth = torch.from_numpy(np.array(Image.open(data_root / "masks" / row["mask_file"].removeprefix("masks/"))))
        assert written.shape == truth.shape == (24, 24)
        confusion = image_confusion(written, truth.long(), 2, 255)
        total += confusion
        assert float(row["miou"]) == pytest.approx(scores_from_confusion(confusion)["miou"], abs=1e-5)
    tested = json.loads((run_dir / "test_metrics.json").read_text())
    assert scores_from_confusion(total)["miou"] == pytest.approx(tested["test_miou"], abs=1e-9)


@pytest.mark.parametrize("run", ["segmentation"], indirect=True)
def test_a_wrong_size_mask_stops_training_in_one_line(run: tuple[str, Path], tmp_path: Path, capsys) -> None:
    import shutil

    _, run_dir = run
    config = json.loads((run_dir / "config.json").read_text())
    data = tmp_path / "dm"
    shutil.copytree(config["data"]["data_root_dir"], data)
    bad = sorted((data / "masks").rglob("*.png"))[3]
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(bad)
    args = ["--data.dataset", "generic_image_dataset", "--data.data_root_dir", str(data), "--data.num_classes", "2",
            "--data.task", "Segmentation", "--data.masks_dir", "masks", "--model.head.head_type", "unet",
            "--experiments_dir", str(tmp_path / "exp"), *FAST]  # fmt: skip
    with pytest.raises(SystemExit):
        train(args)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("glovita_train: error")]
    assert len(err) == 1 and f"Mask file '{bad}' is 24x20 but its image" in err[0]


@pytest.mark.parametrize("run", ["volume_segmentation"], indirect=True)
def test_volume_masks_are_written_at_each_volumes_shape_and_format(run: tuple[str, Path], tmp_path: Path) -> None:
    """NIfTI in, NIfTI out with the source's affine; .npy in, .npy out; the 18x16x16 shape restored (the crop to
    16^3 undone: the slice it cut is the ignore index), and inside it the map the model scored."""
    import csv

    import nibabel

    _, run_dir = run
    assert (run_dir / "test_overlays.png").is_file()  # the middle slices of volume, truth and prediction
    infer(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path)])
    with (tmp_path / "predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 4 and {Path(r["mask_file"]).suffix for r in rows} == {".gz", ".npy"}
    for row in rows:
        path = tmp_path / row["mask_file"]
        labels = np.asarray(nibabel.load(str(path)).dataobj) if path.name.endswith(".nii.gz") else np.load(path)
        assert labels.shape == (18, 16, 16) and labels.dtype == np.uint8
        assert (labels[0] == 255).all() and (labels[-1] == 255).all()  # 18 -> 16 cut one slice at each end
        assert set(np.unique(labels[1:-1]).tolist()) <= {0, 1, 2}
        if path.name.endswith(".nii.gz"):
            assert np.array_equal(nibabel.load(str(path)).affine, np.eye(4))


@pytest.mark.parametrize("run", ["saliency", "volume_saliency"], indirect=True)
def test_infer_saliency_maps_score_as_the_test_pass(run: tuple[str, Path], tmp_path: Path) -> None:
    """glovita_infer --saliency hirescam draws a map per test image (volumes: their three middle slices) and reports
    the saliency IoU and pointing game the saliency-guided run's test pass measured (the same maps, of the true
    class, at the run's layer)."""
    modality, run_dir = run
    assert (run_dir / "val_saliency.png").is_file() and (run_dir / "test_saliency.png").is_file()
    assert 'alt="test images, annotated segments and saliency maps"' in (run_dir / "report.html").read_text()
    infer(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path),
           "--saliency", "hirescam"])  # fmt: skip
    predicted = json.loads((tmp_path / "metrics.json").read_text())
    tested = json.loads((run_dir / "test_metrics.json").read_text())
    assert {"test_saliency_iou", "test_pointing_game", "test_saliency_loss"} <= set(tested)
    for key in ("saliency_iou", "pointing_game", "accuracy"):
        assert predicted[key] == pytest.approx(tested[f"test_{key}"], abs=1e-6), key
    drawn = sorted((tmp_path / "saliency").rglob("*.png"))
    data_root = Path(json.loads((run_dir / "config.json").read_text())["data"]["data_root_dir"])
    test_ids = json.loads((data_root / "splits.json").read_text())["test"]
    stems = sorted(name.split(".")[0] for name in test_ids)
    assert [p.relative_to(tmp_path / "saliency").as_posix().removesuffix(".png") for p in drawn] == stems
    image = np.asarray(Image.open(drawn[0]))
    # 32x32 images, enlarged 4x; 16^3 volumes: three 16x16 slices, each with a column of space (16x51), enlarged 8x
    height, width = (128, 128) if modality == "saliency" else (128, 51 * 8)
    assert image.shape == (height, 2 * width, 3)  # the picture, then the map over it
    assert not np.array_equal(image[:, :width], image[:, width:])  # the right half is coloured by the map
    if modality == "volume_saliency":
        return
    with pytest.raises(SystemExit):  # a layer the model lacks, in one line naming the flag's value
        infer(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path / "x"),
               "--saliency", "gradcam", "--saliency_layer", "layer9"])  # fmt: skip


@pytest.mark.parametrize("run", ["masked_images"], indirect=True)
def test_a_masked_classifier_rebuilds_from_its_own_run_directory(run: tuple[str, Path], tmp_path: Path) -> None:
    """The segmenter's weights and records live in the classifier's run: with the segmentation run moved away,
    glovita_infer reproduces test_metrics.json and glovita_export writes one graph that masks too."""
    _, run_dir = run
    segmenter = run_dir.parent.parent / "segmenter"
    moved = segmenter.rename(tmp_path / "segmenter_elsewhere")
    try:
        infer(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path / "p")])
        export(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path / "e"),
                "--format", "torchscript"])  # fmt: skip
    finally:
        moved.rename(segmenter)
    predicted = json.loads((tmp_path / "p" / "metrics.json").read_text())
    tested = json.loads((run_dir / "test_metrics.json").read_text())
    assert predicted["accuracy"] == pytest.approx(tested["test_accuracy"], abs=1e-6)
    resolved = json.loads((run_dir / "resolved_config.json").read_text())
    assert resolved["input_mask"]["image_size"] == [24, 24]  # the segmenter's own size, not the classifier's 32
    exported = torch.jit.load(str(tmp_path / "e" / "model.pt"))
    restored = load_run(run_dir / "checkpoints" / "best.pt")
    from glovita.inference.restore import rebuild_model

    model = rebuild_model(restored).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(exported(images), model(images), atol=1e-4)
        unmasked = model.head(model.encoder(images))
    assert not torch.allclose(unmasked, model(images), atol=1e-4)  # the mask is part of the model
    moved = segmenter.rename(tmp_path / "segmenter_elsewhere")
    try:  # resuming needs no segmentation run either: the record and the checkpoint rebuild it
        train(["--config", str(run_dir / "config.json"), "--training.resume", "--training.epochs", "3"])
    finally:
        moved.rename(segmenter)
    assert json.loads((run_dir / "runtime_info.json").read_text())["status"] == "completed"
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == 3
