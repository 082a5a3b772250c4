"""The cases benchmarks run end to end on a handful of cases (their figures come from big runs;
this only guards their machinery: a baseline that no longer fits the activities fails here)."""

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


def test_a_few_cases_under_load_through_both_workflows(database_url: str) -> None:
    env = {**os.environ, "TEST_DATABASE_URL": database_url}
    run = subprocess.run(
        [sys.executable, "benchmarks/cases_load.py", "--cases", "6", "--concurrency", "3",
         "--rounds", "1", "--warmup", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert "cases/s" in run.stdout
    assert "minimal baseline   recovered" in run.stdout
    for role in ("worker (and client)", "Temporal server", "PostgreSQL", "stand-ins", "total"):
        assert role in run.stdout, role


def test_the_ledger_writes_both_ways(database_url: str) -> None:
    env = {**os.environ, "TEST_DATABASE_URL": database_url}
    run = subprocess.run(
        [sys.executable, "benchmarks/ledger_writes.py", "--messages", "5", "--rounds", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    for row in ("wall ms", "worker CPU ms"):
        assert row in run.stdout, row
