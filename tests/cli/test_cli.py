"""Both CLI styles of the spec, negative booleans, --add_log, and fast, torch-free --help."""

import subprocess
import sys

import pytest

from glovita.cli.train import parse_root_config
from glovita.configs.data import Cifar10Config, GenericImageDatasetConfig
from glovita.configs.model import TimmEncoderConfig, TorchvisionEncoderConfig
from tests.conftest import train_cli_without_torch

EXPLICIT = """--data.dataset cifar10 --data.data_root_dir ./data --model.encoder.encoder_type timm
--model.encoder.type resnet50.a1_in1k --model.encoder.no_pretrained --model.head.head_type classification
--peft.method full_finetuning --dataloading.batch_size 128""".split()
SUBCOMMANDS = """--dataloading.batch_size 128 data:cifar10-config --data.data_root_dir ./data
model.encoder:timm-encoder-config --model.encoder.type resnet50.a1_in1k --model.encoder.no_pretrained
model.head:classification-head-config peft:full-finetuning-config""".split()


def test_spec_explicit_style() -> None:
    config = parse_root_config(EXPLICIT)
    assert isinstance(config.data, Cifar10Config)
    assert str(config.data.data_root_dir) == "data"
    assert isinstance(config.model.encoder, TimmEncoderConfig)
    assert config.model.encoder.type == "resnet50.a1_in1k"
    assert config.model.encoder.pretrained is False
    assert config.dataloading.batch_size == 128


def test_both_styles_give_the_same_config() -> None:
    assert parse_root_config(EXPLICIT) == parse_root_config(SUBCOMMANDS)


def test_equals_form_and_hyphenated_flag() -> None:
    config = parse_root_config(["--model.encoder.encoder_type=torchvision", "--training.epochs=3"])
    assert isinstance(config.model.encoder, TorchvisionEncoderConfig)
    assert config.training.epochs == 3


def test_generic_dataset_regression_flags() -> None:
    args = """--data.dataset generic_image_dataset --data.data_root_dir /data/x --data.num_classes 1
    --data.task Regression --data.subtask regression --data.split_source subdirs --data.label_source csv
    --model.head.head_type regression""".split()
    config = parse_root_config(args)
    assert isinstance(config.data, GenericImageDatasetConfig)
    assert (config.data.task, config.data.num_classes, config.model.head.head_type) == ("Regression", 1, "regression")


def test_add_log_is_saved_and_nested() -> None:
    config = parse_root_config(
        [
            "--add_log.comment",
            "scratch baseline",
            "--add_log.dataset_alias",
            "CIFAR10_small",
            "--add_log.notes.phase",
            "warmup",
            "--add_log.n=3",
        ]
    )
    assert config.add_log == {
        "comment": "scratch baseline",
        "dataset_alias": "CIFAR10_small",
        "notes": {"phase": "warmup"},
        "n": 3,
    }
    assert config.model_copy(update={"add_log": {}}) == parse_root_config([])


def test_unknown_tag_names_the_flag_and_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_root_config(["--data.dataset", "cifar11"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--data.dataset" in err and "cifar10, cifar100, digits, generic_image_dataset" in err
    assert "Did you mean 'cifar10'" in err


def test_option_order_does_not_matter() -> None:
    a = parse_root_config(["--training.epochs", "2", "data:cifar10-config", "--data.download"])
    b = parse_root_config(["data:cifar10-config", "--data.download", "--training.epochs", "2"])
    assert a == b and a.data.download is True


def _run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glovita.train", *args], capture_output=True, text=True, timeout=60)


def test_help_lists_the_tree_without_importing_torch() -> None:
    result = train_cli_without_torch(["--help"])
    for expected in ("--training.epochs", "data:generic-image-dataset-config", "model.encoder:timm-encoder-config"):
        assert expected in result.stdout
    top = "\n".join(result.stdout.splitlines()[:40])  # `glovita_train --help | head -40`: the common flags
    dataset = next(line for line in top.splitlines() if "--data.dataset {" in line)
    assert all(name in dataset for name in ("digits", "cifar10", "generic_image_dataset", "precomputed_features"))
    for flag in (
        "--data.data_root_dir",
        "--model.encoder.encoder_type {",
        "--training.epochs INT",
        "--optimizer.lr",
        "--dataloading.batch_size",
        "--training.device",
        "--training.precision {32,bf16-mixed,16-mixed}",
    ):
        assert flag in top, flag
    assert top.index("--data.dataset {") < top.index("--training.epochs INT") < top.index("--training.precision")
    from glovita.configs.root import RootConfig  # docstrings reflowed: no hard breaks inside sentences

    folds = RootConfig.model_fields["folds"].description or ""
    assert "(--folds 0 1 2 sets data.fold for each), then write" in folds and "\n" not in folds
    volumes = " ".join(train_cli_without_torch(["--data.dataset", "generic_volume_dataset", "--help"]).stdout.split())
    policies = volumes.split("--data.augmentation.train_policy {")[1].split("}")[0]
    assert "default_nnunet" in policies and "default_2d_1" not in policies and "randaugment" not in policies


def test_invalid_value_fails_before_training() -> None:
    result = _run(["--training.epochs", "0"])
    assert result.returncode != 0
    assert "epochs" in result.stdout + result.stderr
    assert "greater than 0" in result.stdout + result.stderr
