"""bench/bench_gpu.py stays runnable: its CPU smoke test trains both loops and reports both throughputs."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_gpu_tiny_runs_both_loops_on_cpu() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_gpu.py"), "--tiny"], capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["device"] == "cpu" and report["args"]["precision"] == "bf16-mixed"
    for name in ("glovita", "bare"):
        assert len(report[name]["rate"]) == 1 and report[name]["rate"][0] > 0
    assert report["ratio"] == report["glovita"]["rate"][0] / report["bare"]["rate"][0]
    assert "ratio glovita/bare: throughput" in result.stdout
