"""Run a policy over a synthetic population with the pure engine, as the workflow would.

Each case is driven exactly as `DunningWorkflow` drives it: ask the engine for the next action,
jump to its moment (no timers: simulated time), carry it out with outcomes drawn from the
model (policies/simulation_model.py), apply the engine's transition, repeat until recovery or
the final action. Customers act between steps: they pay, or give a new card, which the engine
turns into an immediate retry.

The clock: every case starts at the same instant (the engine only reads time relative to the
case start); its real failure instant is drawn uniformly over one week, Monday 00:00 to Sunday
24:00 UTC, and added back to tell night (22:00-06:00 UTC) and weekend (Saturday, Sunday UTC)
charges apart.

Payday steps (`payday:` in a step) move to the paydays of the model's `population.country`
(none: weekends only) read on that shared clock: every case's payday step lands on the same
dates, those after 2026-01-05, rather than on dates spread over the week its invoice failed.

Determinism and fairness: case i of seed s draws from its own `random.Random((s << 32) | i)`,
first its amount, decline and failure instant, then its events. So every policy meets the same
customers, and a policy that only adds a retry after all others changes nothing before it.

Speed: the engine is pure, so its answers are memoised per (state, moment); most cases follow
the same few paths and cost a dictionary lookup per step.
"""

from __future__ import annotations

import bisect
import itertools
import random
from datetime import UTC, datetime, timedelta
from typing import get_args

from policies import engine
from policies.engine import ActionKind, CaseState, NextAction, Trigger
from policies.schema import DeclineClass, Policy
from policies.simulation_model import MessageLevel, SimulationModel
from policies.simulator_result import SimulationResult, Tally

EPOCH = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday, 00:00 UTC
DAY = 86400.0
WEEK = 7 * DAY
# What a declined charge on a freshly given card counts as, and a retry that turns hard.
NEW_CARD_CODE = "generic_decline"
HARD_ADVICE = "do_not_try_again"
_CACHE_LIMIT = 200_000


class _Memo:
    """The engine's answers for one policy, memoised: same arguments, same answer."""

    def __init__(self, policy: Policy, country: str | None) -> None:
        self.policy = policy
        self.country = country
        self.actions: dict[tuple[CaseState, datetime], NextAction] = {}
        self.steps: dict[tuple[CaseState, int, bool, datetime], CaseState] = {}
        self.classes: dict[tuple[str, str | None], DeclineClass] = {}

    def next_action(self, state: CaseState, now: datetime) -> NextAction:
        key = (state, now)
        action = self.actions.get(key)
        if action is None:
            if len(self.actions) > _CACHE_LIMIT:
                self.actions.clear()
            action = self.actions[key] = engine.next_action(self.policy, state, now, self.country)
        return action

    def after_step(self, state: CaseState, index: int, charged: bool, at: datetime) -> CaseState:
        key = (state, index, charged, at)
        after = self.steps.get(key)
        if after is None:
            if len(self.steps) > _CACHE_LIMIT:
                self.steps.clear()
            after = self.steps[key] = engine.after_step(state, index, charged, at)
        return after

    def classify(self, code: str, advice: str | None) -> DeclineClass:
        key = (code, advice)
        found = self.classes.get(key)
        if found is None:
            found = self.classes[key] = engine.classify_decline(self.policy, code, advice)
        return found


def _cumulative(shares: list[float]) -> list[float]:
    sums = list(itertools.accumulate(shares))
    return [s / sums[-1] for s in sums]


