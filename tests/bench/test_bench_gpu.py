"""bench/bench_gpu.py stays runnable: its CPU smoke test trains both loops and reports both throughputs."""

import json
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_bench_gpu_tiny_runs_both_loops_on_cpu(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    script = ROOT / "bench" / "bench_gpu.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--tiny"])
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    report = json.loads(out.strip().splitlines()[-1])
    assert report["device"] == "cpu" and report["args"]["precision"] == "bf16-mixed"
    for name in ("glovita", "bare"):
        assert len(report[name]["rate"]) == 1 and report[name]["rate"][0] > 0
    assert report["ratio"] == report["glovita"]["rate"][0] / report["bare"]["rate"][0]
    assert "ratio glovita/bare: throughput" in out
