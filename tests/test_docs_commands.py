"""Every GloViTa command shown in README.md and docs/ parses as written, and runs on local data.

Image training runs append a few overrides (tiny model, one epoch, small images) so the suite stays fast;
feature training runs get one epoch; extraction, inference and plotting run exactly as written. `torchrun`
lines run through bash as written (plus the same overrides), launching two CPU processes. The parse check is on
each command exactly as written. Commands run in document order in one folder, so later ones use the files
earlier ones wrote (the README's run `my_run` feeds the checkpoint-mode extraction).
"""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from glovita.cli.argv import parse_config
from glovita.cli.check_dataset import main as check_dataset_main
from glovita.cli.compare import main as compare_main
from glovita.cli.export import main as export_main
from glovita.cli.extract_features import main as extract_main
from glovita.cli.infer import main as infer_main
from glovita.cli.inspect_run import main as inspect_main
from glovita.cli.make_digit_masks import main as digit_masks_main
from glovita.cli.make_digit_slides import main as slides_main
from glovita.cli.make_moving_digits import main as moving_digits_main
from glovita.cli.mil_heatmap import main as heatmap_main
from glovita.cli.plot_umap import main as umap_main
from glovita.cli.report import main as report_main
from glovita.cli.show_augmentations import main as show_main
from glovita.cli.sweep import main as sweep_main
from glovita.cli.train import main, parse_root_config
from glovita.configs.check_dataset import CheckDatasetConfig
from glovita.configs.compare import CompareConfig
from glovita.configs.digit_masks import DigitMasksConfig
from glovita.configs.digit_slides import DigitSlidesConfig
from glovita.configs.export import ExportConfig
from glovita.configs.extract import ExtractFeaturesConfig
from glovita.configs.infer import InferConfig
from glovita.configs.inspect_run import InspectConfig
from glovita.configs.mil_heatmap import MilHeatmapConfig
from glovita.configs.moving_digits import MovingDigitsConfig
from glovita.configs.plot_umap import PlotUmapConfig
from glovita.configs.report import ReportConfig
from glovita.configs.show_augmentations import ShowAugmentationsConfig
from glovita.configs.sweep import SweepConfig
from tests.conftest import series_args, write_feature_file, write_images
from tests.datasets.test_chestxray14 import make_fake_chestxray14
from tests.datasets.test_digits_cifar import _write_fake_cifar10
from tests.datasets.volume_data import make_volume_dataset, make_volume_segmentation_dataset
from tests.segmentation.data import labelfree_pairs, labelfree_volume_pairs

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
TOOLS = {
    "glovita_infer": (InferConfig, infer_main),
    "glovita_extract_features": (ExtractFeaturesConfig, extract_main),
    "glovita_plot_umap": (PlotUmapConfig, umap_main),
    "glovita_show_augmentations": (ShowAugmentationsConfig, show_main),
    "glovita_mil_heatmap": (MilHeatmapConfig, heatmap_main),
    "glovita_make_digit_slides": (DigitSlidesConfig, slides_main),
    "glovita_make_moving_digits": (MovingDigitsConfig, moving_digits_main),
    "glovita_make_digit_masks": (DigitMasksConfig, digit_masks_main),
    "glovita_check_dataset": (CheckDatasetConfig, check_dataset_main),
    "glovita_compare": (CompareConfig, compare_main),
    "glovita_export": (ExportConfig, export_main),
    "glovita_report": (ReportConfig, report_main),
    "glovita_inspect": (InspectConfig, inspect_main),
}
"""Commands that run exactly as written: their config class (for the parse check) and entry point."""
TOOL_OVERRIDES = {
    "glovita_make_moving_digits": ["--num_videos", "40"],
    "glovita_make_digit_masks": ["--num_images", "60"],
}
"""Tools whose documented data would only make the test slower: fewer videos (the runs check the commands work;
docs/benchmarks.md records what the documented sizes reach)."""
COMMANDS_BY_NAME = {"glovita_train", "glovita_sweep", "torchrun", *TOOLS}
FEATURE_OVERRIDES = ["--training.epochs", "1", "--dataloading.num_workers", "0"]
RUN_OVERRIDES = [
    "--model.encoder.type",
    "test_resnet",
    "--model.encoder.no_pretrained",
    "--training.epochs",
    "1",
    "--dataloading.batch_size",
    "16",
    "--dataloading.num_workers",
    "0",
    "--data.augmentation.image_size",
    "32",
]


