"""Notification claims: claim a dedupe key before sending, settle it after, so a retry can tell
what happened to the message.

`created_at` is the time of the latest claim (a re-claim moves it), because it dates the send
attempt whose fate a later attempt may have to ask SendGrid about (activities/email.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, bindparam, case, null, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.channel_store import IS_OPTED_OUT, OPTED_OUT, optout_params
from models.ledger import Case, Notification, utcnow
from models.store import insert_ignore, statements, table_of, upsert_of

# A claim this old that was never settled: its attempt died (an attempt settles its claim
# within its start-to-close timeout of 60 s, or leaves it to the next attempt).
UNSETTLED_AFTER = timedelta(minutes=10)
# Ends the error of an `uncertain` message that nobody can settle by asking the provider
# (no Email Activity API on the account): it waits for a person, not for the claim sweep.
NEEDS_A_LOOK = "needs a look"


class Refusal(NamedTuple):
    """A reason not to send: the address opted out of the channel, which the claim reads
    inside its own INSERT (channel_store.OPTED_OUT), and `reason`, what the row then says."""

    channel: str
    address: str
    reason: str

    def params(self) -> dict[str, str]:
        return {**optout_params(self.channel, self.address), "optout_reason": self.reason}


class NotificationStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.statements = statements(sessions)

    def claim(
        self, attempt: int, unless: Refusal | None = None, **values: Any
    ) -> tuple[bool, Notification]:
        """Claim the dedupe key. Returns (claimed, row); not claimed means do not send.

        `unless` may name a reason not to send (the address opted out): a key this attempt
        claims while its condition holds is written `opted_out` with that reason, and the row
        comes back claimed with that status. Should the connection die after the INSERT
        landed, its rerun (models.store.Statements) finds the key held, as after any
        unfinished attempt: the provider is asked before anything is sent.
        """
        fresh = self.statements.run(lambda conn: fresh_claim(conn, attempt, unless, values))
        if fresh is not None:
            return True, fresh
        with self.sessions.begin() as session:
            claimed, row = self._held(session, attempt, values)
            if claimed and unless is not None and session.scalar(IS_OPTED_OUT, unless.params()):
                row.status, row.error = "opted_out", unless.reason
            return claimed, row

    def _held(
        self, session: Session, attempt: int, values: dict[str, Any]
    ) -> tuple[bool, Notification]:
        """A key that exists: an earlier attempt's claim, read and changed under a row lock."""
        row = session.scalars(
            select(Notification)
            .where(Notification.dedupe_key == values["dedupe_key"])
            .with_for_update()
        ).one()
        if row.status == "failed_retryable":
            row.status, row.claim_attempt, row.error = "claimed", attempt, None
            row.created_at = utcnow()
            return True, row
        if row.status == "claimed":
            # An earlier execution claimed the key and never settled it: the worker died
            # around the HTTP call. The provider may or may not have the message; the caller
            # must find out before sending again. Whatever its attempt number: a local
            # activity run again after a worker crash starts over at attempt 1.
            row.status = "uncertain"
            row.error = f"attempt {row.claim_attempt} did not finish"
        return False, row

    def record(self, **values: Any) -> bool:
        """Write a message that needs no provider call (the in-app feed) in one transaction;
        False when its dedupe key exists already (a retry)."""
        with self.sessions.begin() as session:
            extra = {"sent_at": utcnow()} if values.get("status") == "sent" else {}
            return insert_ignore(session, Notification, {**values, **extra})

    def reclaim_uncertain(self, dedupe_key: str, attempt: int) -> bool:
        """Claim an `uncertain` key again once SendGrid is known not to have the message.

        False when the row is no longer uncertain (another attempt resolved it meanwhile)."""
        with self.sessions.begin() as session:
            result = session.execute(
                update(Notification)
                .where(Notification.dedupe_key == dedupe_key, Notification.status == "uncertain")
                .values(status="claimed", claim_attempt=attempt, error=None, created_at=utcnow())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def unresolved(
        self,
        claimed_for: timedelta = UNSETTLED_AFTER,
        invoice_id: str | None = None,
        limit: int = 200,
        now: datetime | None = None,
    ) -> Sequence[Notification]:
        """Messages nobody can vouch for, oldest first: `uncertain` ones (SendGrid could not be
        asked, or has not answered yet) and `claimed` ones older than `claimed_for` (an attempt
        that died and was never retried). For the report and the console."""
        stale = (now or utcnow()) - claimed_for
        condition = or_(
            Notification.status == "uncertain",
            and_(Notification.status == "claimed", Notification.created_at < stale),
        )
        query = select(Notification).where(condition)
        if invoice_id is not None:
            query = query.where(Notification.invoice_id == invoice_id)
        with self.sessions() as session:
            return session.scalars(
                query.order_by(Notification.created_at, Notification.id).limit(limit)
            ).all()

    def settle(self, dedupe_key: str, status: str, **values: Any) -> None:
        self._settle(SETTLE, {"settle_key": dedupe_key}, status, values)

    def settle_sent(self, dedupe_key: str, provider_message_id: str | None) -> None:
        """Settle as `sent` the email this attempt claimed and SendGrid just accepted, without
        holding up the case (models/later.py): the write lands a moment later, long before
        SendGrid's Event Webhook names the message (it posts its events in batches). Only
        while the row is still `claimed` (or `uncertain`: an attempt that found the claim
        unsettled meanwhile is asking the provider), so it never undoes a delivery report.
        Lost with the worker, it is mended as any unsettled claim is (the claim sweep)."""
        params = {
            "settle_key": dedupe_key,
            **settled_values("sent", {"provider_message_id": provider_message_id}),
        }
        self.statements.run_later(
            lambda conn: conn.execute(SETTLE_ACCEPTED, params), f"the sent settle of {dedupe_key}"
        )

    def _settle(self, statement: Any, where: dict[str, Any], status: str, values: Any) -> bool:
        # One UPDATE to fixed values, in autocommit (models.store.Statements).
        params = {**where, **settled_values(status, values)}
        return self.statements.run(lambda conn: bool(conn.execute(statement, params).rowcount))

    def stale_claims(
        self,
        older_than: timedelta,
        channels: Sequence[str],
        invoices: Sequence[str] = (),
        limit: int = 200,
    ) -> list[tuple[Notification, str]]:
        """Messages on `channels` (of `invoices`, if given) whose attempt started over
        `older_than` ago and that no attempt settled: still `claimed` (the attempt died),
        `uncertain` and left for a later attempt to ask the provider (a timeout, or a claim
        found unfinished), or `failed_retryable` and left for a later attempt to send (the
        provider answered 5xx, and the case may have ended during the backoff). Oldest first,
        each with its case's workflow id."""
        stale = utcnow() - older_than
        waiting = and_(
            Notification.status == "uncertain",
            or_(Notification.error.is_(None), ~Notification.error.endswith(NEEDS_A_LOOK)),
        )
        query = (
            select(Notification, Case.workflow_id)
            .join(Case, Case.invoice_id == Notification.invoice_id)
            .where(
                or_(Notification.status.in_(("claimed", "failed_retryable")), waiting),
                Notification.created_at < stale,
                Notification.channel.in_(list(channels)),
            )
            .order_by(Notification.created_at, Notification.id)
            .limit(limit)
        )
        if invoices:
            query = query.where(Notification.invoice_id.in_(list(invoices)))
        with self.sessions() as session:
            return [(row, workflow_id) for row, workflow_id in session.execute(query)]

    def settle_claim(self, seen: Notification, status: str, **values: Any) -> bool:
        """Settle a message as `seen` only if no attempt touched it since it was read (same
        status and claim time): False when an attempt got there first."""
        seen_as = {
            "settle_key": seen.dedupe_key,
            "seen_status": seen.status,
            "seen_created_at": seen.created_at,
        }
        return self._settle(SETTLE_UNCHANGED, seen_as, status, values)


def fresh_claim(
    conn: Connection, attempt: int, unless: Refusal | None, values: dict[str, Any]
) -> Notification | None:
    """The usual claim, of a key nobody holds (NotificationStore.claim runs it in autocommit,
    models.store.Statements): one INSERT that returns the row, or None when the key is held.
    The refusal is read inside it, so a claim is one round trip to the database."""
    params = {**values, "claim_attempt": attempt}
    if unless is None:
        params["status"] = "claimed"
    else:
        params.update(unless.params())
    row = conn.execute(_claim(conn.dialect.name, unless is not None), params).first()
    return None if row is None else Notification(**row._mapping)


_NOTIFICATIONS = table_of(Notification)


@cache
def _claim(dialect: str, refusing: bool) -> Any:
    # Built once per dialect, the values passed at execution: building the INSERT and its
    # cache key for every message cost more of the worker's CPU than running it.
    insert = upsert_of(dialect)(_NOTIFICATIONS)
    if refusing:
        insert = insert.values(
            status=case((OPTED_OUT, "opted_out"), else_="claimed"),
            error=case((OPTED_OUT, bindparam("optout_reason")), else_=null()),
        )
    return insert.on_conflict_do_nothing().returning(*_NOTIFICATIONS.c)


# Settle a message by its key; or only if no attempt touched it since it was read (its status
# and claim time as seen). The new values are passed at execution (`settled_values`).
SETTLE = update(_NOTIFICATIONS).where(_NOTIFICATIONS.c.dedupe_key == bindparam("settle_key"))
SETTLE_ACCEPTED = SETTLE.where(_NOTIFICATIONS.c.status.in_(("claimed", "uncertain")))
SETTLE_UNCHANGED = SETTLE.where(
    _NOTIFICATIONS.c.status == bindparam("seen_status"),
    _NOTIFICATIONS.c.created_at == bindparam("seen_created_at"),
)


def settled_values(status: str, values: dict[str, Any]) -> dict[str, Any]:
    """The columns a settle writes: the status, and when it was sent."""
    extra = {"sent_at": utcnow()} if status == "sent" else {}
    return {"status": status, **values, **extra}
