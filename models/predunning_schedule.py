"""The Temporal Schedule of the daily card-expiry scan, created or brought up to date at once.

The worker calls `ensure_schedules` when it starts and `dunning schedules apply` calls it on
demand: created when missing, otherwise updated to the current settings (time, zone, task
queue), keeping its state, so an operator's pause survives a deploy.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from models.predunning import SCAN_SCHEDULE_ID, SCAN_WORKFLOW, ScanInput
from models.settings import Settings

_HH_MM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
# A scan that has not finished by the next day's is in trouble; it never runs twice at once.
SCAN_TIMEOUT = timedelta(hours=23)


class ScheduleSettingError(ValueError):
    """DUNNING_CARD_EXPIRY_SCAN_AT or _TIMEZONE is not usable: the message names it."""


def scan_schedule(settings: Settings) -> Schedule:
    match = _HH_MM.match(settings.dunning_card_expiry_scan_at.strip())
    if match is None:
        raise ScheduleSettingError(
            f"DUNNING_CARD_EXPIRY_SCAN_AT must be HH:MM (24-hour), not "
            f"{settings.dunning_card_expiry_scan_at!r}"
        )
    zone = settings.dunning_card_expiry_scan_timezone.strip()
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleSettingError(
            f"DUNNING_CARD_EXPIRY_SCAN_TIMEZONE must be an IANA time zone, not {zone!r}"
        ) from None
    hour, minute = int(match.group(1)), int(match.group(2))
    return Schedule(
        action=ScheduleActionStartWorkflow(
            SCAN_WORKFLOW,
            ScanInput(),
            # Temporal appends the scheduled time to this id for each run.
            id="card-expiry-scan",
            task_queue=settings.dunning_task_queue,
            execution_timeout=SCAN_TIMEOUT,
            static_summary="Daily scan for cards that expire before renewal",
        ),
        spec=ScheduleSpec(
            calendars=[
                ScheduleCalendarSpec(
                    hour=[ScheduleRange(hour)],
                    minute=[ScheduleRange(minute)],
                    second=[ScheduleRange(0)],
                    comment=f"daily at {hour:02d}:{minute:02d} {zone}",
                )
            ],
            time_zone_name=zone,
        ),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_schedules(client: Client, settings: Settings) -> Literal["created", "updated"]:
    """Create `dunning-card-expiry-scan`, or update it to `settings` if it exists."""
    wanted = scan_schedule(settings)
    try:
        await client.create_schedule(SCAN_SCHEDULE_ID, wanted)
        return "created"
    except ScheduleAlreadyRunningError:
        pass

    def replace(current: ScheduleUpdateInput) -> ScheduleUpdate:
        wanted.state = current.description.schedule.state
        return ScheduleUpdate(schedule=wanted)

    await client.get_schedule_handle(SCAN_SCHEDULE_ID).update(replace)
    return "updated"
