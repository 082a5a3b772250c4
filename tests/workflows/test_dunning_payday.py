"""A retry step that waits for the customer's payday, through a whole case: the country comes
from the Stripe customer's address, the holidays from that country."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

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


async def test_the_retry_waits_for_the_first_business_day_after_new_year(
    time_env: WorkflowEnvironment, run_worker, stripe_control, tmp_path: Path
) -> None:
    policy = tmp_path / "payday_test.yaml"
    policy.write_text(POLICY)
    case = stripe_control.failed_invoice(INSUFFICIENT)
    stripe_control.sdk.v1.customers.update(case.customer, params={"address": {"country": "ES"}})
    # The step falls due on Sat 2027-01-02 at 10:00; Fri the 1st was New Year's Day (a holiday
    # in Spain), so the payday "1st" is Mon the 4th: the charge waits for it.
    await skip_to(time_env, datetime(2027, 1, 1, 10, tzinfo=UTC))
    async with run_worker(time_env.client, dunning_policy=str(policy)) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.attempts == 1, step=timedelta(hours=6))
        await handle.terminate("test done")

    (charge,) = await activity_times(handle, "retry_payment")
    assert near(charge, datetime(2027, 1, 4, 10, tzinfo=UTC))


async def test_the_retry_reads_the_payday_on_the_customers_calendar(
    time_env: WorkflowEnvironment, run_worker, stripe_control, tmp_path: Path
) -> None:
    policy = tmp_path / "payday_test.yaml"
    policy.write_text(POLICY)
    case = stripe_control.failed_invoice(INSUFFICIENT)
    stripe_control.sdk.v1.customers.update(case.customer, params={"address": {"country": "AU"}})
    # The step falls due at 20:00 UTC on Thu 2027-01-14: in the UTC calendar the payday is the
    # next day, but for a customer in Australia (UTC+10) it is already Fri the 15th, a payday,
    # so the charge runs when due rather than a day late.
    await skip_to(time_env, datetime(2027, 1, 13, 20, tzinfo=UTC))
    async with run_worker(time_env.client, dunning_policy=str(policy)) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: s.attempts == 1, step=timedelta(hours=6))
        await handle.terminate("test done")

    (charge,) = await activity_times(handle, "retry_payment")
    assert near(charge, datetime(2027, 1, 14, 20, tzinfo=UTC))
