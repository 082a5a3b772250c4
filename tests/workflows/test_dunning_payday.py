"""A retry step that waits for the customer's payday, through a whole case: the country comes
from the Stripe customer's address, the holidays from that country."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from starter.cases import start_case
from tests.workflows.helpers import INSUFFICIENT, activity_times, advance_until
from tests.workflows.test_dunning_quiet_hours import near, skip_to

POLICY = """
name: payday_test
max_attempts: 3
min_charge_spacing: 1h
steps:
  - {offset: 1d, retry: true, level: friendly, payday: {within: 5d}}
  - {offset: 10d, retry: true, template: reminder, level: reminder}
final: {action: cancel_subscription, after: 14d}
grace: {max_days_per_grant: 3, max_total_days: 6}
"""


async def first_charge(
    env: WorkflowEnvironment, run_worker, control, tmp_path: Path, country: str, start: datetime
) -> datetime:
    """When the payday step charges a customer in `country` whose case opens at `start`."""
    policy = tmp_path / "payday_test.yaml"
    policy.write_text(POLICY)
    case = control.failed_invoice(INSUFFICIENT)
    control.sdk.v1.customers.update(case.customer, params={"address": {"country": country}})
    await skip_to(env, start)
    async with run_worker(env.client, dunning_policy=str(policy)) as task_queue:
        handle = await start_case(env.client, case.dunning_input(), task_queue)
        await advance_until(env, handle, lambda s: s.attempts == 1, step=timedelta(hours=6))
        await handle.terminate("test done")
    (charge,) = await activity_times(handle, "retry_payment")
    return charge


@pytest.mark.parametrize(
    ("country", "opens", "charged"),
    [
        # The step falls due on Sat 2027-01-02 at 10:00; Fri the 1st was New Year's Day (a
        # holiday in Spain), so the payday "1st" is Mon the 4th: the charge waits for it.
        ("ES", datetime(2027, 1, 1, 10, tzinfo=UTC), datetime(2027, 1, 4, 10, tzinfo=UTC)),
        # Due at 20:00 UTC on Thu 2027-01-14: in the UTC calendar the payday is the next day,
        # but in Australia (UTC+10) it is already Fri the 15th, a payday: charged when due.
        ("AU", datetime(2027, 1, 13, 20, tzinfo=UTC), datetime(2027, 1, 14, 20, tzinfo=UTC)),
    ],
    ids=["first-business-day-after-new-year-in-spain", "the-customers-calendar-in-australia"],
)
async def test_the_retry_waits_for_the_customers_payday(
    time_env: WorkflowEnvironment,
    run_worker,
    stripe_control,
    tmp_path: Path,
    country: str,
    opens: datetime,
    charged: datetime,
) -> None:
    charge = await first_charge(time_env, run_worker, stripe_control, tmp_path, country, opens)
    assert near(charge, charged)
