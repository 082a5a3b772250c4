"""Property tests of the pure policy engine: drive random cases through it like a workflow."""

from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from policies import engine
from policies.engine import ActionKind
from policies.schema import DeclineClass
from tests.policies.engine_simulation import DEFAULT, START, events, simulate


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
