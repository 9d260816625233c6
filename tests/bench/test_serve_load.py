"""bench/serve_load.py against a real server, briefly: good and hostile uploads mixed, every answer as it
should be (200 for the good, 4xx for the bad), and the figures written."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[2] / "bench" / "serve_load.py"

pytest.importorskip("fastapi")


def test_a_short_load_gets_every_answer_right(mnist_runs):
    done = subprocess.run([sys.executable, str(SCRIPT), str(mnist_runs[0].path), "--requests", "60",
                           "--concurrency", "4", "--bad-every", "3", "--warmup", "10", "--name", "test_serve_load"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    figures = json.loads((SCRIPT.parent / "results" / "test_serve_load.json").read_text())
    assert figures["requests"] == 60 and figures["bad"] == 20 and figures["errors"] == 0
    assert figures["still_serving"] and figures["p99_ms"] > 0 and "| requests_per_s |" in done.stdout
