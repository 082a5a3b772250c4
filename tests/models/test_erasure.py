"""models/erasure.py: a customer's personal data leaves the ledger, the report's figures stay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from models import erasure
from models.ledger import (
    Attempt,
    Case,
    CaseFeedback,
    CaseOutcome,
    CustomerAction,
    Notification,
    SupportAction,
)
from models.preferences import PreferenceStore
from models.store import Ledger
from models.stripe_events import StripeEvent

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def seed_customer(ledger: Ledger, closed: bool = True) -> tuple[str, str]:
    """One case of a new customer with everything personal a case collects."""
    tag = uuid.uuid4().hex[:10]
    customer, invoice = f"cus_{tag}", f"in_{tag}"
    ledger.open_case(
        invoice_id=invoice, workflow_id=f"dunning-{invoice}", customer_id=customer,
        subscription_id=f"sub_{tag}", customer_email=f"ada.{tag}@example.org",
        customer_name="Ada Lovelace", amount_due=4900, currency="eur", policy="default",
        first_decline_code="expired_card", opened_at=NOW,
    )  # fmt: skip
    ledger.record_attempt(
        invoice_id=invoice, attempt_no=1, idempotency_key=f"dunning-{invoice}:charge:1",
        trigger="schedule", step=1, outcome="succeeded", amount=4900, attempted_at=NOW,
    )  # fmt: skip
    ledger.record_support_action(
        invoice_id=invoice, request_id=f"req-{tag}", action="grant_grace", by="ops",
        reason="Ada called from +44 20 7946 0000", days=2, via="update", result="granted",
        at=NOW,
    )  # fmt: skip
    with ledger.sessions.begin() as session:
        session.add(
            Notification(
                invoice_id=invoice, dedupe_key=f"dunning-{invoice}:step:2", template="reminder",
                to_address=f"ada.{tag}@example.org", status="sent",
                subject="Ada, your payment failed", body_text="Hello Ada Lovelace, ...",
                error=None,
            )
        )  # fmt: skip
        session.add(
            StripeEvent(
                event_id=f"evt_{tag}", type="customer.updated", object_id=customer,
                event_created=NOW, status="failed", error=f"bad address ada.{tag}@example.org",
            )
        )  # fmt: skip
        session.add(
            CustomerAction(
                invoice_id=invoice, request_id=f"page-{tag}", action="contact",
                detail="Ada here: call me on +44 20 7946 0000", result="sent", at=NOW,
            )
        )  # fmt: skip
        session.add(CaseFeedback(invoice_id=invoice, reason="other", text="Ada: too dear"))
    PreferenceStore(ledger.sessions).set(
        customer, "ops", phone="+442079460000", timezone="Europe/London", locale="en-GB",
        opted_out="email",
    )  # fmt: skip
    if closed:
        ledger.record_outcome(
            invoice, "recovered", currency="eur", attempts=1, amount_recovered=4900,
            recovered_step=1, closed_at=NOW, reason="free text from Stripe about Ada",
        )  # fmt: skip
    return customer, invoice


def rows(ledger: Ledger, model: Any, invoice: str) -> list[Any]:
    with ledger.sessions() as session:
        return list(session.scalars(select(model).where(model.invoice_id == invoice)))


def test_forget_scrubs_personal_data_and_keeps_the_figures(ledger: Ledger) -> None:
    customer, invoice = seed_customer(ledger)
    _, bystander = seed_customer(ledger)
    result = erasure.forget_customer(ledger, customer)
    assert result.invoices == [invoice]
    assert result.rows == {
        "cases": 1, "notifications": 1, "support_actions": 1, "outcomes": 1, "stripe_events": 1,
        "customer_preferences": 1, "customer_actions": 1, "case_feedback": 1,
    }  # fmt: skip
    prefs = PreferenceStore(ledger.sessions).get(customer)
    assert prefs is not None and (prefs.phone, prefs.timezone, prefs.locale) == (None, None, None)
    assert prefs.opted_out == ["email"]  # an opt-out outlives the erasure
    (page,) = rows(ledger, CustomerAction, invoice)
    assert (page.detail, page.action) == (None, "contact")

    (case,) = rows(ledger, Case, invoice)
    assert (case.customer_email, case.customer_name) == (None, None)
    assert (case.customer_id, case.amount_due, case.currency) == (customer, 4900, "eur")
    (note,) = rows(ledger, Notification, invoice)
    assert (note.to_address, note.subject, note.body_text) == (None, None, None)
    assert (note.template, note.status) == ("reminder", "sent")
    (action,) = rows(ledger, SupportAction, invoice)
    assert action.reason is None and (action.action, action.days) == ("grant_grace", 2)
    (outcome,) = rows(ledger, CaseOutcome, invoice)
    assert outcome.reason is None
    assert (outcome.outcome, outcome.amount_recovered, outcome.attempts) == ("recovered", 4900, 1)
    (attempt,) = rows(ledger, Attempt, invoice)
    assert (attempt.outcome, attempt.amount) == ("succeeded", 4900)
    with ledger.sessions() as session:
        event = session.scalars(select(StripeEvent).where(StripeEvent.object_id == customer)).one()
    assert event.error is None and event.status == "failed"

    # Another customer's data is untouched; forgetting again finds nothing left.
    (other,) = rows(ledger, Case, bystander)
    assert other.customer_name == "Ada Lovelace"
    again = erasure.forget_customer(ledger, customer)
    assert again.invoices == [invoice] and set(again.rows.values()) == {0}


def test_forget_refuses_while_a_case_is_open(ledger: Ledger) -> None:
    customer, invoice = seed_customer(ledger, closed=False)
    assert erasure.open_cases(ledger, customer) == [invoice]
    with pytest.raises(ValueError, match=invoice):
        erasure.forget_customer(ledger, customer)
    (case,) = rows(ledger, Case, invoice)
    assert case.customer_email is not None, "nothing is scrubbed when refused"


def test_an_unknown_customer_is_nothing_to_forget(ledger: Ledger) -> None:
    result = erasure.forget_customer(ledger, "cus_never_seen")
    assert result.invoices == [] and set(result.rows.values()) == {0}


def test_every_text_column_is_classified_personal_or_kept() -> None:
    # A new column (a phone number, a message) must be classified before it ships.
    for table, columns in erasure.text_columns().items():
        personal = erasure.PERSONAL.get(table, frozenset())
        kept = erasure.KEPT.get(table, frozenset())
        assert not personal & kept, table
        assert columns == personal | kept, (
            f"{table}: classify {sorted(columns ^ (personal | kept))}"
        )