def documented_commands() -> list[tuple[str, list[str]]]:
    """(where, [command name, *args]) for every command in a bash block, in document order."""
    commands = []
    for doc in DOCS:
        for block in re.findall(r"```bash\n(.*?)```", doc.read_text(), flags=re.S):
            joined = re.sub(r"\\\n\s*", " ", block)
            for line in joined.splitlines():
                line = "" if line.lstrip().startswith("#") else line.split("  #")[0].strip()
                words = shlex.split(line) if line else []
                if words and words[0] in COMMANDS_BY_NAME and "--help" not in words:
                    commands.append((f"{doc.name}: {line[:80]}", words))
    return commands


COMMON_OVERRIDES = RUN_OVERRIDES[3:]
"""One epoch, batch 16, no workers, 32x32 images."""
FAMILY_OVERRIDES = {
    "timm": RUN_OVERRIDES[:3],
    "torchvision": ["--model.encoder.no_pretrained"],
    "torchvision_video": ["--model.encoder.no_pretrained"],
    "torchvision_segmentation": ["--model.encoder.type", "lraspp_mobilenet_v3_large"],
    "framewise_image": RUN_OVERRIDES[:3],
    "dinov2": ["--model.encoder.model_kwargs", "depth", "1"],
    "dinov3": ["--model.encoder.model_kwargs", "depth", "1"],
    "transformer": [
        "--model.encoder.model_kwargs", "hidden_size", "32", "num_hidden_layers", "1", "num_attention_heads", "2",
        "intermediate_size", "64", "image_size", "32", "patch_size", "8",
    ],
    "primus": ["--model.encoder.embed_dim", "48", "--model.encoder.num_heads", "2", "--model.encoder.depth", "1"],
    "residual_encoder": [
        "--model.encoder.features_per_stage", "8", "16", "--model.encoder.blocks_per_stage", "1", "1",
        "--model.encoder.strides", "1", "2",
    ],
}  # fmt: skip
"""Tiny versions of each encoder family (a timm command with its own model_kwargs keeps its model with one
block)."""


DIGITS_EVERY = 4
"""The digits folder (the default dataset) of the documented runs keeps every 4th id of each split: the runs check
that the command works, not what it reaches (tests/training/test_digits_accuracy.py does that)."""


def training_overrides(args: list[str]) -> list[str]:
    """What a documented training command gets appended to stay small."""
    if "precomputed_features" in args or "generic_timeseries_dataset" in args:
        return FEATURE_OVERRIDES
    return _model_overrides(args)


def _model_overrides(args: list[str]) -> list[str]:
    family = args[args.index("--model.encoder.encoder_type") + 1] if "--model.encoder.encoder_type" in args else "timm"
    if family == "timm" and "unet" in args:  # a U-Net on the tiny encoder: narrow decoder blocks too
        return [*COMMON_OVERRIDES, *FAMILY_OVERRIDES["timm"], "--model.head.decoder_channels", "8", "8", "8", "8", "8"]
    if family == "timm" and "--model.encoder.model_kwargs" in args:  # a ViT: keep it, with one block
        start = args.index("--model.encoder.model_kwargs") + 1
        end = next((i for i in range(start, len(args)) if args[i].startswith("--")), len(args))
        kwargs = [*args[start:end], "depth", "1"]
        return [*COMMON_OVERRIDES, "--model.encoder.no_pretrained", "--model.encoder.model_kwargs", *kwargs]
    return [*COMMON_OVERRIDES, *FAMILY_OVERRIDES[family]]


def sweep_overrides(args: list[str]) -> list[str]:
    """A documented sweep with 2 trials, each trial with the training overrides."""
    split = args.index("--")
    sweep, train = args[:split], args[split + 1 :]
    sweep[sweep.index("--trials") + 1] = "2"
    return [*sweep, "--", *train, *training_overrides(train)]


