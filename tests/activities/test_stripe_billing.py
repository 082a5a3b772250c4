"""Stripe activities at the boundary: declines are results, failures are classified."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import stripe
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.stripe_billing import StripeActivities, make_stripe_client
from models.activities import FinalActionInput, InvoiceContextInput, RetryPaymentInput
from models.ledger import Attempt, CaseOutcome
from models.settings import Settings
from models.store import Ledger
from tests.activities.conftest import open_case
from tests.standin_control import StripeControl

INSUFFICIENT = "pm_card_chargeDeclinedInsufficientFunds"


def pay_requests(control: StripeControl, invoice: str) -> list[dict]:
    return [r for r in control.requests() if r["path"].endswith(f"/invoices/{invoice}/pay")]


def retry(activities: StripeActivities, invoice: str, attempt: int = 1):  # type: ignore[no-untyped-def]
    return ActivityEnvironment().run(
        activities.retry_payment,
        RetryPaymentInput(invoice_id=invoice, attempt=attempt, trigger="schedule", step=1),
    )


def test_a_decline_is_a_result_from_exactly_one_call(
    stripe_activities: StripeActivities, stripe_control: StripeControl, ledger: Ledger
) -> None:
    case = stripe_control.failed_invoice("pm_card_chargeDeclinedFraudulent")
    open_case(ledger, case)
    before = len(pay_requests(stripe_control, case.invoice))
    result = retry(stripe_activities, case.invoice)
    assert (result.outcome, result.decline_code, result.advice_code) == (
        "declined",
        "fraudulent",
        "do_not_try_again",
    )
    assert result.idempotency_key == f"dunning-{case.invoice}:charge:1"
    assert len(pay_requests(stripe_control, case.invoice)) == before + 1
    # Re-running the same attempt (an activity retry) replays; the ledger row is not doubled.
    again = retry(stripe_activities, case.invoice)
    assert again == result
    assert stripe_control.charge_count(case.invoice) == 2
    with ledger.sessions() as session:
        rows = session.query(Attempt).filter_by(invoice_id=case.invoice).all()
    assert len(rows) == 1


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("500", stripe.APIError),
        ("429", stripe.RateLimitError),
        ("lock_timeout", stripe.RateLimitError),
    ],
)
def test_outages_and_rate_limits_raise_for_temporal_to_retry(
    stripe_activities: StripeActivities,
    stripe_control: StripeControl,
    ledger: Ledger,
    mode: str,
    error: type,
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    open_case(ledger, case)
    stripe_control.fault(mode, count=1, path_contains=f"{case.invoice}/pay")
    with pytest.raises(error):
        retry(stripe_activities, case.invoice)
    assert stripe_control.charge_count(case.invoice) == 1
    assert retry(stripe_activities, case.invoice).outcome == "declined"
    assert stripe_control.charge_count(case.invoice) == 2


def test_a_network_error_raises(settings: Settings, ledger: Ledger) -> None:
    broken = StripeActivities(
        make_stripe_client(settings.model_copy(update={"stripe_api_base": "http://127.0.0.1:9"})),
        ledger,
        settings.dunning_policy,
    )
    with pytest.raises(stripe.APIConnectionError):
        retry(broken, "in_unreachable")


def test_a_bad_api_key_is_permanent(
    settings: Settings, ledger: Ledger, stripe_control: StripeControl
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    bad = StripeActivities(
        make_stripe_client(settings.model_copy(update={"stripe_api_key": "not-a-key"})),
        ledger,
        settings.dunning_policy,
    )
    with pytest.raises(ApplicationError) as info:
        retry(bad, case.invoice)
    assert (info.value.type, info.value.non_retryable) == ("StripeAuthenticationError", True)


def test_reusing_a_charge_key_with_other_parameters_is_permanent(
    stripe_activities: StripeActivities, stripe_control: StripeControl, ledger: Ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    open_case(ledger, case)
    key = f"dunning-{case.invoice}:charge:1"
    with pytest.raises(stripe.CardError):
        stripe_control.sdk.v1.invoices.pay(
            case.invoice, params={"off_session": False}, options={"idempotency_key": key}
        )
    with pytest.raises(ApplicationError) as info:
        retry(stripe_activities, case.invoice)
    assert (info.value.type, info.value.non_retryable) == ("StripeIdempotencyError", True)


def test_an_invoice_paid_elsewhere_counts_as_recovered(
    stripe_activities: StripeActivities, stripe_control: StripeControl, ledger: Ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    open_case(ledger, case)
    stripe_control.sdk.v1.invoices.pay(case.invoice, params={"paid_out_of_band": True})
    assert retry(stripe_activities, case.invoice, attempt=3).outcome == "already_paid"
    # The refusal carries no amount: the recovery counts what was due when the case opened.
    with ledger.sessions() as session:
        outcome = session.query(CaseOutcome).filter_by(invoice_id=case.invoice).one()
    obj = case.event["data"]["object"]
    assert (outcome.outcome, outcome.amount_recovered) == ("recovered", obj["amount_due"])


def test_final_action_is_idempotent(
    stripe_activities: StripeActivities, stripe_control: StripeControl, ledger: Ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    open_case(ledger, case)
    final = FinalActionInput(
        invoice_id=case.invoice,
        subscription_id=case.subscription,
        action="cancel_subscription",
        attempts=4,
        grace_days=0,
    )
    first = ActivityEnvironment().run(stripe_activities.apply_final_action, final)
    second = ActivityEnvironment().run(stripe_activities.apply_final_action, final)
    assert first == second and first.outcome == "subscription_canceled"
    deletes = [
        r
        for r in stripe_control.requests()
        if r["method"] == "DELETE" and r["path"].endswith(case.subscription)
    ]
    # Stripe refuses a second cancel; the activity confirms the state instead of failing.
    assert [r["status"] for r in deletes] == [200, 404]
    assert stripe_control.sdk.v1.subscriptions.retrieve(case.subscription).status == "canceled"


def test_mark_uncollectible_and_leave_past_due(
    stripe_activities: StripeActivities, stripe_control: StripeControl, ledger: Ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    open_case(ledger, case)
    marked = ActivityEnvironment().run(
        stripe_activities.apply_final_action,
        FinalActionInput(
            invoice_id=case.invoice, action="mark_uncollectible", attempts=4, grace_days=0
        ),
    )
    assert marked.outcome == "marked_uncollectible"
    assert stripe_control.sdk.v1.invoices.retrieve(case.invoice).status == "uncollectible"
    other = stripe_control.failed_invoice(INSUFFICIENT)
    open_case(ledger, other)
    left = ActivityEnvironment().run(
        stripe_activities.apply_final_action,
        FinalActionInput(
            invoice_id=other.invoice, action="leave_past_due", attempts=4, grace_days=0
        ),
    )
    assert left.outcome == "left_past_due"
    assert stripe_control.sdk.v1.invoices.retrieve(other.invoice).status == "open"


def test_invoice_context_reads_customer_locale_and_a_bad_policy_is_permanent(
    stripe_activities: StripeActivities, stripe_control: StripeControl
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT, name="Zoë", preferred_locales=["de"])
    base = InvoiceContextInput(
        invoice_id=case.invoice,
        customer_id=case.customer,
        amount_due=1200,
        currency="eur",
        workflow_id=f"dunning-{case.invoice}",
        opened_at=datetime.now(UTC),
    )
    context = ActivityEnvironment().run(stripe_activities.get_invoice_context, base)
    assert (context.customer_name, context.locale, context.invoice_status) == ("Zoë", "de", "open")
    assert (
        context.subscription_id == case.subscription and context.subscription_status == "past_due"
    )
    assert context.decline_code == "insufficient_funds" and context.policy.name == "default"
    with pytest.raises(ApplicationError) as info:
        ActivityEnvironment().run(
            stripe_activities.get_invoice_context, base.model_copy(update={"policy": "nope"})
        )
    assert info.value.type == "InvalidPolicy" and "nope.yaml" in str(info.value)
