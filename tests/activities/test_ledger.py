"""Ledger activities (activities/ledger.py): close_case, the one writer of a case's outcome,
with or without the case row its opening writes; a support action that comes before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.ledger import LedgerActivities
from models.activities import CloseCaseInput, RecordSupportActionInput
from models.dunning import Outcome
from models.ledger import Case, CaseOutcome
from models.store import Ledger

OPENED = datetime(2026, 11, 1, 9, tzinfo=UTC)


def closing(invoice: str, closed_at: datetime) -> CloseCaseInput:
    return CloseCaseInput(
        invoice_id=invoice,
        workflow_id=f"dunning-{invoice}",
        customer_id="cus_ledger",
        amount_due=1200,
        opened_at=OPENED,
        outcome=Outcome.SUBSCRIPTION_CANCELED,
        currency="EUR",
        attempts=3,
        closed_at=closed_at,
    )


def rows(ledger: Ledger, invoice: str) -> tuple[Case, list[CaseOutcome]]:
    with ledger.sessions() as session:
        case = session.scalars(select(Case).where(Case.invoice_id == invoice)).one()
        outcomes = session.scalars(select(CaseOutcome).where(CaseOutcome.invoice_id == invoice))
        return case, list(outcomes)


def test_closing_an_opened_case_keeps_its_row_and_the_first_closing_time(ledger: Ledger) -> None:
    invoice = "in_ledger_opened"
    ledger.open_case(
        invoice_id=invoice, workflow_id=f"dunning-{invoice}", customer_id="cus_ledger",
        customer_email="ada@example.com", amount_due=1200, currency="eur", policy="default",
        opened_at=OPENED,
    )  # fmt: skip
    activities, first = LedgerActivities(ledger), OPENED + timedelta(days=21)
    assert ActivityEnvironment().run(activities.close_case, closing(invoice, first)).recorded
    again = closing(invoice, first + timedelta(minutes=5))  # a retry, later
    assert not ActivityEnvironment().run(activities.close_case, again).recorded
    case, outcomes = rows(ledger, invoice)
    assert (case.policy, case.customer_email, case.closed_at) == (
        "default",
        "ada@example.com",
        first,
    )
    assert [(o.outcome, o.attempts, o.closed_at) for o in outcomes] == [
        ("subscription_canceled", 3, first)
    ]


def test_a_case_that_never_opened_gets_its_row_with_the_outcome(ledger: Ledger) -> None:
    invoice, closed = "in_ledger_never_opened", OPENED + timedelta(seconds=3)
    activities = LedgerActivities(ledger)
    assert ActivityEnvironment().run(activities.close_case, closing(invoice, closed)).recorded
    case, outcomes = rows(ledger, invoice)
    assert (case.policy, case.currency, case.opened_at, case.closed_at) == (
        "unknown", "eur", OPENED, closed
    )  # fmt: skip
    assert [o.outcome for o in outcomes] == ["subscription_canceled"]


def test_a_support_action_before_the_case_row_is_retried_with_a_clear_reason(
    ledger: Ledger,
) -> None:
    """A stop while a slow opening runs: recorded once the opening has written the case."""
    invoice, activities = "in_ledger_still_opening", LedgerActivities(ledger)
    stop = RecordSupportActionInput(
        invoice_id=invoice, request_id="upd-1", action="stop", by="ann", reason="asked",
        result="stopped", at=OPENED, via="update",
    )  # fmt: skip
    with pytest.raises(ApplicationError) as raised:
        ActivityEnvironment().run(activities.record_support_action, stop)
    assert (raised.value.type, raised.value.non_retryable) == ("LedgerCaseNotOpened", False)
    assert "no ledger row yet" in raised.value.message
    ledger.open_case(
        invoice_id=invoice, workflow_id=f"dunning-{invoice}", customer_id="cus_ledger",
        amount_due=1200, currency="eur", policy="default", opened_at=OPENED,
    )  # fmt: skip
    assert ActivityEnvironment().run(activities.record_support_action, stop).recorded
