"""`dunning` exits with its documented code every time, as a real process (issue 8, item 1).

Before the fix, about one run in ten of a command that connected to Temporal printed its
answer and then aborted at interpreter exit with `Fatal Python error: PyGILState_Release`
(exit 134): the SDK's runtime threads outlived the interpreter.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from starter.cli.support import EXIT_NOT_FOUND

ROOT = Path(__file__).resolve().parents[2]
# 50 runs per command, four at a time (each is a fresh interpreter that imports temporalio).
RUNS = 50
PARALLEL = 4


async def _dunning(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from starter.cli import main; main()",
        *args,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    ("args", "code", "runs"),
    [
        (["status", "in_no_such_invoice", "--json"], EXIT_NOT_FOUND, RUNS),
        (["list", "--json", "--status", "active"], 0, RUNS),
        (
            ["grace", "in_no_such_invoice", "--days", "3", "--reason", "r", "--by", "a"],
            EXIT_NOT_FOUND,
            RUNS,
        ),
    ],
    ids=["status-missing", "list", "grace-refused"],
)
async def test_every_run_exits_with_the_documented_code(
    dev_env: WorkflowEnvironment, args: list[str], code: int, runs: int
) -> None:
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": dev_env.client.namespace,
    }
    gate = asyncio.Semaphore(PARALLEL)

    async def one() -> tuple[int, str, str]:
        async with gate:
            return await _dunning(env, *args)

    results = await asyncio.gather(*(one() for _ in range(runs)))
    crashes = [err for _, _, err in results if "Fatal Python error" in err]
    assert not crashes, crashes[0]
    codes = [c for c, _, _ in results]
    assert codes == [code] * runs, [err for c, _, err in results if c != code]
    if code == 0:
        assert all(out.lstrip().startswith("[") for _, out, _ in results)  # the JSON got out


async def test_a_usage_error_keeps_click_code_2() -> None:
    code, _, err = await _dunning(dict(os.environ), "grace", "in_x", "--days", "many")
    assert code == 2
    assert "Fatal Python error" not in err
