"""The engine's next action: overdue steps, decline classes, card updates, pauses, retries."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import engine
from policies.engine import ActionKind, CaseState, Trigger
from policies.schema import DeclineClass
from tests.policies.engine_simulation import DEFAULT, START


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
