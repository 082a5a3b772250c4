"""Paydays: when a customer's account is most likely to hold the money for a retry.

Many employers pay on the 1st and the 15th, or on the last business day of the month. A step
with `payday: {within: 5d}` moves its charge to the next such day when one comes within that
bound (policies/engine.py). Pure: the public holidays are the `holidays` package's static data.

The rule, read on the calendar date of `after` (the engine's clock is UTC):
- business day: Monday to Friday, and not a public holiday (observed days included: banks close
  on them) of the customer's country; an unknown or missing country counts weekends only;
- the 1st and the 15th, when not business days, move to the *next* business day: salaries
  paid early (the Friday before) or late (the Monday after) have both arrived by then, whereas
  a charge on the Friday before would miss the employers that pay late;
- the last business day of the month is the last weekday that is not a holiday.
The payday keeps the time of day of `after`, so a payday step still runs at its usual hour.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from functools import lru_cache

# Every country's calendar is imported here, once, rather than on first use as
# `holidays.country_holidays` would: inside Temporal's workflow sandbox that late import would
# re-run the package's modules under the sandbox's restrictions and fail the workflow task.
import holidays.countries
from holidays import HolidayBase

from policies.quiet_hours import zone

SATURDAY = 5


def _as_written(message: str) -> str:
    return message


def _names_untranslated(calendar_: HolidayBase) -> None:
    # Stands in for the package's l10n set-up (HolidayBase._init_translation): only the dates
    # matter here, and that set-up reads message catalogs through gettext, which imports
    # `locale` when called, which the sandbox forbids inside a workflow. test_payday.py runs
    # this inside the sandbox, so a `holidays` release that renames the hook fails a test.
    calendar_.tr = _as_written


@lru_cache(maxsize=64)
def _calendar(country: str) -> type[HolidayBase] | None:
    found = getattr(holidays.countries, country, None) if country.isalpha() else None
    if not (isinstance(found, type) and issubclass(found, HolidayBase)):
        return None  # not a country the package knows
    return type(found.__name__, (found,), {"_init_translation": _names_untranslated})


@lru_cache(maxsize=256)
def public_holidays(country: str | None, year: int) -> frozenset[date]:
    """The country's public holidays in `year`; none for a missing or unknown country."""
    calendar_ = _calendar(country) if country else None
    if calendar_ is None:
        return frozenset()
    # A frozen copy: the package's calendars grow when asked about other years.
    return frozenset(day for day in calendar_(years=year) if day.year == year)


def is_business_day(day: date, country: str | None) -> bool:
    return day.weekday() < SATURDAY and day not in public_holidays(country, day.year)


def _next_business_day(day: date, country: str | None) -> date:
    while not is_business_day(day, country):
        day += timedelta(days=1)
    return day


def last_business_day(year: int, month: int, country: str | None) -> date:
    day = date(year, month, calendar.monthrange(year, month)[1])
    while not is_business_day(day, country):
        day -= timedelta(days=1)
    return day


def paydays(year: int, month: int, country: str | None) -> list[date]:
    """The month's paydays, in order (the 1st or 15th moved on may meet the last one)."""
    days = {
        _next_business_day(date(year, month, 1), country),
        _next_business_day(date(year, month, 15), country),
        last_business_day(year, month, country),
    }
    return sorted(days)


def _normalise(country: str | None) -> str | None:
    code = (country or "").strip().upper()
    return code if len(code) == 2 else None  # ISO 3166 alpha-2, as Stripe's address.country


def next_payday(
    after: datetime, country: str | None, within: timedelta, timezone: str | None = None
) -> datetime | None:
    """The first payday on or after `after`'s date, at `after`'s time of day; None past `within`.

    `after` itself is returned when its date is a payday. The date is the customer's, in
    `timezone` (an IANA zone) when given: 20:00 UTC on the 14th is already the 15th, a payday,
    in Sydney, and still the 14th in Madrid. Without one, the UTC date.
    """
    code = _normalise(country)
    # The same instant, read as the customer's date (`found` below stays in `after`'s zone).
    local = after.astimezone(zone(timezone, "UTC")) if timezone else after
    start, limit = local.date(), local + within
    year, month = start.year, start.month
    while date(year, month, 1) <= limit.date():
        for day in paydays(year, month, code):
            if day >= start:
                found = after + timedelta(days=(day - start).days)
                return found if found <= limit else None
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None
