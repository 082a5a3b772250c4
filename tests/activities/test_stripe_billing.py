"""Stripe activities at the boundary: declines are results, failures are classified."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import stripe
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DefaultFailureConverter, PayloadConverter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.stripe_billing import StripeActivities
from models.activities import FinalActionInput, InvoiceContextInput, RetryPaymentInput
from models.ledger import Attempt, CaseOutcome
from models.settings import Settings
from models.store import Ledger
from models.stripe_reads import make_stripe_client
from policies.engine import Trigger
from tests.activities.conftest import open_case
from tests.standin_control import INSUFFICIENT, FailedInvoice, StripeControl


def pay_requests(control: StripeControl, invoice: str) -> list[dict]:
    return [r for r in control.requests() if r["path"].endswith(f"/invoices/{invoice}/pay")]


def retry(activities: StripeActivities, invoice: str, attempt: int = 1, generation: int = 1):  # type: ignore[no-untyped-def]
    return ActivityEnvironment().run(
        activities.retry_payment,
        RetryPaymentInput(
            invoice_id=invoice,
            attempt=attempt,
            trigger=Trigger.SCHEDULE,
            step=1,
            key_generation=generation,
        ),
    )


def opening(case: FailedInvoice) -> InvoiceContextInput:
    return InvoiceContextInput(
        invoice_id=case.invoice,
        customer_id=case.customer,
        amount_due=1200,
        currency="eur",
        workflow_id=f"dunning-{case.invoice}",
        opened_at=datetime.now(UTC),
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
    ("mode", "kind"), [("429", "StripeRateLimited"), ("lock_timeout", "StripeRateLimited")]
)
def test_rate_limits_raise_compact_retryable_failures(
    stripe_activities: StripeActivities,
    stripe_control: StripeControl,
    ledger: Ledger,
    mode: str,
    kind: str,
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    open_case(ledger, case)
    stripe_control.fault(mode, count=1, path_contains=f"{case.invoice}/pay")
    with pytest.raises(ApplicationError) as info:
        retry(stripe_activities, case.invoice)
    assert (info.value.type, info.value.non_retryable) == (kind, False)
    assert_compact(info.value)
    assert stripe_control.charge_count(case.invoice) == 1
    assert retry(stripe_activities, case.invoice).outcome == "declined"
    assert stripe_control.charge_count(case.invoice) == 2


def assert_compact(error: ApplicationError) -> None:
    """No cause chain, no traceback text: history keeps it small and it always encodes."""
    assert error.__cause__ is None and error.__suppress_context__
    assert len(error.message) < 600 and "Traceback" not in error.message
    failure = Failure()
    DefaultFailureConverter().to_failure(error, PayloadConverter.default, failure)
    assert failure.application_failure_info.type == error.type


def test_a_saved_500_is_retried_under_a_new_key_generation(
    stripe_activities: StripeActivities, stripe_control: StripeControl, ledger: Ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    open_case(ledger, case)
    stripe_control.fault("500", count=1, path_contains=f"{case.invoice}/pay")
    first = retry(stripe_activities, case.invoice)
    assert (first.outcome, first.invoice_status) == ("provider_error", "open")
    # Stripe saved the 500 under the key and replays it: the same key can never charge.
    again = retry(stripe_activities, case.invoice)
    assert again.outcome == "provider_error"
    pays = pay_requests(stripe_control, case.invoice)[-2:]
    assert [(r["status"], r["replayed"]) for r in pays] == [(500, False), (500, True)]
    assert {r["idempotency_key"] for r in pays} == {f"dunning-{case.invoice}:charge:1"}
    assert stripe_control.charge_count(case.invoice) == 1
    fresh = retry(stripe_activities, case.invoice, generation=2)
    assert fresh.outcome == "declined"
    assert fresh.idempotency_key == f"dunning-{case.invoice}:charge:1:r2"
    assert stripe_control.charge_count(case.invoice) == 2
    with ledger.sessions() as session:
        rows = session.query(Attempt).filter_by(invoice_id=case.invoice).all()
    assert [(r.attempt_no, r.idempotency_key) for r in rows] == [(1, fresh.idempotency_key)]


def test_a_network_error_raises(settings: Settings, ledger: Ledger) -> None:
    broken = StripeActivities(
        make_stripe_client(settings.model_copy(update={"stripe_api_base": "http://127.0.0.1:9"})),
        ledger,
        settings.dunning_policy,
    )
    with pytest.raises(ApplicationError) as info:
        retry(broken, "in_unreachable")
    assert (info.value.type, info.value.non_retryable) == ("StripeConnectionError", False)
    assert_compact(info.value)


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
    # The outcome is the workflow's to record (close_case), not this activity's.
    with ledger.sessions() as session:
        assert session.query(CaseOutcome).filter_by(invoice_id=case.invoice).count() == 0


def final(case: FailedInvoice, action: str) -> FinalActionInput:
    return FinalActionInput(
        invoice_id=case.invoice,
        subscription_id=case.subscription,
        action=action,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("action", ["cancel_subscription", "mark_uncollectible"])
def test_the_final_action_takes_a_last_look_and_never_acts_on_a_paid_invoice(
    stripe_activities: StripeActivities, stripe_control: StripeControl, action: str
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    stripe_control.sdk.v1.invoices.pay(case.invoice, params={"paid_out_of_band": True})
    result = ActivityEnvironment().run(stripe_activities.apply_final_action, final(case, action))
    assert result.outcome == "recovered"
    assert stripe_control.sdk.v1.subscriptions.retrieve(case.subscription).status != "canceled"
    assert stripe_control.sdk.v1.invoices.retrieve(case.invoice).status == "paid"


def test_the_final_action_on_a_voided_invoice_ends_as_voided(
    stripe_activities: StripeActivities, stripe_control: StripeControl
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    stripe_control.sdk.v1.invoices.void_invoice(case.invoice)
    result = ActivityEnvironment().run(
        stripe_activities.apply_final_action, final(case, "cancel_subscription")
    )
    assert result.outcome == "voided"
    assert stripe_control.sdk.v1.subscriptions.retrieve(case.subscription).status != "canceled"


def test_a_case_opens_on_the_invoice_alone_when_optional_reads_are_missing(
    stripe_activities: StripeActivities, stripe_control: StripeControl
) -> None:
    """A Stripe implementation without /v1/invoice_payments answers 404 with an HTML body."""
    case = stripe_control.failed_invoice(INSUFFICIENT)
    stripe_control.fault("not_found", count=1, path_contains="/v1/invoice_payments")
    stripe_control.fault("not_found", count=1, path_contains="/v1/subscriptions/")
    context = ActivityEnvironment().run(stripe_activities.get_invoice_context, opening(case))
    assert (context.invoice_status, context.subscription_status) == ("open", None)
    assert context.policy.name == "default"


def test_final_action_is_idempotent(
    stripe_activities: StripeActivities, stripe_control: StripeControl, ledger: Ledger
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    open_case(ledger, case)
    cancel = final(case, "cancel_subscription")
    first = ActivityEnvironment().run(stripe_activities.apply_final_action, cancel)
    second = ActivityEnvironment().run(stripe_activities.apply_final_action, cancel)
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
        FinalActionInput(invoice_id=case.invoice, action="mark_uncollectible"),
    )
    assert marked.outcome == "marked_uncollectible"
    assert stripe_control.sdk.v1.invoices.retrieve(case.invoice).status == "uncollectible"
    other = stripe_control.failed_invoice(INSUFFICIENT)
    open_case(ledger, other)
    left = ActivityEnvironment().run(
        stripe_activities.apply_final_action,
        FinalActionInput(invoice_id=other.invoice, action="leave_past_due"),
    )
    assert left.outcome == "left_past_due"
    assert stripe_control.sdk.v1.invoices.retrieve(other.invoice).status == "open"


def test_invoice_context_reads_customer_locale_and_a_bad_policy_is_permanent(
    stripe_activities: StripeActivities, stripe_control: StripeControl
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT, name="Zoë", preferred_locales=["de"])
    base = opening(case)
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
