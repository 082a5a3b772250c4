"""Right to erasure: `dunning forget CUSTOMER` scrubs a customer's personal data from the ledger.

What identifies or describes the person (email, name, the rendered messages sent to them,
free-text reasons support typed, provider error texts that may quote an address) is cleared;
what the recovery report counts (amounts, currencies, outcomes, attempts, dates, decline codes)
stays, tied to Stripe's opaque ids. Every text column of the ledger is classified below as
PERSONAL or KEPT, and a test fails when a new column is neither: personal data cannot slip
into a new column unnoticed.

Only closed cases are scrubbed: a running case still needs its data to send the next email,
so `forget` refuses while one is open (the caller also asks Temporal, whose view is fresher).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Column, ColumnElement, CursorResult, or_, select, update
from sqlalchemy.orm import Session

from models.ledger import (
    Attempt,
    Case,
    CaseFeedback,
    CaseOutcome,
    ChannelOptOut,
    CustomerAction,
    CustomerPreference,
    Notification,
    PreDunningCase,
    SupportAction,
)
from models.store import Ledger
from models.stripe_events import FINAL_STATUSES, StripeEvent

__all__ = ["KEPT", "PERSONAL", "ErasureResult", "forget_customer", "open_cases"]

# table -> columns set to NULL for a forgotten customer.
PERSONAL: dict[str, frozenset[str]] = {
    # A segment reason can quote the customer's metadata values and country.
    "cases": frozenset({"customer_email", "customer_name", "segment_reason"}),
    # The rendered subject and text greet the customer by name and carry their links.
    "notifications": frozenset({"to_address", "subject", "body_text", "error"}),
    "support_actions": frozenset({"reason"}),
    "outcomes": frozenset({"reason"}),
    # payload: the verified event body, kept only until the relay has applied it.
    "stripe_events": frozenset({"error", "payload"}),
    # How to reach them: the number, and where and in which language they live.
    "customer_preferences": frozenset({"phone", "timezone", "locale"}),
    # What the customer wrote or chose on the payment page (a message to support, a card id).
    "customer_actions": frozenset({"detail"}),
    "case_feedback": frozenset({"text"}),
}
# Text columns deliberately kept: ids, codes and machine-written states, no personal data.
# Staff names in support_actions.by are the company's audit trail, not the customer's data.
KEPT: dict[str, frozenset[str]] = {
    "cases": frozenset(
        {
            "invoice_id",
            "workflow_id",
            "customer_id",
            "subscription_id",
            "currency",
            "policy",
            "segment",
            "experiment",
            "variant",
            "first_decline_code",
            "stripe_event_id",
        }
    ),
    "attempts": frozenset(
        {"invoice_id", "idempotency_key", "trigger", "outcome", "decline_code", "advice_code"}
    ),
    "notifications": frozenset(
        {
            "invoice_id",
            "dedupe_key",
            "channel",
            "template",
            "level",
            "status",
            "provider_message_id",
        }
    ),
    "support_actions": frozenset({"invoice_id", "request_id", "action", "by", "via", "result"}),
    "outcomes": frozenset({"invoice_id", "outcome", "currency"}),
    "stripe_events": frozenset(
        {"event_id", "type", "api_version", "object_id", "status", "action"}
    ),
    # The SMS suppression list: a number that texted STOP must never be texted again, so the
    # number stays (a forgotten customer's number would otherwise be texted by a new case).
    "channel_opt_outs": frozenset({"channel", "address", "source"}),
    # Channel choices and opt-outs stay for the same reason: a forgotten customer who opted
    # out of email must not be emailed by a later case.
    "customer_preferences": frozenset({"customer_id", "channels", "opted_out", "updated_by"}),
    "customer_actions": frozenset({"invoice_id", "request_id", "action", "result"}),
    "case_feedback": frozenset({"invoice_id", "reason", "outcome"}),
    "predunning_cases": frozenset(
        {"workflow_id", "customer_id", "subscription_id", "payment_method_id", "status"}
    ),
}
_MODELS = (
    Case,
    Attempt,
    Notification,
    SupportAction,
    CaseOutcome,
    StripeEvent,
    ChannelOptOut,
    CustomerPreference,
    CustomerAction,
    CaseFeedback,
    PreDunningCase,
)


@dataclass
class ErasureResult:
    customer: str
    invoices: list[str] = field(default_factory=list)
    # table -> rows scrubbed
    rows: dict[str, int] = field(default_factory=dict)


def open_cases(ledger: Ledger, customer: str) -> list[str]:
    """Invoices of the customer's cases the ledger still has open."""
    with ledger.sessions() as session:
        query = select(Case.invoice_id).where(
            Case.customer_id == customer, Case.closed_at.is_(None)
        )
        return list(session.scalars(query.order_by(Case.invoice_id)))


