"""Paydays (policies/payday.py): a retry step with `payday` waits for the customer's payday."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from policies import engine
from policies.engine import ActionKind, CaseState
from policies.payday import next_payday
from policies.schema import DeclineClass, Policy
from tests.policies.engine_simulation import DEFAULT, events, simulate


def _with_paydays(policy: Policy, within: str) -> Policy:
    raw = policy.model_dump()
    for step in raw["steps"]:
        if step["retry"]:
            step["payday"] = {"within": within}
    return Policy.model_validate(raw)


PAYDAYS = _with_paydays(DEFAULT, "4d")


def _one_step(offset: str, next_offset: str = "20d") -> Policy:
    return Policy.model_validate(
        {
            "name": "payday",
            "max_attempts": 2,
            "steps": [
                {"offset": offset, "retry": True, "level": "friendly", "payday": {"within": "10d"}},
                {"offset": next_offset, "retry": True, "level": "reminder"},
            ],
            "final": {"action": "leave_past_due", "after": "30d"},
            "grace": {"max_days_per_grant": 7, "max_total_days": 14},
        }
    )


def test_a_payday_step_waits_for_the_customers_payday() -> None:
    policy = _one_step("10d")
    state = CaseState(started_at=datetime(2026, 12, 22, 10, tzinfo=UTC))  # due Friday 2027-01-01
    by_country = {
        country: engine.next_action(policy, state, state.started_at, country).at
        for country in ("ES", "US", None)
    }
    # New Year's Day is a holiday in Spain and the US: their payday is Monday the 4th.
    assert by_country == {
        "ES": datetime(2027, 1, 4, 10, tzinfo=UTC),
        "US": datetime(2027, 1, 4, 10, tzinfo=UTC),
        None: datetime(2027, 1, 1, 10, tzinfo=UTC),
    }
    waiting = datetime(2027, 1, 2, tzinfo=UTC)  # past the step's offset, before the payday
    action = engine.next_action(policy, state, waiting, "ES")
    assert (action.step_index, action.charge, action.due(waiting)) == (0, True, False)
    assert action.due(datetime(2027, 1, 4, 10, tzinfo=UTC))


def test_a_payday_never_reaches_the_next_step() -> None:
    policy = _one_step("10d", next_offset="12d")  # the ES payday is 3 days after the 1st
    state = CaseState(started_at=datetime(2026, 12, 22, 10, tzinfo=UTC))
    assert engine.step_due(policy, state, 0, country="ES") == datetime(2027, 1, 1, 10, tzinfo=UTC)


def test_a_payday_moves_only_a_charge() -> None:
    policy = _one_step("10d")
    state = CaseState(
        started_at=datetime(2026, 12, 22, 10, tzinfo=UTC),
        decline_class=DeclineClass.NEW_PAYMENT_METHOD,
    )
    action = engine.next_action(policy, state, state.started_at, "ES")
    assert (action.at, action.charge) == (datetime(2027, 1, 1, 10, tzinfo=UTC), False)


@settings(max_examples=200, deadline=None)
@given(
    script=events,
    first=st.sampled_from(list(DeclineClass)),
    country=st.sampled_from(["ES", "US", None]),
)
def test_a_policy_without_paydays_ignores_the_country(
    script: list, first: DeclineClass, country: str | None
) -> None:
    assert simulate(DEFAULT, script, first, country) == simulate(DEFAULT, script, first)


@settings(max_examples=200, deadline=None)
@given(
    script=events,
    first=st.sampled_from(list(DeclineClass)),
    country=st.sampled_from(["ES", "US", "DE", None]),
)
def test_payday_schedules_keep_the_engine_rules(
    script: list, first: DeclineClass, country: str | None
) -> None:
    state, log = simulate(PAYDAYS, script, first, country)
    times = [e[1] for e in log if isinstance(e[0], ActionKind)]
    charges = [e[1] for e in log if e[0] == ActionKind.RUN_STEP and e[2]]
    assert times == sorted(times)
    assert [e[0] for e in log].count(ActionKind.FINAL_ACTION) == 1
    assert len(charges) == state.auto_attempts <= PAYDAYS.max_attempts
    assert all(b - a >= PAYDAYS.min_charge_spacing for a, b in itertools.pairwise(charges))


@given(
    started=st.datetimes(
        min_value=datetime(2024, 1, 1), max_value=datetime(2032, 1, 1), timezones=st.just(UTC)
    ),
    country=st.sampled_from(["ES", "US", "GB", None]),
)
def test_each_payday_step_is_due_on_a_payday_or_at_its_offset(
    started: datetime, country: str | None
) -> None:
    state = CaseState(started_at=started)
    for index, step in enumerate(PAYDAYS.steps):
        usual = engine.step_due(DEFAULT, state, index)
        due = engine.step_due(PAYDAYS, state, index, country=country)
        assert due in (usual, next_payday(usual, country, timedelta(days=4)))
        if step.payday is not None and due == usual:
            payday = next_payday(usual, country, timedelta(days=4))
            later = PAYDAYS.steps[index + 1].offset - step.offset
            assert payday in (None, usual) or payday - usual >= later