class Simulator:
    """One model, any number of policies: `run(policy, cases, seed)`."""

    def __init__(self, model: SimulationModel) -> None:
        self.model = model
        population = model.population
        self._amounts = [a.amount for a in population.amounts]
        self._amount_cdf = _cumulative([a.share for a in population.amounts])
        self._declines = [(d.code, d.advice_code) for d in population.declines]
        self._decline_cdf = _cumulative([d.share for d in population.declines])
        customer = model.customer
        self._act: dict[str, float] = {
            level: customer.act_on_message.get(level, 0.0) for level in get_args(MessageLevel)
        }
        self._act_rate = 1.0 / max(customer.act_after.total_seconds(), 1.0)

    def run(self, policy: Policy, cases: int, seed: int = 0) -> SimulationResult:
        if cases < 1:
            raise ValueError("simulate at least one case")
        if cases >= 1 << 32:
            raise ValueError("at most 2**32 - 1 cases per run")
        memo = _Memo(policy, self.model.population.country)
        tally = Tally()
        horizon = policy.final.after.total_seconds()
        for index in range(cases):
            self._case(memo, random.Random((seed << 32) | index), horizon, tally)
        return tally.result(policy.name, self.model.name, self.model.population.currency, seed)

    def _customer_acts(
        self, rng: random.Random, level: str, now: datetime, pay_only: bool
    ) -> tuple[datetime, bool] | None:
        """Does this message make the customer act? When, and do they pay (else: a card)?"""
        if rng.random() >= self._act[level]:
            return None
        minutes = round(rng.expovariate(self._act_rate) / 60)
        pays = pay_only or rng.random() < self.model.customer.pay_share
        return now + timedelta(minutes=minutes), pays

    def _case(self, memo: _Memo, rng: random.Random, horizon: float, tally: Tally) -> None:
        model, customer = self.model, self.model.customer
        amount = self._amounts[bisect.bisect(self._amount_cdf, rng.random())]
        code, advice = self._declines[bisect.bisect(self._decline_cdf, rng.random())]
        failed_at = rng.random() * WEEK
        key = advice if advice in model.retry.success else code
        pending: tuple[datetime, bool] | None = None
        if customer.spontaneous_per_day > 0:
            after = rng.expovariate(customer.spontaneous_per_day) * DAY
            if after < horizon:
                pending = (EPOCH + timedelta(minutes=round(after / 60)), False)

        state = engine.after_decline(CaseState(started_at=EPOCH), memo.classify(code, advice))
        now = EPOCH
        charges: list[float] = []
        messages = replies = 0
        how: str | None = None
        while how is None:
            action = memo.next_action(state, now)
            if pending is not None and (action.at is None or pending[0] < action.at):
                now, pays = pending
                pending = None
                if pays:
                    how = "paid"
                else:
                    key = NEW_CARD_CODE  # the old card's decline says nothing about the new one
                    state = engine.request_retry(state, Trigger.PAYMENT_METHOD_UPDATED)
                continue
            assert action.at is not None
            now = max(now, action.at)
            kind = action.kind
            if kind == ActionKind.FINAL_ACTION:
                break
            if kind == ActionKind.RETRY_NOW:
                charges.append((now - EPOCH).total_seconds())
                if rng.random() < customer.new_card_success:
                    how = "new_card"
                else:
                    key = NEW_CARD_CODE
                    state = engine.after_decline(state, memo.classify(NEW_CARD_CODE, None))
                state = engine.after_retry_now(state, True, now)
                continue
            level = "ask"
            if kind == ActionKind.RUN_STEP:
                assert action.step_index is not None
                step = memo.policy.steps[action.step_index]
                if action.charge:
                    elapsed = (now - EPOCH).total_seconds()
                    charges.append(elapsed)
                    chance = model.retry.chance(key, state.auto_attempts + 1, elapsed / DAY)
                    if rng.random() < chance:
                        how = "retry"
                    elif rng.random() < model.retry.becomes_hard:
                        key = HARD_ADVICE
                        state = engine.after_decline(state, memo.classify(code, HARD_ADVICE))
                state = memo.after_step(state, action.step_index, action.charge, now)
                if how is not None or step.template is None:
                    continue
                level = step.level
            else:  # ASK_CUSTOMER: the immediate request for a new card or authentication
                state = engine.after_customer_asked(state)
            messages += 1
            replies += rng.random() < customer.reply_rate
            if pending is None:
                auth = state.decline_class == DeclineClass.AUTHENTICATION
                pending = self._customer_acts(rng, level, now, pay_only=auth)
        days = (now - EPOCH).total_seconds() / DAY
        tally.add(amount, how, days, charges, failed_at, messages, replies)


def simulate(policy: Policy, model: SimulationModel, cases: int, seed: int = 0) -> SimulationResult:
    return Simulator(model).run(policy, cases, seed)
