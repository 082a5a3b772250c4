"""Activity fixtures: the real activity classes wired to the stand-ins and the test ledger."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from activities.email import EmailActivities, make_sendgrid_client
from activities.stripe_billing import StripeActivities
from models.notification_store import NotificationStore
from models.settings import Settings
from models.store import Ledger
from models.stripe_reads import make_stripe_client
from tests.standin_control import FailedInvoice


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
