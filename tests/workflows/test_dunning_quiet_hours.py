"""Quiet hours through whole cases: a message due in the customer's night waits for 08:00 in
their zone (from preferences, else the Stripe address country), also across a DST change;
the charge of the same step is not held."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.testing import WorkflowEnvironment

from models.preferences import PreferenceStore
from starter.cases import start_case
from tests.workflows.helpers import INSUFFICIENT, activity_times, advance_until

# The default policy: step 2 (day 3) charges and sends the first email (payment_failed).
STEP_2 = timedelta(days=3)


async def skip_to(env: WorkflowEnvironment, moment: datetime) -> None:
    now = await env.get_current_time()
    assert now < moment, "the test server's clock is already past the scenario's start"
    await env.sleep(moment - now)


def near(actual: datetime, expected: datetime) -> bool:
    return abs(actual.replace(tzinfo=UTC) - expected) < timedelta(minutes=2)


async def test_a_night_message_waits_for_eight_local_across_the_spring_forward(
    time_env: WorkflowEnvironment, run_worker, stripe_control, ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    PreferenceStore(ledger.sessions).set(case.customer, "test", timezone="America/New_York")
    # Step 2 falls due at 2027-03-14 05:00 UTC (00:00 EST); clocks go forward at 07:00 UTC.
    await skip_to(time_env, datetime(2027, 3, 14, 5, tzinfo=UTC) - STEP_2)
    async with run_worker(time_env.client, dunning_quiet_hours="on") as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: "payment_failed" in s.notifications_sent)
        await handle.terminate("test done")

    charges = await activity_times(handle, "retry_payment")
    (email,) = await activity_times(handle, "send_email")
    assert near(charges[1], datetime(2027, 3, 14, 5, tzinfo=UTC))  # the charge ran at night
    assert near(email, datetime(2027, 3, 14, 12, tzinfo=UTC))  # 08:00 EDT, not 13:00 UTC


async def test_the_stripe_address_country_gives_the_zone_without_preferences(
    time_env: WorkflowEnvironment, run_worker, stripe_control
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    stripe_control.sdk.v1.customers.update(case.customer, params={"address": {"country": "JP"}})
    # Step 2 at 14:00 UTC: daytime in the policy's zone (UTC) but 23:00 in Tokyo.
    await skip_to(time_env, datetime(2027, 6, 10, 14, tzinfo=UTC) - STEP_2)
    async with run_worker(time_env.client, dunning_quiet_hours="on") as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        await advance_until(time_env, handle, lambda s: "payment_failed" in s.notifications_sent)
        await handle.terminate("test done")

    (email,) = await activity_times(handle, "send_email")
    assert near(email, datetime(2027, 6, 10, 23, tzinfo=UTC))  # 08:00 JST