def _scrub(session: Session, model: Any, where: ColumnElement[bool]) -> int:
    columns = [getattr(model, name) for name in sorted(PERSONAL[model.__tablename__])]
    # Only rows still holding something, so running `forget` again reports 0.
    holding = or_(*(column.is_not(None) for column in columns))
    statement = update(model).where(where, holding).values({c: None for c in columns})
    result = session.execute(statement)
    return int(cast(CursorResult[Any], result).rowcount)


def forget_customer(ledger: Ledger, customer: str) -> ErasureResult:
    """Scrub the customer's personal data in one transaction; idempotent. Raises ValueError
    when a case is still open (checked inside the same transaction, rows locked)."""
    result = ErasureResult(customer)
    with ledger.sessions.begin() as session:
        cases = session.execute(
            select(Case.invoice_id, Case.subscription_id, Case.closed_at)
            .where(Case.customer_id == customer)
            .order_by(Case.invoice_id)
            .with_for_update()
        ).all()
        still_open = [row.invoice_id for row in cases if row.closed_at is None]
        if still_open:
            raise ValueError(f"open cases: {', '.join(still_open)}")
        invoices = [row.invoice_id for row in cases]
        subscriptions = {row.subscription_id for row in cases if row.subscription_id}
        result.invoices = invoices
        result.rows = {
            "cases": _scrub(session, Case, Case.customer_id == customer),
            "notifications": _scrub(session, Notification, Notification.invoice_id.in_(invoices)),
            "support_actions": _scrub(
                session, SupportAction, SupportAction.invoice_id.in_(invoices)
            ),
            "outcomes": _scrub(session, CaseOutcome, CaseOutcome.invoice_id.in_(invoices)),
            "customer_preferences": _scrub(
                session, CustomerPreference, CustomerPreference.customer_id == customer
            ),
            "customer_actions": _scrub(
                session, CustomerAction, CustomerAction.invoice_id.in_(invoices)
            ),
            "case_feedback": _scrub(session, CaseFeedback, CaseFeedback.invoice_id.in_(invoices)),
            # Events name their object: the customer, its invoices or its subscriptions.
            "stripe_events": _scrub_events(session, {customer, *invoices, *subscriptions}),
        }
    return result


def _scrub_events(session: Session, objects: set[str]) -> int:
    """Events name their object: the customer, its invoices or its subscriptions. An event the
    relay has not applied yet keeps its body (scrubbing it would lose the event; the relay
    clears it once applied); its error text goes like the rest."""
    about = StripeEvent.object_id.in_(objects)
    errors = session.execute(
        update(StripeEvent).where(about, StripeEvent.error.is_not(None)).values(error=None)
    )
    bodies = session.execute(
        update(StripeEvent)
        .where(about, StripeEvent.status.in_(FINAL_STATUSES), StripeEvent.payload.is_not(None))
        .values(payload=None)
    )
    return max(
        int(cast(CursorResult[Any], errors).rowcount),
        int(cast(CursorResult[Any], bodies).rowcount),
    )


def text_columns() -> dict[str, set[str]]:
    """Every string column of the ledger tables, for the classification test."""
    found: dict[str, set[str]] = {}
    for model in _MODELS:
        for column in model.__table__.columns:
            assert isinstance(column, Column)
            if column.type.python_type is str:
                found.setdefault(model.__tablename__, set()).add(column.name)
    return found
