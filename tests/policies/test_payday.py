"""Paydays: the 1st, the 15th and the last business day, per the customer's country."""

from __future__ import annotations

import calendar
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from policies.loader import POLICY_DIR, PolicyError, load_policy
from policies.payday import is_business_day, last_business_day, next_payday, paydays
from policies.schema import Payday, Policy
from policies.simulation_model import SimulationModel, load_model
from policies.simulator import simulate
from tests.policies.payday_sandbox import PaydayInSandbox

COUNTRIES = ["ES", "US", "GB", "DE", "JP", "BR", "CN", "XX", None]


def _at(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("year", "month", "country", "expected"),
    [
        # 2027-01-01 is a Friday and New Year's Day: the 1st moves to Monday the 4th.
        (2027, 1, "ES", [date(2027, 1, 4), date(2027, 1, 15), date(2027, 1, 29)]),
        (2027, 1, None, [date(2027, 1, 1), date(2027, 1, 15), date(2027, 1, 29)]),
        # 2026-08-15 is a Saturday, 2026-08-31 a Monday.
        (2026, 8, None, [date(2026, 8, 3), date(2026, 8, 17), date(2026, 8, 31)]),
        # 2027-12-31 (Friday) is the observed New Year's Day of 2028 in the US.
        (2027, 12, "US", [date(2027, 12, 1), date(2027, 12, 15), date(2027, 12, 30)]),
        (2027, 12, None, [date(2027, 12, 1), date(2027, 12, 15), date(2027, 12, 31)]),
    ],
)
def test_paydays_of_a_month(
    year: int, month: int, country: str | None, expected: list[date]
) -> None:
    assert paydays(year, month, country) == expected


def test_public_holidays_are_not_business_days() -> None:
    christmas = date(2026, 12, 25)  # a Friday
    assert not is_business_day(christmas, "US")
    assert is_business_day(christmas, None)
    assert not is_business_day(date(2027, 1, 1), "ES")
    assert not is_business_day(date(2026, 8, 15), None)  # a Saturday


def test_the_next_payday_keeps_the_time_of_day() -> None:
    after = datetime(2026, 12, 28, 14, 30, tzinfo=UTC)  # Monday; Thursday the 31st is payday
    assert next_payday(after, "US", timedelta(days=5)) == datetime(2026, 12, 31, 14, 30, tzinfo=UTC)
    on_payday = datetime(2027, 1, 15, 9, tzinfo=UTC)
    assert next_payday(on_payday, "ES", timedelta(hours=1)) == on_payday


def test_the_payday_is_a_date_in_the_customers_zone() -> None:
    week = timedelta(days=7)
    # 20:00 UTC on Thu 14 Jan 2027 is already Fri the 15th, a payday, in Brisbane (UTC+10).
    evening = datetime(2027, 1, 14, 20, tzinfo=UTC)
    assert next_payday(evening, "AU", week, "Australia/Brisbane") == evening
    assert next_payday(evening, "AU", week) == evening + timedelta(days=1)  # the UTC date
    # 03:00 UTC on the 15th is still the 14th in Los Angeles: the payday is a day later.
    night = datetime(2027, 1, 15, 3, tzinfo=UTC)
    assert next_payday(night, "US", week, "America/Los_Angeles") == night + timedelta(days=1)
    assert next_payday(night, "US", week) == night
    # A zone nobody knows reads the UTC date rather than fail the case.
    assert next_payday(night, "US", week, "Mars/Olympus") == night


def test_a_holiday_on_the_first_moves_the_payday_to_the_next_business_day() -> None:
    after = _at(date(2027, 1, 1))
    assert next_payday(after, "ES", timedelta(days=5)) == _at(date(2027, 1, 4))
    assert next_payday(after, "US", timedelta(days=5)) == _at(date(2027, 1, 4))
    assert next_payday(after, None, timedelta(days=5)) == after


def test_no_payday_within_the_bound() -> None:
    after = _at(date(2026, 1, 2))  # Friday; the next payday is Thursday the 15th
    assert next_payday(after, None, timedelta(days=5)) is None
    assert next_payday(after, None, timedelta(days=13)) == _at(date(2026, 1, 15))
    assert next_payday(after, None, timedelta(days=13) - timedelta(seconds=1)) is None


@pytest.mark.parametrize("country", ["XX", "", "ESP", "1A", None])
def test_an_unknown_country_counts_weekends_only(country: str | None) -> None:
    after = _at(date(2027, 1, 1))
    assert next_payday(after, country, timedelta(days=5)) == after


def test_country_codes_are_read_as_stripe_writes_them() -> None:
    after = _at(date(2027, 1, 1))
    assert next_payday(after, " es ", timedelta(days=5)) == _at(date(2027, 1, 4))


def _business(day: date, country: str | None) -> bool:
    return day.weekday() < 5 and is_business_day(day, country)


def _is_payday(day: date, country: str | None) -> bool:
    """An oracle written from the rule, independent of paydays()."""
    if not _business(day, country):
        return False
    month_end = date(day.year, day.month, calendar.monthrange(day.year, day.month)[1])
    later = [day + timedelta(days=n) for n in range(1, (month_end - day).days + 1)]
    if not any(_business(d, country) for d in later):
        return True  # the last business day
    for anchor in (1, 15):
        start = date(day.year, day.month, anchor)
        if start <= day:
            between = [start + timedelta(days=n) for n in range((day - start).days)]
            if not any(_business(d, country) for d in between):
                return True  # the 1st or 15th, or the first business day after it
    return False


