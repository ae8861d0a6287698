"""End to end on the bundled digits: fine-tuning from an earlier run's checkpoint beats training from scratch,
and a LoRA run is rebuilt by glovita_infer and glovita_extract_features and exported merged."""

import json
from pathlib import Path

import pytest
import torch

from glovita.cli.extract_features import main as extract
from glovita.cli.infer import main as infer
from glovita.cli.train import main as train

TINY = [
    "--data.data_root_dir", "DIGITS", "--model.encoder.type", "test_resnet", "--dataloading.num_workers", "0",
    "--dataloading.batch_size", "32", "--optimizer.lr", "3e-3",
]  # fmt: skip


@pytest.fixture(scope="module")
def digits_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from glovita.datasets.digits import prepare_digits

    root = tmp_path_factory.mktemp("digits") / "digits"
    prepare_digits(root)
    splits_file = root / "splits.json"  # every other id of each split: the runs compare, they need not excel
    splits = json.loads(splits_file.read_text())
    splits_file.write_text(json.dumps({split: sorted(ids)[::2] for split, ids in splits.items()}))
    return root


def _args(digits: Path, experiments: Path, group: str, *extra: str) -> list[str]:
    flags = [str(digits) if flag == "DIGITS" else flag for flag in TINY]
    return [*flags, "--experiments_dir", str(experiments), "--group", group, *extra]


def _first_val_accuracy(run_dir: Path) -> float:
    return json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])["val_accuracy"]


def test_fine_tuning_from_a_glovita_checkpoint_starts_better(digits_root: Path, tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    train(_args(digits_root, exp, "base", "--model.encoder.no_pretrained", "--training.epochs", "4"))
    best = exp / "digits" / "base" / "0" / "checkpoints" / "best.pt"
    one_epoch = ["--training.epochs", "1", "--optimizer.lr", "1e-3"]
    train(_args(digits_root, exp, "scratch", "--model.encoder.no_pretrained", *one_epoch))
    train(_args(digits_root, exp, "finetuned", "--model.encoder.pretrained_path", str(best), *one_epoch))
    scratch = _first_val_accuracy(exp / "digits" / "scratch" / "0")
    finetuned = _first_val_accuracy(exp / "digits" / "finetuned" / "0")
    assert finetuned > scratch + 0.1, (finetuned, scratch)


def test_lora_run_is_rebuilt_for_inference_extraction_and_merged(digits_root: Path, tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    train(
        _args(digits_root, exp, "lora", "--model.encoder.no_pretrained", "--training.epochs", "2",
              "--peft.method", "lora", "--peft.rank", "4")
    )  # fmt: skip
    run_dir = exp / "digits" / "lora" / "0"
    resolved = json.loads((run_dir / "resolved_config.json").read_text())
    assert resolved["parameters"]["trainable"] < resolved["parameters"]["total"] / 2
    infer(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path / "pred"),
           "--dataloading.num_workers", "0"])  # fmt: skip
    predicted = json.loads((tmp_path / "pred" / "metrics.json").read_text())
    tested = json.loads((run_dir / "test_metrics.json").read_text())
    assert predicted["accuracy"] == pytest.approx(tested["test_accuracy"])

    extract(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--output_dir", str(tmp_path / "feat"),
             "--split", "test", "--dataloading.num_workers", "0"])  # fmt: skip
    (features,) = (tmp_path / "feat").glob("*.h5")
    import h5py

    with h5py.File(features) as handle:
        test_ids = json.loads((digits_root / "splits.json").read_text())["test"]
        assert handle["features"].shape[0] == len(test_ids) == predicted["num_samples"]

    from safetensors.torch import load_file

    from glovita.cli.export import main as export  # merged weights, checked against the LoRA model by the export

    export(["--checkpoint_path", str(run_dir / "checkpoints" / "best.pt"), "--format", "safetensors",
            "--output_dir", str(tmp_path / "exported"), "--verify_samples", "16"])  # fmt: skip
    record = json.loads((tmp_path / "exported" / "preprocessing.json").read_text())
    assert record["adapters_merged"] and record["verification"]["max_abs_logit_difference"] < 1e-4
    assert not any("lora_" in key for key in load_file(str(tmp_path / "exported" / "model.safetensors")))
    assert json.loads((tmp_path / "exported" / "config.json").read_text())["peft"]["method"] == "full_finetuning"

    merged = torch.load(run_dir / "checkpoints" / "best_merged.pt", weights_only=True)
    assert not any("lora_" in key or "base_layer" in key for key in merged["model"])
    from glovita.configs.model import ModelConfig, TimmEncoderConfig
    from glovita.configs.peft import FullFinetuningConfig
    from glovita.models.factory import build_model

    plain = build_model(ModelConfig(encoder=TimmEncoderConfig(type="test_resnet", pretrained=False)),
                        FullFinetuningConfig(), 10, 0.0)  # fmt: skip
    plain.load_state_dict(merged["model"])  # strict: every key of a plain model, nothing else
