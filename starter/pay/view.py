"""What the payment page knows about a case: the ledger row, Stripe's invoice, the live state.

Only what the page shows is read. The ledger says whether the case exists and how it closed;
Stripe adds the plan, the customer's preferred language and the hosted invoice page; the
workflow's `status` query says what happens next. Stripe being slow or away only drops the plan
from the page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import stripe
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from models.dunning import CaseStatus, DunningState
from models.ledger import Case, CaseFeedback, CaseOutcome, CustomerPreference
from models.settings import Settings
from models.store import Ledger
from models.stripe_reads import get, make_stripe_client
from policies.customer_schema import SelfService
from policies.loader import PolicyError, cached_policy, resolve_policy_path
from starter.deps import bounded
from starter.support import service as svc
from starter.support.ledger_queries import run_query

log = logging.getLogger("dunning.pay")

# Outcomes after which the page asks why (the customer paid, left, or paused).
FEEDBACK_OUTCOMES = frozenset(
    {
        "recovered",
        "already_paid",
        "subscription_canceled",
        "marked_uncollectible",
        "left_past_due",
        "paused_by_customer",
    }
)
OPEN = (CaseStatus.ACTIVE, CaseStatus.PAUSED)


@dataclass
class CaseFacts:
    """The ledger's side: enough to decide which page to show and in which language."""

    invoice_id: str
    customer_id: str
    subscription_id: str | None
    amount_due: int
    currency: str
    outcome: str | None
    feedback_given: bool
    locale: str | None
    timezone: str | None


def _facts(session: Session, invoice_id: str) -> CaseFacts | None:
    case = session.scalar(select(Case).where(Case.invoice_id == invoice_id))
    if case is None:
        return None
    outcome = session.scalar(
        select(CaseOutcome.outcome).where(CaseOutcome.invoice_id == invoice_id)
    )
    feedback = session.scalar(select(CaseFeedback.id).where(CaseFeedback.invoice_id == invoice_id))
    pref = session.get(CustomerPreference, case.customer_id)
    return CaseFacts(
        invoice_id=invoice_id,
        customer_id=case.customer_id,
        subscription_id=case.subscription_id,
        amount_due=case.amount_due,
        currency=case.currency,
        outcome=outcome,
        feedback_given=feedback is not None,
        locale=pref.locale if pref else None,
        timezone=pref.timezone if pref else None,
    )


async def case_facts(ledger: Ledger, invoice_id: str) -> CaseFacts | None:
    return await run_query(ledger, lambda s: _facts(s, invoice_id))


@dataclass
class InvoiceFacts:
    plan: str | None = None
    locale: str | None = None
    hosted_invoice_url: str | None = None
    # When a subscription the customer paused resumes (Stripe's pause_collection.resumes_at).
    resumes_at: datetime | None = None


def _invoice(settings: Settings, invoice_id: str) -> InvoiceFacts:
    client = make_stripe_client(settings)
    expand = ["customer", "parent.subscription_details.subscription"]
    invoice = client.v1.invoices.retrieve(invoice_id, params={"expand": expand})
    lines = get(invoice, "lines", "data") or []
    locales = get(invoice, "customer", "preferred_locales") or []
    subscription = get(invoice, "parent", "subscription_details", "subscription")
    resumes = get(subscription, "pause_collection", "resumes_at")
    return InvoiceFacts(
        plan=get(lines[0], "description") if lines else None,
        locale=locales[0] if locales else None,
        hosted_invoice_url=get(invoice, "hosted_invoice_url"),
        resumes_at=datetime.fromtimestamp(resumes, UTC) if isinstance(resumes, int) else None,
    )


async def invoice_facts(settings: Settings, invoice_id: str) -> InvoiceFacts:
    try:
        return await run_in_threadpool(_invoice, settings, invoice_id)
    except stripe.StripeError as err:
        log.warning("payment page: invoice %s unreadable (%s)", invoice_id, type(err).__name__)
        return InvoiceFacts()


async def live_state(client: Client, invoice_id: str, seconds: float) -> DunningState:
    """The case's state; raises TemporalUnavailable, or CaseNotFound for an unknown case."""
    return await bounded(svc.case_status(client, invoice_id), seconds)


def self_service(settings: Settings, policy: str) -> SelfService:
    try:
        return cached_policy(str(resolve_policy_path(policy, settings.dunning_policy))).self_service
    except PolicyError:
        return SelfService()


def more_time_window(state: DunningState, rules: SelfService, today: date) -> tuple[date, date]:
    """The dates the picker offers, as the workflow's validator bounds them (it decides, and
    counts days in UTC: `today` is the UTC date)."""
    first = max(state.next_action_at.date(), today) if state.next_action_at else today
    return first + timedelta(days=1), first + timedelta(days=rules.more_time_days)


def can_ask_more_time(state: DunningState, rules: SelfService) -> bool:
    return rules.more_time_days > 0 and not any(g.by == "customer" for g in state.grace)


def closed_outcome(facts: CaseFacts, state: DunningState | None) -> str | None:
    if facts.outcome:
        return facts.outcome
    if state is not None and state.status not in OPEN:
        return state.outcome.value if state.outcome else state.status.value
    return None


def asks_feedback(facts: CaseFacts, outcome: str | None) -> bool:
    return outcome in FEEDBACK_OUTCOMES and not facts.feedback_given
