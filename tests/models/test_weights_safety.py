"""A weights file is data, never code: every file a user or a run's config names is read tensors-only.

Each test writes a pickle whose `__reduce__` would create a marker file, hands it to a family or an entry point,
and asserts the marker never appears."""

import os
import pickle
import re
from pathlib import Path

import pytest
import torch

from glovita.cli.extract_features import main as extract_main
from glovita.cli.infer import main as infer_main
from glovita.cli.train import main as train_main
from glovita.configs.model import (
    Dinov2EncoderConfig,
    Dinov3EncoderConfig,
    ModelConfig,
    PrimusEncoderConfig,
    ResidualEncoderConfig,
    TimmEncoderConfig,
    TorchvisionEncoderConfig,
    TransformerEncoderConfig,
)
from glovita.models.factory import build_encoder
from tests.conftest import generic_args, write_images


class _Payload:
    """Unpickling this runs `touch marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_payload(path: Path, marker: Path, style: str) -> Path:
    """A weights file that runs code when unpickled: a torch zip (`zip`), or a legacy plain pickle (`plain`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"state_dict": {"conv1.weight": torch.zeros(1)}, "trap": _Payload(marker)}
    if style == "zip":
        torch.save(state, path)
    else:
        with path.open("wb") as handle:
            pickle.dump(state, handle)
    return path


def test_the_payload_works_when_unpickled(tmp_path: Path) -> None:
    """The trap is real: an unsafe load does create the marker (so the tests below can fail)."""
    marker = tmp_path / "ran"
    path = write_payload(tmp_path / "w.pth", marker, "plain")
    with path.open("rb") as handle:
        pickle.load(handle)
    assert marker.exists()


FAMILIES = {
    "timm": lambda p: TimmEncoderConfig(type="test_resnet", pretrained_path=p),
    "dinov2": lambda p: Dinov2EncoderConfig(pretrained_path=p, image_size=28, model_kwargs={"depth": 1}),
    "dinov3": lambda p: Dinov3EncoderConfig(pretrained_path=p, image_size=32, model_kwargs={"depth": 1}),
    "torchvision": lambda p: TorchvisionEncoderConfig(type="mobilenet_v3_small", pretrained_path=p),
    "residual_encoder": lambda p: ResidualEncoderConfig(
        pretrained=True, pretrained_path=p, features_per_stage=(8, 16), blocks_per_stage=(1, 1), strides=(1, 2)
    ),
    "primus": lambda p: PrimusEncoderConfig(
        pretrained=True, pretrained_path=p, input_shape=(16, 16, 16), patch_size=(8, 8, 8), embed_dim=48, depth=1,
        num_heads=2,
    ),
}  # fmt: skip


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize(("name", "style"), [("w.pth", "plain"), ("w.bin", "plain"), ("w.pt", "zip")])
def test_no_family_runs_code_from_a_weights_file(family: str, name: str, style: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = write_payload(tmp_path / name, marker, style)
    with pytest.raises(ValueError, match=rf"model.encoder.pretrained_path: '.*{name}' was refused"):
        build_encoder(ModelConfig(encoder=FAMILIES[family](path)))
    assert not marker.exists()


def test_transformer_model_directory_with_a_trap_is_refused(tmp_path: Path) -> None:
    from transformers import AutoModel, ViTConfig

    folder = tmp_path / "tiny_vit"
    config = ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                       image_size=32, patch_size=8)  # fmt: skip
    AutoModel.from_config(config).save_pretrained(folder)
    for weights in folder.glob("*.safetensors"):
        weights.unlink()  # the trap below is the folder's only weights file
    marker = tmp_path / "ran"
    write_payload(folder / "pytorch_model.bin", marker, "zip")
    with pytest.raises(ValueError, match="its weights file holds pickled Python objects.*safe_serialization=True"):
        build_encoder(ModelConfig(encoder=TransformerEncoderConfig(type=str(folder), pretrained=True)))
    assert not marker.exists()
    marker_2 = tmp_path / "ran_2"
    trap = write_payload(tmp_path / "w.bin", marker_2, "plain")
    vit = TransformerEncoderConfig(type=str(folder), pretrained=True, pretrained_path=trap)
    with pytest.raises(ValueError, match="was refused"):
        build_encoder(ModelConfig(encoder=vit))
    assert not marker_2.exists()


@pytest.fixture(scope="module")
def small_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("weights_safety") / "ds"
    for split, count in (("train", 8), ("val", 3), ("test", 3)):
        for label, name in enumerate("ab"):
            write_images(root / "images" / split / name, label, count, prefix=split)
    return root


def _train_args(root: Path, experiments: Path, group: str, *extra: str) -> list[str]:
    args = generic_args(root, experiments, 2, "--group", group, "--training.epochs", "1", *extra)
    args.remove("--model.encoder.no_pretrained")
    return args


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("trap.pth", None, "was refused"),
        ("random.pth", bytes(range(256)) * 2, "was refused|cannot read"),
        ("fake.safetensors", b"not a safetensors file at all", "is not a readable .safetensors file"),
    ],
)
def test_glovita_train_refuses_bad_weights_in_one_line(
    name: str, content: bytes | None, expected: str, small_images: Path, tmp_path: Path, capsys
) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / name
    if content is None:
        write_payload(path, marker, "plain")
    else:
        path.write_bytes(content)
    with pytest.raises(SystemExit) as exit_info:
        train_main(_train_args(small_images, tmp_path / "exp", "bad", "--model.encoder.pretrained_path", str(path)))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    first = err.splitlines()[0]
    assert first.startswith("glovita_train: error: model.encoder.pretrained_path:") and str(path) in first
    assert re.search(expected, first) and "--model.encoder.pretrained_path" in first
    assert "Traceback" not in err
    assert not marker.exists()


def test_infer_and_extract_never_read_the_pretrained_file(small_images: Path, tmp_path: Path) -> None:
    """A run trained from a weights file is restored from its checkpoint alone: swapping that file for a trap
    runs nothing, and deleting it changes nothing."""
    import json

    import timm

    weights = tmp_path / "start.pth"
    torch.save(timm.create_model("test_resnet", num_classes=0).state_dict(), weights)
    experiments = tmp_path / "exp"
    train_main(_train_args(small_images, experiments, "src", "--model.encoder.pretrained_path", str(weights)))
    run = experiments / "generic_image_dataset" / "src" / "0"
    checkpoint = run / "checkpoints" / "best.pt"
    marker = tmp_path / "ran"
    write_payload(weights, marker, "plain")
    infer_main(["--checkpoint_path", str(checkpoint), "--output_dir", str(tmp_path / "pred"),
                "--dataloading.num_workers", "0"])  # fmt: skip
    extract_main(["--checkpoint_path", str(checkpoint), "--output_dir", str(tmp_path / "feat"), "--split", "test",
                  "--dataloading.num_workers", "0"])  # fmt: skip
    assert not marker.exists()
    weights.unlink()
    infer_main(["--checkpoint_path", str(checkpoint), "--output_dir", str(tmp_path / "pred2"),
                "--dataloading.num_workers", "0"])  # fmt: skip
    expected = json.loads((run / "test_metrics.json").read_text())
    metrics = json.loads((tmp_path / "pred2" / "metrics.json").read_text())
    assert metrics["accuracy"] == pytest.approx(expected["test_accuracy"])
    assert len(list((tmp_path / "feat").glob("*.h5"))) == 1
