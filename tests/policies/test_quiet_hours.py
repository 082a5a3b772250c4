"""Quiet hours: the next instant a message may go out, in the customer's zone, DST included."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from policies.customer_schema import QuietHours
from policies.quiet_hours import next_send_at

NIGHT = QuietHours()  # 21:00-08:00


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_daytime_sends_now_and_no_window_always_sends() -> None:
    noon = utc("2026-06-10T10:00")  # 12:00 in Madrid
    assert next_send_at(noon, NIGHT, "Europe/Madrid") == noon
    assert next_send_at(utc("2026-06-10T01:00"), None, "Europe/Madrid") == utc("2026-06-10T01:00")


def test_evening_and_small_hours_wait_for_eight_local() -> None:
    evening = utc("2026-06-10T20:30")  # 22:30 CEST
    assert next_send_at(evening, NIGHT, "Europe/Madrid") == utc("2026-06-11T06:00")
    small_hours = utc("2026-06-11T01:00")  # 03:00 CEST
    assert next_send_at(small_hours, NIGHT, "Europe/Madrid") == utc("2026-06-11T06:00")


def test_another_zone_than_the_policy_is_the_customers() -> None:
    # 14:00 UTC is day in Madrid but 23:00 in Tokyo: the Tokyo customer hears at 08:00 JST.
    at = utc("2026-06-10T14:00")
    assert next_send_at(at, NIGHT, "Asia/Tokyo") == utc("2026-06-10T23:00")
    assert next_send_at(at, NIGHT, None) == at  # the policy's zone (UTC): daytime


def test_across_daylight_saving_changes_eight_local_stays_eight_local() -> None:
    # New York springs forward on 2027-03-14 and falls back on 2026-11-01.
    spring = next_send_at(utc("2027-03-14T04:00"), NIGHT, "America/New_York")  # 23:00 EST
    assert spring == utc("2027-03-14T12:00")  # 08:00 EDT, not 13:00
    autumn = next_send_at(utc("2026-11-01T04:30"), NIGHT, "America/New_York")  # 00:30 EDT
    assert autumn == utc("2026-11-01T13:00")  # 08:00 EST, not 12:00
    assert spring.astimezone(ZoneInfo("America/New_York")).hour == 8


def test_an_unknown_zone_falls_back_to_the_policy_zone() -> None:
    quiet = QuietHours(timezone="Europe/Madrid")
    at = utc("2026-06-10T21:00")  # 23:00 CEST
    assert next_send_at(at, quiet, "Mars/Olympus") == utc("2026-06-11T06:00")


@given(
    moment=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2028, 12, 31)),
    zone=st.sampled_from(["Europe/Madrid", "America/New_York", "Australia/Sydney", "UTC"]),
)
def test_never_sends_inside_the_window_and_never_waits_past_one_night(
    moment: datetime, zone: str
) -> None:
    now = moment.replace(tzinfo=UTC)
    at = next_send_at(now, NIGHT, zone)
    local = at.astimezone(ZoneInfo(zone)).time()
    assert at >= now and at - now <= timedelta(hours=12)
    assert not (local >= time(21) or local < time(8))