def run_count(args: list[str]) -> int:
    """Run directories a glovita_train command makes: one per fold listed after --folds, else one."""
    if "--folds" not in args:
        return 1
    folds = args[args.index("--folds") + 1 :]
    return next((i for i, word in enumerate(folds) if not word.isdigit()), len(folds))


def torchrun_training_args(words: list[str]) -> list[str]:
    """The glovita_train flags of a `torchrun ... -m glovita.train ...` or `... $(which glovita_train) ...` line."""
    for i, word in enumerate(words):
        if word == "glovita.train" or word.endswith("glovita_train)"):
            return words[i + 1 :]
    raise AssertionError(f"torchrun line without glovita.train: {words}")


COMMANDS = documented_commands()


def test_docs_show_commands() -> None:
    assert len(COMMANDS) >= 8


def _without_missing_config(args: list[str]) -> list[str]:
    """args without a `--config FILE` whose file an earlier documented command writes (a run's config.json);
    the run test reads it for real."""
    if "--config" in args and not Path(args[args.index("--config") + 1]).is_file():
        i = args.index("--config")
        return args[:i] + args[i + 2 :]
    return args


@pytest.mark.parametrize(("where", "words"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_parses_as_written(
    where: str, words: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _write_documented_files(tmp_path)  # e.g. the README's my.yaml
    name, *args = words
    args = _without_missing_config(args)
    if name == "torchrun":
        parse_root_config(torchrun_training_args(words))
    elif name == "glovita_train" and "--print_config" in args:
        with pytest.raises(SystemExit) as printed:
            parse_root_config(args)
        assert printed.value.code == 0
    elif name == "glovita_train":
        parse_root_config(args)
    elif name == "glovita_sweep":
        split = args.index("--")
        parse_config(SweepConfig, args[:split], name, "")
        parse_root_config(args[split + 1 :])
    else:
        parse_config(TOOLS[name][0], args, name, "")


def _write_documented_files(cwd: Path) -> None:
    """Files the docs show in a ```yaml block that starts with `# NAME` (e.g. the README's my.yaml)."""
    for doc in DOCS:
        for block in re.findall(r"```yaml\n# (\S+)\n(.*?)```", doc.read_text(), flags=re.S):
            (cwd / block[0]).write_text(block[1])


def _prepare_data(cwd: Path) -> None:
    from torchvision.datasets import cifar

    from glovita.datasets.digits import prepare_digits

    _write_documented_files(cwd)
    prepare_digits(cwd / "data" / "digits")
    splits_file = cwd / "data" / "digits" / "splits.json"
    splits = json.loads(splits_file.read_text())
    splits_file.write_text(json.dumps({split: sorted(ids)[::DIGITS_EVERY] for split, ids in splits.items()}))
    kept = {f"images/{i}" for ids in json.loads(splits_file.read_text()).values() for i in ids}
    manifest = cwd / "data" / "digits" / "manifest.csv"
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join([lines[0], *(line for line in lines[1:] if line.split(",")[0] in kept)]) + "\n")

    _write_fake_cifar10(cwd / "data", per_batch=20)
    cifar.check_integrity = lambda *args: True  # restored by monkeypatch in the test
    for split, count in (("train", 10), ("val", 2), ("test", 2)):
        for label, name in enumerate(("neg", "pos")):
            write_images(cwd / "data" / "MyDataset" / "images" / split / name, label, count, prefix=split)
    reg = cwd / "data" / "MyRegression"
    ids = [p.name for label in range(3) for p in write_images(reg / "images", label, 12)]
    (reg / "splits.json").write_text(json.dumps({"train": ids[::2], "val": ids[1::4], "test": ids[3::4]}))
    (reg / "labels.csv").write_text("image,label\n" + "\n".join(f"{i},{i[0]}" for i in ids) + "\n")
    make_fake_chestxray14(cwd / "data" / "ChestXray14")
    folds = cwd / "data" / "MyFolds"
    ids = [
        p.relative_to(folds / "images").as_posix()
        for k in range(2)
        for p in write_images(folds / "images" / str(k), k, 18)
    ]
    partitions = {str(f): ids[f * 6 : f * 6 + 6] + ids[18 + f * 6 : 24 + f * 6] for f in range(3)}
    test = [
        p.relative_to(folds / "images").as_posix()
        for k in range(2)
        for p in write_images(folds / "images" / str(k), k, 4, prefix="test")
    ]  # apart from the fold partitions: a split overlap is refused
    (folds / "splits.json").write_text(json.dumps({**partitions, "test": test}))
    (cwd / "my_images.csv").write_text("path,label\ndata/digits/images/3/0003.png,3\ndata/digits/images/7/0007.png,7\n")
    labelfree_pairs(cwd / "data" / "MyLabelFree", counts=(("train", 16), ("val", 4), ("test", 4)))
    labelfree_volume_pairs(cwd / "data" / "MyLabelFreeVolumes", count=8, size=32)
    make_volume_dataset(cwd / "data" / "MyVolumes", per_class=16, size=(32, 32, 32))
    make_volume_segmentation_dataset(cwd / "data" / "MyVolumeMasks", count=8)
    (cwd / "data" / "MySeries").mkdir()
    series_args(cwd / "data" / "MySeries")  # writes train.ts and test.ts (2 channels)
    (cwd / "bags").mkdir()
    write_feature_file(cwd / "bags" / "train_bags.h5", "ptr", 24, dim=512)
    write_feature_file(cwd / "bags" / "val_bags.h5", "lengths", 8, dim=512, seed=1)


@pytest.mark.slow
def test_documented_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import cifar

    monkeypatch.setattr(cifar, "check_integrity", cifar.check_integrity)
    monkeypatch.chdir(tmp_path)
    _prepare_data(tmp_path)
    trainings = 0
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "OMP_NUM_THREADS": "1",
    }
    for where, (name, *args) in COMMANDS:
        if name == "torchrun" and any(word.endswith("glovita_train)") for word in args):
            continue  # parsed above; tests/training/test_distributed.py launches the glovita_train script this way
        if name == "torchrun":
            trainings += 1
            line = shlex.join([name, *args]).replace("'$(which' 'glovita_train)'", "$(which glovita_train)")
            result = subprocess.run(
                ["bash", "-c", f"{line} {shlex.join(RUN_OVERRIDES)}"], capture_output=True, text=True, env=env
            )
            assert result.returncode == 0, f"{where}\n{result.stderr[-3000:]}"
        elif name == "glovita_train" and "--print_config" in args:
            with pytest.raises(SystemExit) as printed:
                main(args)
            assert printed.value.code == 0, where
        elif name == "glovita_train":
            trainings += run_count(args)
            main([*args, *training_overrides(args)])
        elif name == "glovita_sweep":
            trainings += 2  # two trials, each a run
            sweep_main(sweep_overrides(args))
        else:
            TOOLS[name][1]([*args, *TOOL_OVERRIDES.get(name, [])])
    finished = list((tmp_path / "experiments").rglob("runtime_info.json"))
    statuses = [json.loads(p.read_text())["status"] for p in finished]
    assert statuses and set(statuses) == {"completed"}
    assert len(finished) == trainings - 1  # the resume pair shares one run
    features = sorted(p.name for p in (tmp_path / "features").iterdir())
    assert "my_run_last_digits_test_avg.h5" in features
    assert "agg_avg_resnet18_digits_test_size32_float32_umap.png" in features
    assert (tmp_path / "augmentations.png").is_file()
    assert (tmp_path / "series_augmentations.png").is_file()
    assert (tmp_path / "predictions" / "gunpoint" / "predictions.csv").is_file()
    assert json.loads((tmp_path / "predictions" / "myseries" / "metrics.json").read_text())["num_samples"] == 12
    assert (tmp_path / "predictions" / "predictions.csv").is_file()
    pages = list((tmp_path / "experiments").rglob("report.html"))
    assert (
        len(pages) >= trainings
        and (tmp_path / "experiments" / "generic_image_dataset" / "cv3" / "report.html").is_file()
    )
    swept = json.loads((tmp_path / "experiments" / "digits" / "digits_lr_wd" / "sweep_summary.json").read_text())
    assert len(swept["trials"]) == 2 and (tmp_path / "experiments" / "sweeps.db").is_file()
    exported = json.loads((tmp_path / "exported" / "preprocessing.json").read_text())
    assert (tmp_path / "exported" / "model.onnx").is_file() and exported["verification"]["argmax_agreement"] == 1.0
    compared = (tmp_path / "experiments" / "digits" / "compare.csv").read_text().splitlines()
    assert len(compared) > 3 and compared[0].startswith("run,")
    assert len(list((tmp_path / "predictions" / "digit_slides" / "attention").glob("*.h5"))) >= 40
    saliency = tmp_path / "predictions" / "decoy_saliency"  # docs/saliency.md: maps of every test image, scored
    assert {"saliency_iou", "pointing_game"} <= set(json.loads((saliency / "metrics.json").read_text()))
    assert len(list((saliency / "saliency").rglob("*.png"))) == len(
        json.loads((tmp_path / "data" / "decoy_digits" / "splits.json").read_text())["test"]
    )
    assert (tmp_path / "predictions" / "digit_slides" / "attention" / "slide_0105_heatmap.png").is_file()
    assert json.loads((tmp_path / "predictions" / "csv" / "metrics.json").read_text())["num_samples"] == 2
    assert (tmp_path / "experiments" / "mlflow" / "mlflow.db").is_file()
    assert list((tmp_path / "experiments" / "wandb" / "wandb").glob("offline-run-*"))
    videos = tmp_path / "predictions" / "moving_digits"
    clip_tests = json.loads((tmp_path / "data" / "moving_digits" / "splits.json").read_text())["test"]
    assert len((videos / "predictions.csv").read_text().splitlines()) == 1 + len(clip_tests)  # a row per video
    frames = (tmp_path / "predictions" / "moving_digits_frames" / "frame_predictions.csv").read_text().splitlines()
    frame_tests = json.loads((tmp_path / "data" / "moving_digits_frames" / "splits.json").read_text())["test"]
    assert len(frames) == 1 + 48 * len(frame_tests)  # a row per frame of every test video
    assert (tmp_path / "experiments" / "generic_video_dataset" / "frames_tcn" / "0" / "timeline.png").is_file()
    assert (tmp_path / "video_augmentations.png").is_file()
    on_features = tmp_path / "experiments" / "precomputed_features" / "frames_on_features" / "0" / "test_metrics.json"
    assert "test_edit" in json.loads(on_features.read_text())
    segmented = tmp_path / "experiments" / "generic_image_dataset"
    for group in ("unet", "deeplab"):
        assert "test_miou" in json.loads((segmented / group / "0" / "test_metrics.json").read_text())
    volume_unet = tmp_path / "experiments" / "generic_volume_dataset" / "volume_unet" / "0" / "test_metrics.json"
    assert "test_iou_class_2" in json.loads(volume_unet.read_text())
    predicted_images = list((tmp_path / "predictions" / "labelfree" / "images").rglob("*.png"))
    assert len(predicted_images) == 4  # the label-free run's test images, predicted
    predicted_volumes = sorted(p.name for p in (tmp_path / "predictions" / "labelfree_3d" / "images").iterdir())
    volume_tests = json.loads((tmp_path / "data" / "MyLabelFreeVolumes" / "splits.json").read_text())["test"]
    assert predicted_volumes == sorted(volume_tests) and list((tmp_path / "cache").rglob("*.npz"))
    masks = list((tmp_path / "predictions" / "digit_masks" / "masks").rglob("*.png"))
    mask_tests = json.loads((tmp_path / "data" / "digit_masks" / "splits.json").read_text())["test"]
    assert len(masks) == len(mask_tests) and (tmp_path / "exported" / "unet" / "model.onnx").is_file()
    summary = json.loads((tmp_path / "experiments" / "generic_image_dataset" / "cv3" / "cv_summary.json").read_text())
    assert summary["folds"] == [0, 1, 2]
