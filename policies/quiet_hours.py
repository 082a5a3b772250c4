"""When a message may go out: never inside the customer's local night.

Pure: given a UTC instant, an IANA zone and the window, the next UTC instant at which sending
is allowed. Computed from the zone's rules for that very day, so a daylight-saving change
moves the wall-clock hour, not the send: 08:00 local is 08:00 local on both sides of it, and a
window end inside a skipped hour is read with the offset before the change (PEP 495).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from policies.customer_schema import QuietHours


def zone(name: str | None, fallback: str) -> ZoneInfo:
    for candidate in (name, fallback, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def _inside(local: time, start: time, end: time) -> bool:
    if start == end:
        return False  # an empty window
    if start < end:
        return start <= local < end
    return local >= start or local < end  # the window spans midnight


def next_send_at(now: datetime, quiet: QuietHours | None, timezone: str | None) -> datetime:
    """`now` when sending is allowed now, else the end of the quiet window, in UTC."""
    if quiet is None:
        return now
    tz = zone(timezone, quiet.timezone)
    local = now.astimezone(tz)
    if not _inside(local.time().replace(tzinfo=None), quiet.start, quiet.end):
        return now
    day = local.date()
    if quiet.start >= quiet.end and local.time().replace(tzinfo=None) >= quiet.start:
        day += timedelta(days=1)  # evening: the window ends tomorrow morning
    wall = datetime.combine(day, quiet.end, tzinfo=tz)
    # fold=0: the first of a repeated hour (fall back), the earlier offset in a skipped one.
    return max(wall.astimezone(UTC), now)
