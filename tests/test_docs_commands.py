"""Every GloViTa command shown in README.md and docs/ parses as written, and runs on local data.

Image training runs append a few overrides (tiny model, one epoch, small images) so the suite stays fast;
feature training runs get one epoch; extraction and plotting run exactly as written. The parse check is on
each command exactly as written. Commands run in document order in one folder, so later ones use the files
earlier ones wrote (the README's run `my_run` feeds the checkpoint-mode extraction).
"""

import json
import re
import shlex
from pathlib import Path

import pytest

from glovita.cli.argv import parse_config
from glovita.cli.extract_features import main as extract_main
from glovita.cli.plot_umap import main as umap_main
from glovita.cli.show_augmentations import main as show_main
from glovita.cli.train import main, parse_root_config
from glovita.configs.extract import ExtractFeaturesConfig
from glovita.configs.plot_umap import PlotUmapConfig
from glovita.configs.show_augmentations import ShowAugmentationsConfig
from tests.conftest import write_feature_file, write_images
from tests.datasets.test_chestxray14 import make_fake_chestxray14
from tests.datasets.test_digits_cifar import _write_fake_cifar10

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
COMMANDS_BY_NAME = {"glovita_train", "glovita_extract_features", "glovita_plot_umap", "glovita_show_augmentations"}
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
                line = line.split("  #")[0].strip()
                words = shlex.split(line) if line else []
                if words and words[0] in COMMANDS_BY_NAME and "--help" not in words:
                    commands.append((f"{doc.name}: {line[:80]}", words))
    return commands


COMMANDS = documented_commands()


def test_docs_show_commands() -> None:
    assert len(COMMANDS) >= 8


@pytest.mark.parametrize(("where", "words"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_parses_as_written(where: str, words: list[str]) -> None:
    name, *args = words
    if name == "glovita_train":
        parse_root_config(args)
    elif name == "glovita_extract_features":
        parse_config(ExtractFeaturesConfig, args, name, "")
    elif name == "glovita_show_augmentations":
        parse_config(ShowAugmentationsConfig, args, name, "")
    else:
        parse_config(PlotUmapConfig, args, name, "")


def _prepare_data(cwd: Path) -> None:
    from torchvision.datasets import cifar

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
    for _where, (name, *args) in COMMANDS:
        if name == "glovita_train":
            trainings += 1
            main([*args, *(FEATURE_OVERRIDES if "precomputed_features" in args else RUN_OVERRIDES)])
        elif name == "glovita_extract_features":
            extract_main(args)
        elif name == "glovita_show_augmentations":
            show_main(args)
        else:
            umap_main(args)
    finished = list((tmp_path / "experiments").rglob("runtime_info.json"))
    statuses = [json.loads(p.read_text())["status"] for p in finished]
    assert statuses and set(statuses) == {"completed"}
    assert len(finished) == trainings - 1  # the resume pair shares one run
    features = sorted(p.name for p in (tmp_path / "features").iterdir())
    assert "my_run_last_digits_test_avg.h5" in features
    assert "agg_avg_resnet18_digits_test_size32_float32_umap.png" in features
    assert (tmp_path / "augmentations.png").is_file()
