"""train.log: every run keeps what its console showed, as plain text in its run directory (the run directory first,
one line per epoch, the test metrics); a resumed run appends after a separator."""

import re

from tests.conftest import ObservedRun


def test_train_log_holds_the_console_lines_and_grows_on_resume(observed_run: ObservedRun) -> None:
    run_dir, shown, lines = observed_run.run_dir, observed_run.console, observed_run.first_log
    assert f"Run directory: {run_dir}" in lines
    summary = ("test_", "wall time", "best.pt")  # the summary table's rows, shown on stdout
    assert all(line in shown for line in lines if not line.startswith(summary))
    epochs = [line for line in lines if re.match(r"epoch \d/2 ", line)]
    assert len(epochs) == 2 and all(line in shown for line in epochs)
    assert any(line.startswith("test_accuracy ") for line in lines)
    assert any(re.fullmatch(r"best\.pt epoch [12] \(val_accuracy 0\.\d{4}\)", line) for line in lines)
    assert not any("\x1b" in line for line in lines)  # plain text, no terminal control characters
    again = (run_dir / "train.log").read_text().splitlines()  # after the resume to 3 epochs
    assert again[: len(lines)] == lines and re.fullmatch(r"--- \d{4}-\d\d-\d\dT[\d:]+ ---", again[len(lines)])
    resumed = [line for line in again if re.match(r"epoch \d/3 ", line)]
    assert len(resumed) == 1 and resumed[0].startswith("epoch 3/3")  # the resumed run trained epoch 3 only


def test_without_a_terminal_a_plain_progress_line_comes_on_time(capsys, monkeypatch) -> None:
    """stderr is not a terminal here (a log file, a cluster job): no bar, but a plain line with the count and the
    time left whenever PLAIN_LINE_SECONDS have passed (0 here), never at the last step (the epoch line follows)."""
    from glovita.runtime import progress

    monkeypatch.setattr(progress, "PLAIN_LINE_SECONDS", 0.0)
    with progress.progress_bar("epoch 1/2", 4) as bar:
        for step in range(4):
            assert bar.active and bar.due(last=step == 3) == (step < 3)
            bar.update(1, f"loss {1.0 / (step + 1):.4f}")
    lines = capsys.readouterr().err.splitlines()
    expected = [["epoch 1/2", f"{k}/4", f"loss {1.0 / k:.4f}"] for k in (1, 2, 3)]
    assert [line.split("  ")[:3] for line in lines] == expected
    assert all(re.search(r"~\d+m \d\ds left$", line) for line in lines)
    monkeypatch.setattr(progress, "PLAIN_LINE_SECONDS", 3600.0)
    with progress.progress_bar("epoch 2/2", 4) as bar:
        for _ in range(4):
            bar.update(1)
    assert capsys.readouterr().err == ""  # a short epoch prints nothing but its own line
