"""Every `glovita_train` command shown in README.md and docs/ parses as written, and runs on local data.

The run appends a few overrides (tiny model, one epoch, small images) so the suite stays fast; the parse
check is on the command exactly as written.
"""

import json
import re
import shlex
from pathlib import Path

import pytest

from glovita.cli.train import main, parse_root_config
from tests.conftest import write_images
from tests.datasets.test_digits_cifar import _write_fake_cifar10

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
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
    commands = []
    for doc in DOCS:
        for block in re.findall(r"```bash\n(.*?)```", doc.read_text(), flags=re.S):
            joined = re.sub(r"\\\n\s*", " ", block)
            for line in joined.splitlines():
                line = line.split("  #")[0].strip()
                if line.startswith("glovita_train") and "--help" not in line:
                    commands.append((f"{doc.name}: {line[:80]}", shlex.split(line)[1:]))
    return commands


COMMANDS = documented_commands()


def test_docs_show_commands() -> None:
    assert len(COMMANDS) >= 8


@pytest.mark.parametrize(("where", "args"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_documented_command_parses_as_written(where: str, args: list[str]) -> None:
    parse_root_config(args)


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


@pytest.mark.slow
def test_documented_commands_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from torchvision.datasets import cifar

    monkeypatch.setattr(cifar, "check_integrity", cifar.check_integrity)
    monkeypatch.chdir(tmp_path)
    _prepare_data(tmp_path)
    for _where, args in COMMANDS:
        main([*args, *RUN_OVERRIDES])
    finished = list((tmp_path / "experiments").rglob("runtime_info.json"))
    statuses = [json.loads(p.read_text())["status"] for p in finished]
    assert statuses and set(statuses) == {"completed"}
    assert len(finished) == len({tuple(a) for _, a in COMMANDS}) - 1  # the resume pair shares one run
