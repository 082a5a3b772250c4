"""The ledger's predunning_cases rows: written by the pre-dunning activities, read by the
webhook API (which warnings of a customer are still running) and the report."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from models.ledger import PreDunningCase
from models.predunning import ExpiringCard, PreDunningStatus
from models.store import insert_ignore


def record_predunning(
    sessions: sessionmaker[Session],
    workflow_id: str,
    card: ExpiringCard,
    status: PreDunningStatus,
    at: datetime,
) -> None:
    """Open the row (warned), or close it with how the warning ended. Idempotent: a retried
    write changes nothing, and a closed row is never reopened or closed a second way."""
    with sessions.begin() as session:
        insert_ignore(
            session,
            PreDunningCase,
            {
                "workflow_id": workflow_id,
                "customer_id": card.customer_id,
                "subscription_id": card.subscription_id,
                "payment_method_id": card.payment_method_id,
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
                "renews_at": card.renews_at,
                "status": PreDunningStatus.WARNED.value,
                "opened_at": at,
            },
        )
        if status != PreDunningStatus.WARNED:
            session.execute(
                update(PreDunningCase)
                .where(
                    PreDunningCase.workflow_id == workflow_id,
                    PreDunningCase.closed_at.is_(None),
                )
                .values(status=status.value, closed_at=at)
            )


def warned_workflows(sessions: sessionmaker[Session], customer_id: str) -> list[str]:
    """The customer's warnings still running: the ledger has them from their first activity,
    before Temporal's visibility lists them."""
    with sessions() as session:
        rows = session.scalars(
            select(PreDunningCase.workflow_id).where(
                PreDunningCase.customer_id == customer_id,
                PreDunningCase.status == PreDunningStatus.WARNED.value,
            )
        )
        return list(rows)
