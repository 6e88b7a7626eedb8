"""benchmarks/bench_gpu.py runs end to end here: without a GPU it says so and runs reduced sizes on NumPy."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from otcdesk.pricing_engine.backend import cupy_status

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.mark.skipif(cupy_status()[0], reason="a GPU is present: the full script is the device check")
def test_bench_gpu_reduced_mode_without_a_gpu():
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "bench_gpu.py"), "--paths", "4000",
                          "--cpu-paths", "4000", "--trades", "12", "--book-paths", "200"],
                         env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout
    assert text.startswith("no GPU (")
    for product in ("barrier", "snowball"):
        for dtype in ("float32", "float64"):
            assert f"{product} {dtype}: numpy (no GPU) / CPU fused" in text
    assert text.count("prices within 3 stderr: True") == 4, text
    assert "book revaluation: 12 trades" in text and "numpy  wall" in text
