"""The recovery report by channel: what each channel sent, delivered, got read, and recovered.

Per channel, over the cases opened in the window: messages handed to the provider, those
with a delivery report saying delivered (Twilio's status callbacks, SendGrid's events),
messages read (in-app notices marked read, emails opened or clicked: engagement), and the
recovered cases that had received a message on that channel before they recovered.
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, and_, case, distinct, func, select
from sqlalchemy.orm import Session

from models.ledger import Case, CaseOutcome, Notification

# Handed to the provider (or stored, for in-app): a delivery report may follow.
SENT = ("sent", "delivered", "undelivered")
# Channels whose provider reports delivery (Twilio status callbacks, SendGrid's events).
DELIVERY_REPORTS = ("sms", "email")
# Channels whose reads are recorded (the in-app feed's mark-read, SendGrid opens and clicks).
READS = ("in_app", "email")


class ChannelRow(BaseModel):
    channel: str
    sent: int = Field(description="messages handed to the provider (in-app: stored)")
    delivered: int | None = Field(description="delivery reports said delivered; null: none")
    engaged: int | None = Field(description="read: in-app notices, opened emails; null: none")
    recovered_after: int = Field(
        description="recovered cases that had a message on this channel before recovering"
    )


def by_channel(session: Session, window: list[ColumnElement[bool]]) -> list[ChannelRow]:
    sent = Notification.status.in_(SENT)
    counts = session.execute(
        select(
            Notification.channel,
            func.count().filter(sent),
            func.count().filter(Notification.status == "delivered"),
            func.count().filter(Notification.read_at.is_not(None)),
        )
        .join(Case, Case.invoice_id == Notification.invoice_id)
        .where(*window)
        .group_by(Notification.channel)
    ).all()
    before = and_(
        CaseOutcome.outcome == "recovered",
        sent,
        case((Notification.sent_at.is_(None), Notification.created_at), else_=Notification.sent_at)
        < CaseOutcome.closed_at,
    )
    recovered = dict(
        session.execute(
            select(Notification.channel, func.count(distinct(Notification.invoice_id)))
            .join(Case, Case.invoice_id == Notification.invoice_id)
            .join(CaseOutcome, CaseOutcome.invoice_id == Notification.invoice_id)
            .where(before, *window)
            .group_by(Notification.channel)
        ).all()
    )
    return [
        ChannelRow(
            channel=channel,
            sent=int(n_sent),
            delivered=int(n_delivered) if channel in DELIVERY_REPORTS else None,
            engaged=int(n_read) if channel in READS else None,
            recovered_after=int(recovered.get(channel, 0)),
        )
        for channel, n_sent, n_delivered, n_read in sorted(counts)
    ]
