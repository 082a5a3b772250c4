"""Grace in the engine: how far it moves the deadlines, its limits and when it is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from policies import engine
from policies.engine import CaseState
from policies.loader import POLICY_DIR, load_policy
from tests.policies.engine_simulation import DEFAULT, START


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
