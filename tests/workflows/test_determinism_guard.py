"""The lint guard that stands in for Temporal's sandbox (DunningWorkflow runs unsandboxed):
ruff's banned APIs fire in workflows/ and policies/, and nowhere else."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUFF = Path(sys.executable).parent / "ruff"

NONDETERMINISTIC = """\
import random
import time
import uuid
from datetime import UTC, date, datetime
from os import environ


def decide() -> object:
    return (
        datetime.now(UTC),
        date.today(),
        time.time(),
        uuid.uuid4(),
        random.random(),
        environ.get("X"),
    )
"""


def banned(tmp_path: Path, folder: str) -> list[str]:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / folder).mkdir()
    (tmp_path / folder / "sample.py").write_text(NONDETERMINISTIC)
    out = subprocess.run(
        [str(RUFF), "check", "--select", "TID251", "--output-format", "json", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    return [hit["message"] for hit in json.loads(out.stdout)]


def test_workflow_code_may_not_read_the_clock_chance_or_environment(tmp_path: Path) -> None:
    messages = banned(tmp_path, "workflows")
    for name in (
        "datetime.datetime.now",
        "datetime.date.today",
        "time.time",
        "uuid.uuid4",
        "random",
        "os.environ",
    ):
        assert any(f"`{name}` is banned" in m for m in messages), (name, messages)


def test_policies_are_held_to_the_same_rule(tmp_path: Path) -> None:
    assert len(banned(tmp_path, "policies")) >= 6


def test_activities_may(tmp_path: Path) -> None:
    assert banned(tmp_path, "activities") == []
