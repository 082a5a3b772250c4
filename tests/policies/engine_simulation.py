"""The engine driven like DunningWorkflow drives it: the default policy and random scripts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from policies import engine
from policies.engine import ActionKind, CaseState, Trigger
from policies.loader import POLICY_DIR, load_policy
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
