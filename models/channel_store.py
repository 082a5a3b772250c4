"""What the channels keep beside the notifications: SMS opt-outs, the in-app feed and delivery
reports. Shared by the worker's activities and the API (Twilio webhooks, the in-app feed)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.ledger import Case, ChannelOptOut, Notification, utcnow
from models.store import insert_ignore

# Provider delivery reports only move a message forward: a late "sent" callback must not undo
# "delivered" (Twilio does not promise callbacks arrive in order).
DELIVERY_RANK = {"sent": 0, "delivered": 1, "undelivered": 1, "failed": 1}


class ChannelStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # Opt-outs, per channel and address (an SMS number in E.164).

    def set_opt_out(self, channel: str, address: str, opted_out: bool, source: str) -> None:
        values = {
            "channel": channel,
            "address": address,
            "opted_out": opted_out,
            "source": source[:40],
            "changed_at": utcnow(),
        }
        with self.sessions.begin() as session:
            if not insert_ignore(session, ChannelOptOut, values):
                session.execute(
                    update(ChannelOptOut)
                    .where(ChannelOptOut.channel == channel, ChannelOptOut.address == address)
                    .values(**values)
                )

    def is_opted_out(self, channel: str, address: str) -> bool:
        with self.sessions() as session:
            found = session.scalar(
                select(ChannelOptOut.opted_out).where(
                    ChannelOptOut.channel == channel, ChannelOptOut.address == address
                )
            )
            return bool(found)

    def customers_at(self, channel: str, address: str) -> list[str]:
        """Customers the case sent to at this address on this channel (who a STOP is from)."""
        with self.sessions() as session:
            rows = session.scalars(
                select(Case.customer_id)
                .join(Notification, Notification.invoice_id == Case.invoice_id)
                .where(Notification.channel == channel, Notification.to_address == address)
                .distinct()
            )
            return sorted(rows)

    def open_invoices_of(self, customers: list[str]) -> list[str]:
        """The invoices of these customers' open cases (the ledger's view, which a case joins
        at its first activity; Temporal's visibility may lag behind it)."""
        if not customers:
            return []
        with self.sessions() as session:
            rows = session.scalars(
                select(Case.invoice_id).where(
                    Case.customer_id.in_(customers), Case.closed_at.is_(None)
                )
            )
            return sorted(rows)

    # Delivery reports.

    def delivery_report(self, provider_message_id: str, status: str, error: str | None) -> bool:
        """Record the provider's delivery status of a sent message; False when unknown."""
        with self.sessions.begin() as session:
            row = session.scalars(
                select(Notification)
                .where(Notification.provider_message_id == provider_message_id)
                .with_for_update()
            ).first()
            if row is None:
                return False
            if DELIVERY_RANK.get(status, -1) >= DELIVERY_RANK.get(row.status, 0):
                row.status = status
                if error:
                    row.error = error
            return True

    # The in-app feed: the `in_app` notifications of a customer's cases.

    def feed(self, customer_id: str, limit: int = 50) -> Sequence[Notification]:
        with self.sessions() as session:
            return session.scalars(
                _in_app(customer_id)
                .order_by(Notification.created_at.desc(), Notification.id.desc())
                .limit(limit)
            ).all()

    def mark_read(self, customer_id: str, notification_id: int) -> Notification | None:
        """Mark one of the customer's notices read (the first read counts); None if not theirs."""
        with self.sessions.begin() as session:
            row = session.scalars(
                _in_app(customer_id).where(Notification.id == notification_id)
            ).one_or_none()
            if row is not None and row.read_at is None:
                row.read_at = utcnow()
            return row


def _in_app(customer_id: str) -> Select[Notification]:
    return (
        select(Notification)
        .join(Case, Case.invoice_id == Notification.invoice_id)
        .where(
            Case.customer_id == customer_id,
            Notification.channel == "in_app",
            Notification.status == "sent",
        )
    )


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive UTC datetimes."""
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment
