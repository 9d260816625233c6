"""The fuzzer over the IDX, .npy and picture readers, in a process of its own so that its peak memory is
its own: MNISTLAB_FUZZ_EXAMPLES inputs per reader (20,000 in the long mode)."""

import json
import subprocess
import sys
from pathlib import Path

from hostile import FUZZ_EXAMPLES

FUZZ = Path(__file__).with_name("fuzz.py")


def test_every_fuzzed_input_is_data_or_a_clear_error_within_500_mb():
    out = subprocess.run([sys.executable, str(FUZZ), "--examples", str(FUZZ_EXAMPLES)], capture_output=True,
                         text=True, timeout=1800)
    summary = json.loads(out.stdout)
    for reader in ("idx", "npy", "pictures"):
        tally = summary[reader]
        assert tally["tried"] == FUZZ_EXAMPLES and tally["failures"] == 0, tally["examples"]
        assert tally["valid"] > 0 and tally["errors"] > 0  # both outcomes were reached
    assert summary["peak_rss_mb"] < 500, summary["peak_rss_mb"]
    assert out.returncode == 0
    print("\nfuzz: " + json.dumps({k: v if not isinstance(v, dict) else {n: v[n] for n in ("tried", "valid", "errors",
                                   "failures")} for k, v in summary.items()}))
