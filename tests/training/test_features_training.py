"""Training on precomputed features through the CLI: the spec's commands, MIL heads learning, clear errors."""

import json
from pathlib import Path

import pytest

from glovita.cli.train import main
from tests.conftest import feature_args as _feature_args


def _test_metrics(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "exp" / "precomputed_features" / "g" / "0" / "test_metrics.json").read_text())


@pytest.mark.parametrize(
    ("layout", "head"),
    [
        ("instances", ["--model.head.head_type", "classification", "--optimizer.lr", "0.05"]),
        ("ptr", ["--model.head.head_type", "clam", "--model.head.variant", "sb", "--model.head.instance_eval"]),
        ("lengths", ["--model.head.head_type", "clam", "--model.head.variant", "mb", "--model.head.instance_eval"]),
        ("fixed", ["--model.head.head_type", "abmil"]),
    ],
)
def test_feature_heads_learn(tmp_path: Path, layout: str, head: list[str]) -> None:
    main(_feature_args(tmp_path, layout, head))
    assert _test_metrics(tmp_path)["test_auroc"] >= 0.9


def test_bag_file_on_a_vector_head_is_refused(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(_feature_args(tmp_path, "ptr", ["--model.head.head_type", "classification"]))
    err = capsys.readouterr().err
    assert "model.head.head_type='classification' cannot train on" in err
    assert "train.h5' (64 variable-size bags over" in err and "clam or abmil" in err


def test_instance_file_on_clam_is_refused(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(_feature_args(tmp_path, "instances", ["--model.head.head_type", "clam"]))
    assert "model.head.head_type='clam' cannot train on" in capsys.readouterr().err


def test_feature_dim_mismatch_says_the_stored_dim(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit):
        main(_feature_args(tmp_path, "instances", ["--model.head.head_type", "classification"], dim=1024))
    err = capsys.readouterr().err
    assert "model.encoder.feature_dim=1024 but" in err and "has dim 8. Set --model.encoder.feature_dim 8" in err


def test_image_dataset_with_precomputed_encoder_is_refused(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--model.encoder.encoder_type", "precomputed", "--model.encoder.feature_dim", "8"])
    err = capsys.readouterr().err  # tyro prints validation errors in a wrapped box
    assert "go together" in err and "precomputed_features" in err
