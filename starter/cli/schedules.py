"""Schedule commands: `dunning schedules apply`.

Exit codes: 0 created or updated; 1 Temporal unreachable or a bad setting
(DUNNING_CARD_EXPIRY_SCAN_AT / _TIMEZONE); 2 an unknown action (click's usage error).
"""

from __future__ import annotations

from enum import StrEnum

import typer
from rich.text import Text

from starter.cli import UserError, command, console, load_settings, user_errors

PANEL = "Ops"


class Action(StrEnum):
    APPLY = "apply"


@command(rich_help_panel=PANEL)
def schedules(
    action: Action = typer.Argument(..., help="apply: create or update the schedules."),
) -> None:
    """Create the Temporal Schedules, or bring them up to date with the settings.

    `dunning-card-expiry-scan` runs the card-expiry scan daily at
    DUNNING_CARD_EXPIRY_SCAN_AT (HH:MM) in DUNNING_CARD_EXPIRY_SCAN_TIMEZONE, skipping a run
    while the previous one still works. The worker applies it when it starts; run this after
    changing either setting. A paused schedule stays paused.
    """
    import asyncio

    from models.predunning import SCAN_SCHEDULE_ID
    from models.predunning_schedule import ScheduleSettingError, ensure_schedules, scan_schedule
    from models.temporal import connect

    with user_errors():
        settings = load_settings()
        try:
            scan_schedule(settings)  # a bad setting is named before connecting
        except ScheduleSettingError as err:
            raise UserError(str(err)) from None

    async def main() -> str:
        client = await connect(settings)
        return await ensure_schedules(client, settings)

    with user_errors(settings.temporal_address):
        done = asyncio.run(main())
    when = (
        f"daily at {settings.dunning_card_expiry_scan_at.strip()} "
        f"{settings.dunning_card_expiry_scan_timezone.strip()}"
    )
    console.print(
        Text(f"Schedule {SCAN_SCHEDULE_ID} {done}: card-expiry scan {when}."), soft_wrap=True
    )
