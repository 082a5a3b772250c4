"""Activity fixtures: the real activity classes wired to the stand-ins and the test ledger."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from activities.email import EmailActivities, make_sendgrid_client
from activities.stripe_billing import StripeActivities
from models.activities import SendEmailInput
from models.notification_store import NotificationStore
from models.settings import Settings
from models.store import Ledger
from models.stripe_reads import make_stripe_client
from tests.standin_control import FailedInvoice, StripeControl


@pytest.fixture
def stripe_activities(settings: Settings, ledger: Ledger) -> StripeActivities:
    return StripeActivities(make_stripe_client(settings), ledger, settings.dunning_policy)


@pytest.fixture
def email_activities(settings: Settings, ledger: Ledger) -> EmailActivities:
    return EmailActivities(
        make_sendgrid_client(settings),
        NotificationStore(ledger.sessions),
        sender="billing@example.com",
    )


def open_case(ledger: Ledger, case: FailedInvoice) -> None:
    """Cases are opened by get_invoice_context; activities tested alone need the row too."""
    obj = case.event["data"]["object"]
    ledger.open_case(
        invoice_id=case.invoice,
        workflow_id=f"dunning-{case.invoice}",
        customer_id=case.customer,
        subscription_id=case.subscription,
        customer_email="customer@example.com",
        customer_name="Ada",
        amount_due=obj["amount_due"],
        currency=obj["currency"],
        policy="default",
        opened_at=datetime.now(UTC),
    )


@pytest.fixture
def message(stripe_control: StripeControl, ledger: Ledger) -> SendEmailInput:
    case = stripe_control.failed_invoice("pm_card_chargeDeclinedInsufficientFunds")
    open_case(ledger, case)
    return SendEmailInput(
        invoice_id=case.invoice,
        dedupe_key=f"dunning-{case.invoice}:step:2",
        template="payment_failed",
        level="friendly",
        step=2,
        to_email="ada@example.com",
        customer_id=case.customer,
        customer_name="Ada",
        locale="de",
        amount_due=1200,
        currency="eur",
        hosted_invoice_url="https://invoice.stripe.com/i/test",
    )
