"""The webhook fuzzer in scripts/ keeps to its bounds and reports what it saw."""

from __future__ import annotations

import re
import subprocess
import sys

from .conftest import ROOT


def test_fuzzer_sends_at_most_its_count_to_its_own_local_aviso_and_sees_no_5xx(tmp_path):
    result = subprocess.run([sys.executable, "scripts/fuzz_webhook.py", "--count", "300", "--seed", "7"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "requests sent: 300 in " in result.stdout, result.stderr
    assert int(re.search(r"5xx seen: (\d+)", result.stdout).group(1)) == 0, result.stdout
    assert result.returncode == 0
    answered = sum(int(n) for n in re.findall(r"\d{3}: (\d+)", result.stdout.split("answers: ")[1].splitlines()[0]))
    assert answered == 300
