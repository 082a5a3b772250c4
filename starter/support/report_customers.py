"""The recovery report's customer side: what customers answered after their case closed, and
how the warnings before an expiring card went.

Feedback is counted over the cases opened in the report's window that ended where the page asks
the question (recovered, canceled, paused by the customer): the response rate is answers over
those cases. The free-text answers are listed for support to read, newest first.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from models.ledger import Case, CaseFeedback, CaseOutcome
from models.predunning_report import predunning_summary

# Where the payment page asks the question (starter/pay/feedback.py).
ASKED = ("recovered", "subscription_canceled", "paused_by_customer")
RECENT_TEXTS = 20


class FeedbackRow(BaseModel):
    reason: str
    segment: str | None = Field(description="the case's segment (DUNNING_RULES); null: none")
    outcome: str
    answers: int


class FeedbackText(BaseModel):
    invoice_id: str
    reason: str
    outcome: str | None
    text: str
    answered_at: datetime


class FeedbackSummary(BaseModel):
    asked: int = Field(description="cases that ended where the question is asked")
    answered: int
    response_rate: float | None
    by_reason: list[FeedbackRow]
    recent_texts: list[FeedbackText] = Field(description="free-text answers, newest first")


class PreDunningSummary(BaseModel):
    warned: int = Field(description="expiring cards warned about (warnings opened in the window)")
    card_updated: int = Field(description="the customer (or the bank's updater) changed card")
    renewed: int = Field(description="the renewal went through on the old card")
    failed_anyway: int = Field(description="the renewal failed: a dunning case took over")
    open: int = Field(description="still waiting for the renewal")
    saved_rate: float | None = Field(description="(card updated + renewed) / finished")


def feedback_summary(session: Session, window: list[ColumnElement[bool]]) -> FeedbackSummary:
    asked = select(CaseOutcome.invoice_id).join(Case, Case.invoice_id == CaseOutcome.invoice_id)
    asked = asked.where(CaseOutcome.outcome.in_(ASKED), *window)
    total = session.scalar(select(func.count()).select_from(asked.subquery())) or 0
    answered_in = CaseFeedback.invoice_id.in_(asked)
    grouped = session.execute(
        select(CaseFeedback.reason, Case.segment, CaseOutcome.outcome, func.count())
        .join(Case, Case.invoice_id == CaseFeedback.invoice_id)
        .join(CaseOutcome, CaseOutcome.invoice_id == CaseFeedback.invoice_id)
        .where(answered_in)
        .group_by(CaseFeedback.reason, Case.segment, CaseOutcome.outcome)
        .order_by(func.count().desc(), CaseFeedback.reason)
    ).all()
    rows = [
        FeedbackRow(reason=reason, segment=segment, outcome=outcome, answers=int(count))
        for reason, segment, outcome, count in grouped
    ]
    answered = sum(row.answers for row in rows)
    texts = session.execute(
        select(CaseFeedback, CaseOutcome.outcome)
        .join(CaseOutcome, CaseOutcome.invoice_id == CaseFeedback.invoice_id)
        .where(answered_in, CaseFeedback.text.is_not(None), CaseFeedback.text != "")
        .order_by(CaseFeedback.answered_at.desc(), CaseFeedback.id.desc())
        .limit(RECENT_TEXTS)
    ).all()
    return FeedbackSummary(
        asked=int(total),
        answered=answered,
        response_rate=round(answered / total, 4) if total else None,
        by_reason=rows,
        recent_texts=[
            FeedbackText(
                invoice_id=answer.invoice_id,
                reason=answer.reason,
                outcome=outcome,
                text=answer.text or "",
                answered_at=answer.answered_at,
            )
            for answer, outcome in texts
        ],
    )


def predunning(
    session: Session, since: datetime | None, until: datetime | None
) -> PreDunningSummary:
    start = since or datetime(1970, 1, 1, tzinfo=UTC)
    end = until or datetime(9999, 1, 1, tzinfo=UTC)
    figures = predunning_summary(session, start, end)
    return PreDunningSummary.model_validate(
        {key: figures[key] for key in PreDunningSummary.model_fields}
    )
