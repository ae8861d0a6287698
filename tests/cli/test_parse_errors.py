"""Ten typical command-line mistakes, each answered in one or two lines (`prog: error: ...`) naming the flag and the
fix: no pydantic `[type=...]` text or URL, no tyro box."""

import pytest

from glovita.cli.argv import parse_config
from glovita.cli.train import parse_root_config
from glovita.configs.infer import InferConfig
from glovita.configs.moving_digits import MovingDigitsConfig

MISTAKES = [
    (["--lr", "0.1"], "unknown flag --lr. Did you mean --optimizer.lr?"),
    (["--training.epoch", "4"], "unknown flag --training.epoch. Did you mean --training.epochs?"),
    (["--optimizer.momentum", "0.9"],
     "--optimizer.momentum is an option of optimizer sgd, not of the one chosen: add --optimizer.name sgd."),
    (["--training.epochs", "0"], "--training.epochs 0: must be greater than 0."),
    (["--training.epochs", "abc"], "--training.epochs: 'abc' is not a whole number."),
    (["--optimizer.lr", "-1"], "--optimizer.lr -1.0: must be greater than 0."),
    (["--model.head.dropout", "2"], "--model.head.dropout 2.0: must be less than 1."),
    (["--optimizer.name", "adamm"], "--optimizer.name: 'adamm' is not one of adam, adamw, lbfgs, sgd."),
    (["--data.num_classes", "1"], "data.num_classes=1 but classification needs at least 2 classes. Set "
     "--data.num_classes, or use --data.task Regression --data.subtask regression."),
]  # fmt: skip


def _assert_one_line(err: str, expected: str, prog: str) -> None:
    lines = err.strip().splitlines()
    assert lines[0].startswith(f"{prog}: error: {expected}"), err
    assert len(lines) <= 2 and "[type=" not in err and "pydantic.dev" not in err and "│" not in err


@pytest.mark.parametrize(("args", "expected"), MISTAKES)
def test_a_training_mistake_is_one_line_naming_the_flag(args: list[str], expected: str, capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_root_config(args)
    assert exited.value.code == 2
    _assert_one_line(capsys.readouterr().err, expected, "glovita_train")


def test_other_commands_answer_the_same_way(capsys) -> None:
    with pytest.raises(SystemExit):
        parse_config(InferConfig, [], "glovita_infer", "")
    required = "--checkpoint_path is required (Checkpoint of a GloViTa run"
    _assert_one_line(capsys.readouterr().err, required, "glovita_infer")
    with pytest.raises(SystemExit):
        parse_config(MovingDigitsConfig, ["--num_videos", "4"], "glovita_make_moving_digits", "")
    _assert_one_line(capsys.readouterr().err, "--num_videos 4: must be greater than 4.", "glovita_make_moving_digits")