@settings(max_examples=400, deadline=None)
@given(
    after=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
    ),
    country=st.sampled_from(COUNTRIES),
    within=st.timedeltas(min_value=timedelta(hours=1), max_value=timedelta(days=31)),
)
def test_the_next_payday_is_the_first_one_in_the_window(
    after: datetime, country: str | None, within: timedelta
) -> None:
    found = next_payday(after, country, within)
    # Every payday the window holds, at `after`'s time of day, by the oracle.
    window = [after + timedelta(days=n) for n in range(within.days + 1)]
    expected = [at for at in window if at <= after + within and _is_payday(at.date(), country)]
    assert found == (expected[0] if expected else None)
    if found is not None:
        assert after <= found <= after + within and found.time() == after.time()
        assert _business(found.date(), country)
        assert found.date() in paydays(found.year, found.month, country)


@settings(max_examples=100, deadline=None)
@given(
    year=st.integers(min_value=2020, max_value=2035),
    month=st.integers(min_value=1, max_value=12),
    country=st.sampled_from(COUNTRIES),
)
def test_every_month_has_its_paydays_and_31_days_always_reach_one(
    year: int, month: int, country: str | None
) -> None:
    found = paydays(year, month, country)
    assert all(_is_payday(day, country) for day in found)
    assert found[-1] == last_business_day(year, month, country)
    # The widest gap is 22 days (China, 2026: the 15th moves past the Spring Festival).
    assert next_payday(_at(date(year, month, 1)), country, timedelta(days=31)) is not None


def _policy(**step: object) -> dict[str, object]:
    return {
        "name": "payday",
        "max_attempts": 3,
        "steps": [{"offset": "3d", "retry": True, "level": "friendly", **step}],
        "final": {"action": "leave_past_due", "after": "21d"},
        "grace": {"max_days_per_grant": 7, "max_total_days": 14},
    }


@pytest.mark.parametrize(("within", "seconds"), [("5d", 5 * 86400), ("31d", 31 * 86400)])
def test_a_step_may_wait_for_a_payday(within: str, seconds: int) -> None:
    policy = Policy.model_validate(_policy(payday={"within": within}))
    assert policy.steps[0].payday == Payday(within=timedelta(seconds=seconds))
    assert Policy.model_validate(policy.model_dump()) == policy


@pytest.mark.parametrize("within", ["0s", "32d", "-1d", "soon"])
def test_the_payday_bound_is_checked(within: str) -> None:
    with pytest.raises(ValidationError, match="within"):
        Policy.model_validate(_policy(payday={"within": within}))


def test_a_payday_needs_a_retry_and_the_error_names_the_step(tmp_path: Path) -> None:
    path = tmp_path / "no-retry.yaml"
    path.write_text(
        "name: p\nmax_attempts: 2\ngrace: {max_days_per_grant: 1, max_total_days: 1}\n"
        "final: {action: leave_past_due, after: 9d}\nsteps:\n"
        "  - {offset: 1d, retry: true, level: friendly, payday: {within: 3d}}\n"
        "  - {offset: 4d, retry: false, level: reminder, payday: {within: 3d}}\n",
        encoding="utf-8",
    )
    with pytest.raises(PolicyError, match=r"steps\.1: .*payday needs retry: true"):
        load_policy(path)


@pytest.mark.parametrize("name", ["default", "demo"])
def test_policies_without_paydays_load_unchanged(name: str) -> None:
    policy = load_policy(POLICY_DIR / f"{name}.yaml")
    assert all(step.payday is None for step in policy.steps)
    recorded = policy.model_dump()
    for step in recorded["steps"]:
        del step["payday"]  # as in the histories of cases opened before paydays
    assert Policy.model_validate(recorded) == policy


@pytest.mark.parametrize("country", ["ES", None])
def test_the_simulator_runs_payday_steps_in_the_models_country(country: str | None) -> None:
    raw = load_policy(POLICY_DIR / "default.yaml").model_dump()
    for step in raw["steps"]:
        if step["retry"]:
            step["payday"] = {"within": "4d"}
    model = load_model()
    model = model.model_copy(
        update={"population": model.population.model_copy(update={"country": country})}
    )
    result = simulate(Policy.model_validate(raw), model, cases=300, seed=1)
    assert result.cases == 300 == result.recovered + result.final_action
    assert result == simulate(Policy.model_validate(raw), model, cases=300, seed=1)


def test_a_model_names_its_country_by_code() -> None:
    raw = load_model().model_dump()
    raw["population"]["country"] = "Spain"
    with pytest.raises(ValidationError, match="country"):
        SimulationModel.model_validate(raw)


async def test_the_engine_finds_paydays_inside_the_workflow_sandbox(
    time_env: WorkflowEnvironment,
) -> None:
    policy = Policy.model_validate(_policy(offset="10d", payday={"within": "10d"}))
    queue = f"payday-{uuid.uuid4()}"
    async with Worker(time_env.client, task_queue=queue, workflows=[PaydayInSandbox]):
        found = await time_env.client.execute_workflow(
            PaydayInSandbox.run,
            args=[policy, datetime(2026, 12, 22, 10, tzinfo=UTC), ["ES", "US", "JP", "XX"]],
            id=queue,
            task_queue=queue,
            execution_timeout=timedelta(minutes=1),
        )
    # 2027-01-01: a Friday and a public holiday in Spain, the US and Japan; XX knows none.
    assert found == [str(_at(date(2027, 1, 4)))] * 3 + [str(_at(date(2027, 1, 1)))]
