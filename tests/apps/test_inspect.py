"""glovita_inspect: on a digits run it prints the resolved config, the layer table and one batch's statistics, and
writes the batch as a PNG grid; the batch is the run's first training batch; flags alone inspect an untrained
model."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from glovita.cli.inspect_run import main as inspect
from glovita.cli.train import main as train
from glovita.runtime.loaders import epoch_order

SMALL = ["--model.encoder.type", "test_resnet", "--model.encoder.no_pretrained", "--dataloading.num_workers", "0",
         "--data.augmentation.image_size", "32", "--dataloading.batch_size", "8"]  # fmt: skip


@pytest.fixture
def digits_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from glovita.datasets.digits import prepare_digits

    monkeypatch.chdir(tmp_path)
    prepare_digits(tmp_path / "data" / "digits")
    splits_file = tmp_path / "data" / "digits" / "splits.json"
    splits = json.loads(splits_file.read_text())
    splits_file.write_text(json.dumps({split: sorted(ids)[::8] for split, ids in splits.items()}))
    return tmp_path


def test_inspect_a_digits_run(digits_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train([*SMALL, "--training.epochs", "1", "--group", "g"])
    run_dir = digits_folder / "experiments" / "digits" / "g" / "0"
    capsys.readouterr()
    inspect([str(run_dir)])
    out = capsys.readouterr().out
    assert f"Inspecting {run_dir} (best.pt)" in out and '"best_metric": "val_accuracy"' in out  # resolved settings
    assert "│ head.net " in out and "(8, 10)" in out and "│ encoder.model.conv1 " in out  # layer table, depth 3
    details = json.loads((run_dir / "inspect_train.json").read_text())
    layers = {row["module"]: row for row in details["layers"]}
    assert layers["head.net"]["output"] == "(8, 10)" and layers["encoder"]["calls"] == 1
    weights = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)["model"]
    encoder_params = sum(v.numel() for k, v in weights.items() if k.startswith("encoder.") and "running" not in k
                         and "num_batches" not in k)  # fmt: skip
    assert layers["encoder"]["parameters"] == encoder_params
    batch = details["batch"]
    assert batch["inputs"]["shape"] == [8, 3, 32, 32] and batch["outputs"]["shape"] == [8, 10]
    # the run's first training batch: epoch 0 of its seeded order
    ids = sorted(json.loads((digits_folder / "data" / "digits" / "splits.json").read_text())["train"])
    order, _ = epoch_order(len(ids), 42, 0, shuffle=True)
    expected: dict[str, int] = {}
    for index in order[:8].tolist():
        label = str(int(Path(ids[index]).parent.name))
        expected[label] = expected.get(label, 0) + 1
    assert batch["targets"]["counts"] == expected
    with Image.open(run_dir / "inspect_train.png") as grid:
        assert grid.size[0] > 400 and grid.size[1] > 200


def test_inspect_from_flags_writes_where_asked(digits_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    inspect([*SMALL, "--split", "val", "--output_dir", "looked", "--depth", "1", "--num_samples", "4"])
    out = capsys.readouterr().out
    assert "Inspecting the given flags (untrained model)" in out and "First val batch (8 samples)" in out
    details = json.loads((digits_folder / "looked" / "inspect_val.json").read_text())
    assert [row["module"] for row in details["layers"]][:2] == ["encoder", "head"]
    assert all("." not in row["module"] for row in details["layers"])  # depth 1
    assert (digits_folder / "looked" / "inspect_val.png").is_file()
    with pytest.raises(SystemExit):
        inspect([str(digits_folder / "nowhere")])
    assert "checkpoints/best.pt) or a checkpoint" in " ".join(capsys.readouterr().err.split())
