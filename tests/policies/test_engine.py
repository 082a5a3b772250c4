"""Property tests of the pure policy engine: drive random cases through it like a workflow."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies import engine
from policies.engine import ActionKind, CaseState, Trigger
from policies.loader import POLICY_DIR, load_policy
from policies.payday import next_payday
from policies.schema import DeclineClass, Policy

DEFAULT = load_policy(POLICY_DIR / "default.yaml")
START = datetime(2026, 1, 1, tzinfo=UTC)

events = st.lists(
    st.one_of(
        st.tuples(st.just("tick")),
        st.tuples(st.just("decline"), st.sampled_from(list(DeclineClass))),
        st.tuples(st.just("grace"), st.integers(min_value=-3, max_value=40)),
        st.tuples(st.just("pause"), st.integers(min_value=0, max_value=5 * 86400)),
        st.tuples(st.just("card_updated")),
        st.tuples(st.just("retry_now")),
        # A worker outage or a webhook delivered days late: time jumps, steps pile up overdue.
        st.tuples(st.just("outage"), st.integers(min_value=0, max_value=20 * 86400)),
    ),
    max_size=40,
)


def simulate(
    policy: Policy, script: list[tuple], first: DeclineClass, country: str | None = None
) -> tuple[CaseState, list]:
    """Interpret the engine like DunningWorkflow does; every charge is declined."""
    state = engine.after_decline(CaseState(started_at=START), first)
    now, log = START, list[tuple[Any, ...]]()
    for event in [*script, *[("tick",)] * 30]:
        kind = event[0]
        if kind == "decline":
            state = engine.after_decline(state, event[1])
        elif kind == "grace" and engine.grace_problem(policy, state, event[1]) is None:
            before = engine.final_deadline(policy, state)
            state = engine.grant_grace(policy, state, event[1])
            log.append(("grace", before, engine.final_deadline(policy, state)))
        elif kind == "pause" and not state.closed and state.paused_since is None:
            state = engine.pause(state, now)
            now += timedelta(seconds=event[1])
            state = engine.resume(state, now)
        elif kind == "outage":
            now += timedelta(seconds=event[1])
        elif kind in ("card_updated", "retry_now") and not state.closed:
            trigger = Trigger.PAYMENT_METHOD_UPDATED if kind == "card_updated" else Trigger.SUPPORT
            state = engine.request_retry(state, trigger)
        action = engine.next_action(policy, state, now, country)
        if action.kind == ActionKind.CLOSED:
            continue
        assert action.at is not None
        now = max(now, action.at)
        log.append((action.kind, now, action.charge, state.decline_class))
        if action.kind == ActionKind.RUN_STEP:
            assert action.step_index is not None
            state = engine.after_step(state, action.step_index, action.charge, now)
        elif action.kind == ActionKind.RETRY_NOW:
            state = engine.after_retry_now(state, True, now)
        elif action.kind == ActionKind.ASK_CUSTOMER:
            state = engine.after_customer_asked(state)
        elif action.kind == ActionKind.FINAL_ACTION:
            state = engine.close(state)
    return state, log


@settings(max_examples=300, deadline=None)
@given(script=events, first=st.sampled_from(list(DeclineClass)))
def test_automatic_attempts_never_exceed_the_cap(script: list, first: DeclineClass) -> None:
    state, log = simulate(DEFAULT, script, first)
    scheduled_charges = [e for e in log if e[0] == ActionKind.RUN_STEP and e[2]]
    assert len(scheduled_charges) == state.auto_attempts <= DEFAULT.max_attempts


@settings(max_examples=300, deadline=None)
@given(script=events, first=st.sampled_from(list(DeclineClass)))
def test_final_action_happens_exactly_once(script: list, first: DeclineClass) -> None:
    state, log = simulate(DEFAULT, script, first)
    assert [e[0] for e in log].count(ActionKind.FINAL_ACTION) == 1
    assert state.closed
    assert engine.next_action(DEFAULT, state, START + timedelta(days=999)).kind == ActionKind.CLOSED


@settings(max_examples=300, deadline=None)
@given(script=events, first=st.sampled_from(list(DeclineClass)))
def test_grace_only_moves_deadlines_later_within_limits(script: list, first: DeclineClass) -> None:
    state, log = simulate(DEFAULT, script, first)
    for entry in log:
        if entry[0] == "grace":
            assert entry[2] > entry[1]
    grants = [(e[2] - e[1]).days for e in log if e[0] == "grace"]
    assert all(1 <= g <= DEFAULT.grace.max_days_per_grant for g in grants)
    assert sum(grants) == state.grace_days <= DEFAULT.grace.max_total_days


@settings(max_examples=300, deadline=None)
@given(script=events, first=st.sampled_from(list(DeclineClass)))
def test_declines_needing_a_new_card_are_never_retried_on_schedule(
    script: list, first: DeclineClass
) -> None:
    _, log = simulate(DEFAULT, script, first)
    for entry in log:
        if entry[0] == ActionKind.RUN_STEP and entry[3] != DeclineClass.SOFT:
            assert entry[2] is False


@settings(max_examples=300, deadline=None)
@given(script=events, first=st.sampled_from(list(DeclineClass)))
def test_schedule_is_monotonic(script: list, first: DeclineClass) -> None:
    _, log = simulate(DEFAULT, script, first)
    times = [e[1] for e in log if isinstance(e[0], ActionKind)]
    assert times == sorted(times)


@settings(max_examples=300, deadline=None)
@given(script=events, first=st.sampled_from(list(DeclineClass)))
def test_scheduled_charges_keep_their_spacing_even_after_an_outage(
    script: list, first: DeclineClass
) -> None:
    _, log = simulate(DEFAULT, script, first)
    charges = [e[1] for e in log if e[0] == ActionKind.RUN_STEP and e[2]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(charges)]
    assert all(gap >= DEFAULT.min_charge_spacing for gap in gaps)


def test_overdue_steps_collapse_into_the_latest_one() -> None:
    state = engine.after_decline(CaseState(started_at=START), DeclineClass.SOFT)
    late = START + DEFAULT.steps[2].offset + timedelta(hours=1)
    action = engine.next_action(DEFAULT, state, late)
    assert (action.kind, action.step_index, action.skipped_steps) == (ActionKind.RUN_STEP, 2, 2)
    assert action.charge and action.at == START + DEFAULT.steps[2].offset
    state = engine.after_step(state, 2, True, late)
    assert state.steps_done == 3 and state.auto_attempts == 1
    after = engine.next_action(DEFAULT, state, late)
    assert after.step_index == 3 and after.skipped_steps == 0


@given(
    grants=st.lists(st.integers(min_value=1, max_value=14), max_size=6),
    paused=st.integers(min_value=0, max_value=10**6),
)
def test_step_order_survives_grace_and_pauses(grants: list[int], paused: int) -> None:
    state = CaseState(started_at=START, paused_total=timedelta(seconds=paused))
    for days in grants:
        if engine.grace_problem(DEFAULT, state, days) is None:
            state = engine.grant_grace(DEFAULT, state, days)
    dues = [engine.step_due(DEFAULT, state, i) for i in range(len(DEFAULT.steps))]
    assert dues == sorted(dues) and dues[-1] < engine.final_deadline(DEFAULT, state)


def test_grace_moves_final_deadline_by_exactly_the_days_granted() -> None:
    state = CaseState(started_at=START)
    before = engine.final_deadline(DEFAULT, state)
    after = engine.final_deadline(DEFAULT, engine.grant_grace(DEFAULT, state, 5))
    assert after - before == timedelta(days=5)


@pytest.mark.parametrize(
    ("days", "message"),
    [
        (0, "at least 1 day"),
        (-2, "at least 1 day"),
        (15, "14 days per grant"),
    ],
)
def test_invalid_grace_is_explained(days: int, message: str) -> None:
    assert message in (engine.grace_problem(DEFAULT, CaseState(started_at=START), days) or "")


def test_total_grace_limit_counts_earlier_grants() -> None:
    state = CaseState(started_at=START)
    for _ in range(2):
        state = engine.grant_grace(DEFAULT, state, 14)
    assert engine.grace_problem(DEFAULT, state, 3) == (
        "grace is limited to 30 days in total; 28 already granted, 2 left"
    )
    with pytest.raises(ValueError, match="30 days in total"):
        engine.grant_grace(DEFAULT, state, 3)


def test_closed_case_refuses_grace() -> None:
    state = engine.close(CaseState(started_at=START))
    assert engine.grace_problem(DEFAULT, state, 1) == "the case is closed"


@pytest.mark.parametrize(
    ("decline", "advice", "expected"),
    [
        ("insufficient_funds", None, DeclineClass.SOFT),
        ("expired_card", None, DeclineClass.NEW_PAYMENT_METHOD),
        ("fraudulent", None, DeclineClass.NEW_PAYMENT_METHOD),
        ("authentication_required", None, DeclineClass.AUTHENTICATION),
        ("generic_decline", "do_not_try_again", DeclineClass.NEW_PAYMENT_METHOD),
        ("expired_card", "try_again_later", DeclineClass.SOFT),
        ("insufficient_funds", "confirm_card_data", DeclineClass.NEW_PAYMENT_METHOD),
        ("some_future_code", None, DeclineClass.SOFT),
        (None, None, DeclineClass.SOFT),
    ],
)
def test_classification_advice_code_wins(
    decline: str | None, advice: str | None, expected: DeclineClass
) -> None:
    assert engine.classify_decline(DEFAULT, decline, advice) == expected


def test_new_card_decline_asks_the_customer_once_then_card_update_retries_now() -> None:
    state = engine.after_decline(CaseState(started_at=START), DeclineClass.NEW_PAYMENT_METHOD)
    assert engine.next_action(DEFAULT, state, START).kind == ActionKind.ASK_CUSTOMER
    state = engine.after_customer_asked(state)
    step = engine.next_action(DEFAULT, state, START)
    assert step.kind == ActionKind.RUN_STEP and step.charge is False
    state = engine.request_retry(state, Trigger.PAYMENT_METHOD_UPDATED)
    now = START + timedelta(hours=5)
    retry = engine.next_action(DEFAULT, state, now)
    assert (retry.kind, retry.at, retry.charge) == (ActionKind.RETRY_NOW, now, True)
    assert state.decline_class == DeclineClass.SOFT


def test_pause_waits_and_moves_the_schedule_by_the_paused_time() -> None:
    state = engine.pause(CaseState(started_at=START), START)
    assert engine.next_action(DEFAULT, state, START).kind == ActionKind.WAIT_FOR_RESUME
    state = engine.resume(state, START + timedelta(hours=6))
    first = engine.next_action(DEFAULT, state, START + timedelta(hours=6))
    assert first.at == START + DEFAULT.steps[0].offset + timedelta(hours=6)
    with pytest.raises(ValueError, match="not paused"):
        engine.resume(state, START)


def test_manual_retries_do_not_use_the_automatic_budget() -> None:
    state = replace(CaseState(started_at=START), auto_attempts=DEFAULT.max_attempts)
    state = engine.after_retry_now(engine.request_retry(state, Trigger.SUPPORT), True, START)
    assert (state.auto_attempts, state.manual_attempts, state.attempts) == (4, 1, 5)


@pytest.mark.parametrize(
    ("file", "day"), [("default.yaml", timedelta(days=1)), ("demo.yaml", timedelta(seconds=20))]
)
def test_a_grace_day_lasts_what_the_policy_says(file: str, day: timedelta) -> None:
    policy = load_policy(POLICY_DIR / file)
    state = CaseState(started_at=datetime(2026, 11, 1, tzinfo=UTC))
    before = engine.final_deadline(policy, state)
    granted = engine.grant_grace(policy, state, 3)
    assert granted.grace_days == 3
    assert engine.final_deadline(policy, granted) - before == 3 * day
    assert engine.step_due(policy, granted, 0) - engine.step_due(policy, state, 0) == 3 * day


# Paydays (policies/payday.py): a retry step with `payday` waits for the customer's next payday.


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
