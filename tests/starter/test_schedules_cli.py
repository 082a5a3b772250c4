"""`dunning schedules apply` and the worker's `ensure_schedules`: the card-expiry scan's
Temporal Schedule, created once and updated in place (the dev server: the time-skipping test
server has no schedules)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import Client, ScheduleOverlapPolicy
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from models.predunning import SCAN_SCHEDULE_ID, SCAN_WORKFLOW
from models.predunning_schedule import ScheduleSettingError, ensure_schedules, scan_schedule
from models.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def client(dev_env: WorkflowEnvironment) -> AsyncIterator[Client]:
    """The session's dev server, without the schedule before and after the test."""
    await _delete(dev_env.client)
    yield dev_env.client
    await _delete(dev_env.client)


async def _delete(client: Client) -> None:
    try:
        await client.get_schedule_handle(SCAN_SCHEDULE_ID).delete()
    except RPCError:
        pass  # not there


async def _dunning(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    # The command module registers itself on import, as starter/cli/__init__.py does it.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import starter.cli.schedules; from starter.cli import main; main()",
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


def _env(client: Client, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "TEMPORAL_NAMESPACE": client.namespace,
        **extra,
    }


async def test_apply_twice_creates_then_updates_one_schedule(client: Client) -> None:
    env = _env(
        client,
        DUNNING_CARD_EXPIRY_SCAN_AT="07:30",
        DUNNING_CARD_EXPIRY_SCAN_TIMEZONE="Europe/Madrid",
    )
    first = await _dunning(env, "schedules", "apply")
    second = await _dunning({**env, "DUNNING_CARD_EXPIRY_SCAN_AT": "08:15"}, "schedules", "apply")

    assert first[0] == 0, first[2]
    assert "created" in first[1] and "07:30 Europe/Madrid" in first[1]
    assert second[0] == 0, second[2]
    assert "updated" in second[1]
    described = await client.get_schedule_handle(SCAN_SCHEDULE_ID).describe()
    spec = described.schedule.spec
    (calendar,) = spec.calendars
    assert (calendar.hour[0].start, calendar.minute[0].start) == (8, 15)
    assert spec.time_zone_name == "Europe/Madrid"
    assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    action = described.schedule.action
    assert getattr(action, "workflow", None) == SCAN_WORKFLOW
    ids = [s.id async for s in await client.list_schedules()]
    assert ids.count(SCAN_SCHEDULE_ID) == 1


async def test_ensure_keeps_a_paused_schedule_paused(client: Client, settings: Settings) -> None:
    assert await ensure_schedules(client, settings) == "created"
    handle = client.get_schedule_handle(SCAN_SCHEDULE_ID)
    await handle.pause(note="maintenance")
    assert await ensure_schedules(client, settings) == "updated"
    state = (await handle.describe()).schedule.state
    assert state.paused and state.note == "maintenance"


@pytest.mark.parametrize(
    ("setting", "value"),
    [("DUNNING_CARD_EXPIRY_SCAN_AT", "9am"), ("DUNNING_CARD_EXPIRY_SCAN_TIMEZONE", "Mars/Base")],
)
async def test_a_bad_setting_is_named_and_exits_1(setting: str, value: str) -> None:
    # Checked before connecting: no server is needed to be told.
    code, _, err = await _dunning({**os.environ, setting: value}, "schedules", "apply")
    assert code == 1
    assert setting in err
    with pytest.raises(ScheduleSettingError, match=setting):
        scan_schedule(Settings(_env_file=None, **{setting.lower(): value}))  # type: ignore[call-arg, arg-type]
