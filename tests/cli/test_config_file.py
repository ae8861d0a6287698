"""--config FILE, --preset NAME and --print_config: a saved or written config is the base that flags override."""

import json
from pathlib import Path

import pytest

from glovita.cli.train import main, parse_root_config
from glovita.configs.model import TorchvisionEncoderConfig
from glovita.configs.presets import PRESETS
from tests.conftest import generic_args, train_cli_without_torch


def test_a_run_repeats_exactly_from_its_config_json(subdirs_dataset: Path, tmp_path: Path) -> None:
    experiments = tmp_path / "exp"
    main(generic_args(subdirs_dataset, experiments, 3, "--group", "first", "--training.epochs", "2",
                      "--add_log.note", "baseline"))  # fmt: skip
    first = experiments / "generic_image_dataset" / "first" / "0"
    main(["--config", str(first / "config.json"), "--group", "again"])
    again = experiments / "generic_image_dataset" / "again" / "0"
    assert (again / "test_metrics.json").read_bytes() == (first / "test_metrics.json").read_bytes()
    saved = json.loads((again / "config.json").read_text())
    assert saved["add_log"] == {"note": "baseline"} and saved["group"] == "again"  # add_log kept from the file
    info = json.loads((again / "runtime_info.json").read_text())
    assert info["config_file"] == str((first / "config.json").resolve())


def test_a_partial_yaml_file_is_the_base_and_flags_override_it(tmp_path: Path) -> None:
    config = tmp_path / "my.yaml"
    config.write_text("training:\n  epochs: 1\noptimizer:\n  lr: 0.01\n  weight_decay: 0.1\n")
    cfg = parse_root_config(["--config", str(config), "--optimizer.lr", "3e-4"])
    assert (cfg.training.epochs, cfg.optimizer.lr, cfg.optimizer.weight_decay) == (1, 3e-4, 0.1)
    switched = parse_root_config(["--config", str(config), "--model.encoder.encoder_type", "torchvision"])
    assert isinstance(switched.model.encoder, TorchvisionEncoderConfig) and switched.training.epochs == 1
    other_data = tmp_path / "data.yaml"  # a file that switches a block's class starts that block afresh
    other_data.write_text(f"data:\n  dataset: generic_image_dataset\n  data_root_dir: {tmp_path}\n  num_classes: 2\n")
    assert parse_root_config(["--config", str(other_data)]).data.dataset == "generic_image_dataset"


_LAUGHS = "add_log:\n  a: &a [x, x, x, x, x, x, x, x, x]\n  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" + "".join(
    f"  {c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("bcdef", "cdefg", strict=True)
)
"""Six levels of nine-fold aliases under add_log (9^6 leaves from ~500 bytes): without a bound, minutes and GBs."""


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("training:\n  epochs: 3\n  epoch: 4\n", ".yaml", "training.epoch (line 3): unknown key"),
        ("model:\n  encoder:\n    encoder_type: timmm\n", ".yaml", "model.encoder (line 2): Input tag 'timmm'"),
        ('{"training": {"epochs": "many"}}', ".json", "training.epochs: Input should be a valid integer"),
        ('{"training": {"old_field": 1}}', ".json", "training.old_field: unknown key (a typo, or a field this"),
        ("training: [1, 2\n", ".yaml", "line 2 is not valid YAML"),
        (_LAUGHS, ".yaml", "line 3 repeats a block by reference (YAML alias *a); config files may not use aliases"),
        (
            '{"training": {"epochs": true}}',
            ".json",
            "training.epochs: True is a boolean, but the field takes an integer",
        ),
        (
            '{"dataloading": {"drop_last": "yes"}}',
            ".json",
            "drop_last: 'yes' is a string, but the field takes a boolean",
        ),
        ("training:\n  epochs: 2.0\n", ".yaml", "training.epochs (line 2): 2.0 is a number, but the field takes an"),
    ],
    ids=[
        "yaml-typo",
        "yaml-tag",
        "json-type",
        "json-old-field",
        "yaml-syntax",
        "yaml-billion-laughs",
        "json-bool-for-int",
        "json-string-for-bool",
        "yaml-float-for-int",
    ],  # fmt: skip
)
def test_bad_config_files_name_the_key_and_line(
    content: str, suffix: str, message: str, tmp_path: Path, capsys
) -> None:
    path = tmp_path / f"bad{suffix}"
    path.write_text(content)
    with pytest.raises(SystemExit):
        parse_root_config(["--config", str(path)])
    err = " ".join(capsys.readouterr().err.split())
    assert message in err and str(path) in err


@pytest.mark.parametrize("style", ["json", "yaml"])
def test_print_config_round_trips_through_config(style: str, tmp_path: Path, capsys) -> None:
    args = ["--preset", "cifar10_resnet18", "--optimizer.lr", "0.5", "--add_log.who", "me"]
    with pytest.raises(SystemExit) as done:
        parse_root_config([*args, "--print_config", style])
    assert done.value.code == 0
    saved = tmp_path / f"printed.{style}"
    saved.write_text(capsys.readouterr().out)
    assert parse_root_config(["--config", str(saved)]) == parse_root_config(args)


def test_print_config_does_not_import_torch() -> None:
    result = train_cli_without_torch(["--preset", "digits_quick", "--print_config"])
    assert json.loads(result.stdout)["training"]["epochs"] == 3


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_validates_builds_and_is_overridable(name: str) -> None:
    from glovita.models.factory import build_model

    cfg = parse_root_config(["--preset", name, "--training.epochs", "2"])
    assert cfg.model_copy(update={"training": PRESETS[name].training}) == PRESETS[name]
    assert cfg.training.epochs == 2
    model = build_model(cfg.model, cfg.peft, cfg.data.num_classes, 0.0)
    assert sum(p.numel() for p in model.parameters()) > 0


def test_an_unknown_preset_is_named_with_the_choices(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_root_config(["--preset", "digits_quik"])
    assert "--preset 'digits_quik' is not one of" in capsys.readouterr().err


def test_help_lists_the_presets_and_other_commands_take_them(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--preset NAME" in out and all(name in out for name in PRESETS)
    from glovita.cli.show_augmentations import main as show_main

    with pytest.raises(SystemExit) as printed:
        show_main(["--preset", "cifar10_resnet18", "--print_config"])
    assert printed.value.code == 0
    assert json.loads(capsys.readouterr().out)["data"]["dataset"] == "cifar10"
