"""What the channels keep beside the notifications: opt-outs, the in-app feed and delivery
reports. Shared by the worker's activities and the API (Twilio and SendGrid webhooks, the
in-app feed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, bindparam, exists, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.ledger import Case, ChannelOptOut, Notification, utcnow
from models.store import insert_ignore

# Provider delivery reports only move a message forward: a late "sent" callback must not undo
# "delivered" (neither Twilio nor SendGrid promise their webhooks arrive in order). "failed"
# ranks last: SendGrid may report a bounce after "delivered" (the receiving server accepted
# the message, then bounced it), while a "delivered" after a bounce is one that arrived late.
DELIVERY_RANK = {"sent": 0, "delivered": 1, "undelivered": 1, "failed": 2}


@dataclass(frozen=True)
class EmailReport:
    """One SendGrid event on an email: a delivery status, or engagement (an open, a click)."""

    sg_message_id: str
    status: str | None = None
    error: str | None = None
    engaged_at: datetime | None = None


class ChannelStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    # Opt-outs, per channel and address (an SMS number in E.164, an email address in lower case).

    def set_opt_out(
        self,
        channel: str,
        address: str,
        opted_out: bool,
        source: str,
        at: datetime | None = None,
    ) -> bool:
        """Record the address's choice; False when it changed nothing. `at` dates the choice
        when the provider does (SendGrid's event timestamp): an event as old as or older than
        the recorded one is a repeat or arrived late, and changes nothing."""
        address = _address(channel, address)
        values = {
            "channel": channel,
            "address": address,
            "opted_out": opted_out,
            "source": source[:40],
            "changed_at": at or utcnow(),
        }
        with self.sessions.begin() as session:
            if insert_ignore(session, ChannelOptOut, values):
                return True
            stmt = update(ChannelOptOut).where(
                ChannelOptOut.channel == channel, ChannelOptOut.address == address
            )
            if at is not None:
                stmt = stmt.where(ChannelOptOut.changed_at < at)
            changed = session.execute(stmt.values(**values).returning(ChannelOptOut.id))
            return changed.first() is not None

    def is_opted_out(self, channel: str, address: str) -> bool:
        with self.sessions() as session:
            return bool(session.scalar(IS_OPTED_OUT, optout_params(channel, address)))

    def customers_at(self, channel: str, address: str) -> list[str]:
        """Customers the case sent to at this address on this channel (who a STOP is from)."""
        sent_to = Notification.to_address
        if channel == "email":
            sent_to = func.lower(sent_to)  # type: ignore[assignment]
        with self.sessions() as session:
            rows = session.scalars(
                select(Case.customer_id)
                .join(Notification, Notification.invoice_id == Case.invoice_id)
                .where(Notification.channel == channel, sent_to == _address(channel, address))
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
            _advance(row, status, error)
            return True

    def email_reports(self, reports: Sequence[EmailReport]) -> list[bool]:
        """Apply SendGrid's events to their emails, in order, in one transaction (a batch may
        hold thousands); for each, False when the message is not ours.

        SendGrid's sg_message_id is the X-Message-Id the send stored, then "." and its own
        suffix; an email settled from the Email Activity API stored that full msg_id instead.
        An open or a click is engagement (`engaged_at`): the first one sets `read_at`, as
        reading an in-app notice does, and the status stays as it is."""
        wanted = {r.sg_message_id for r in reports} | {_send_id(r) for r in reports}
        with self.sessions.begin() as session:
            # Locked in id order: two batches naming the same emails cannot deadlock.
            rows = session.scalars(
                select(Notification)
                .where(
                    Notification.channel == "email",
                    Notification.provider_message_id.in_(wanted),
                )
                .order_by(Notification.id)
                .with_for_update()
            ).all()
            by_id = {row.provider_message_id: row for row in rows}
            found = []
            for report in reports:
                row = by_id.get(_send_id(report)) or by_id.get(report.sg_message_id)
                found.append(row is not None)
                if row is None:
                    continue
                if report.status is not None:
                    _advance(row, report.status, report.error)
                if report.engaged_at is not None and row.read_at is None:
                    row.read_at = report.engaged_at
            return found

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


def _advance(row: Notification, status: str, error: str | None) -> None:
    if DELIVERY_RANK.get(status, -1) >= DELIVERY_RANK.get(row.status, 0):
        row.status = status
        if error:
            row.error = error


def _send_id(report: EmailReport) -> str:
    return report.sg_message_id.split(".", 1)[0]


# The SQL condition "the address opted out of the channel", for a statement to evaluate with
# `optout_params` (the message claim reads it inside its INSERT: models/notification_store.py).
# Built once with parameters, so each statement that uses it is compiled once.
OPTED_OUT: ColumnElement[bool] = exists().where(
    ChannelOptOut.channel == bindparam("optout_channel"),
    ChannelOptOut.address == bindparam("optout_address"),
    ChannelOptOut.opted_out.is_(True),
)
IS_OPTED_OUT = select(OPTED_OUT)


def optout_params(channel: str, address: str) -> dict[str, str]:
    """The values of OPTED_OUT's parameters for this channel and address."""
    return {"optout_channel": channel, "optout_address": _address(channel, address)}


def _address(channel: str, address: str) -> str:
    # Email addresses are compared without case: SendGrid's events may not spell the address
    # as the send did, and a mailbox is one whatever the case of its name.
    return address.strip().lower() if channel == "email" else address
