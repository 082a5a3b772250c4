"""The cases benchmark runs end to end on a handful of cases (its figures come from big runs;
this only guards its machinery: a baseline that no longer fits the activities fails here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_three_cases_through_both_workflows(database_url: str) -> None:
    env = {**os.environ, "TEST_DATABASE_URL": database_url, "DUNNING_QUIET_HOURS": "off"}
    run = subprocess.run(
        [sys.executable, "benchmarks/cases.py", "--cases", "3", "--warmup", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert "history events/case (all)" in run.stdout
    assert "minimal baseline   recovered" in run.stdout
