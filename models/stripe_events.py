"""Every Stripe event we received, claimed before we act on it: exactly-once effect per event.

Stripe delivers each event at least once, may deliver it again after a 2xx (network errors,
manual resends) and may deliver copies concurrently (https://docs.stripe.com/webhooks
"Handle duplicate events": log the event ids you have processed and do not process them again).
A row is the claim: `INSERT ... ON CONFLICT (event_id) DO NOTHING` lets exactly one request own
an event; the others see its status and answer without acting.

The row is also the outbox: a delivery is answered 2xx once its verified body is committed
(`accept_many`). The accepting process usually applies it itself at once (the row is kept as
`processing`, with a lease); otherwise it is kept `queued` and a relay's sweep `take`s it
(starter/webhooks/relay.py). Either way `finish` records the result and clears the body.
Status: queued | processing -> done | ignored, or -> failed (Temporal unreachable, an error)
and due again at `next_try_at`; a `processing` row whose lease ran out (the process applying
it died) is due again as well.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Boolean, Index, Integer, String, Text, select, text, update
from sqlalchemy.orm import Mapped, Session, load_only, mapped_column, sessionmaker

from models.ledger import Base, aware, utcnow
from models.store import upsert_for

EventStatus = Literal["queued", "processing", "done", "ignored", "failed"]
FINAL_STATUSES = ("done", "ignored")
# Longer than any single processing run (each Temporal call is bounded to a few seconds), so
# a live claim is never taken over; short enough that Stripe's next redelivery (minutes later)
# can finish what a crashed process left.
CLAIM_LEASE = timedelta(minutes=2)


QUEUED_STATUSES = ("queued", "processing", "failed")


class StripeEvent(Base):
    __tablename__ = "stripe_events"
    __table_args__ = (
        # The relay's queue: only rows still to apply, by when they are due (migration 0005).
        Index(
            "ix_stripe_events_queue",
            "next_try_at",
            postgresql_where=text("status IN ('queued', 'processing', 'failed')"),
            sqlite_where=text("status IN ('queued', 'processing', 'failed')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(100), index=True)
    api_version: Mapped[str | None] = mapped_column(String(50))
    livemode: Mapped[bool] = mapped_column(Boolean, default=False)
    # The id of data.object (invoice, subscription, customer ...), to find an object's events.
    object_id: Mapped[str | None] = mapped_column(String(255), index=True)
    event_created: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    processed_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), index=True)
    # What was done, e.g. "started dunning-in_1", "no running case for dunning-in_1".
    action: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    deliveries: Mapped[int] = mapped_column(Integer, default=1)
    # The outbox (migration 0005): the verified body until the relay has applied it.
    payload: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_try_at: Mapped[datetime | None]


@dataclass(frozen=True)
class Claim:
    """`owned`: this request must process the event. Otherwise `status` says why not."""

    owned: bool
    status: str
    action: str | None = None


class StripeEventStore:
    """Short synchronous transactions; call them from a thread pool in async code."""

    def __init__(self, sessions: sessionmaker[Session], lease: timedelta = CLAIM_LEASE) -> None:
        self.sessions = sessions
        self.lease = lease

    def _row(
        self, *, event_id: str, payload: str, status: str = "queued", **values: Any
    ) -> dict[str, Any]:
        now = utcnow()
        pending = status in ("queued", "processing")
        due = now + self.lease if status == "processing" else now
        return {
            "event_id": event_id,
            "payload": payload if pending else None,
            "status": status,
            "received_at": now,
            "claimed_at": now,
            "processed_at": None if pending else now,
            "next_try_at": due if pending else None,
            "deliveries": 1,
            "attempts": 1 if status == "processing" else 0,
            **values,
        }

    def accept_many(self, rows: list[dict[str, Any]]) -> list[Claim | None]:
        """Keep a batch of verified events in one transaction (one commit, one WAL flush, for
        every delivery that arrived while the previous batch was committing).

        Each row is one delivery: `event_id`, `payload`, `status` and the event's columns.
        `status="processing"`: the accepting process applies it itself, now; its lease makes
        it due for the sweep only if that process dies first. `queued`: due at once.

        Per row, in order: None when this call kept the event (the first copy of an id not
        seen before), else the Claim of a redelivery (counted in `deliveries`).
        """
        built = [self._row(**row) for row in rows]
        first: dict[str, dict[str, Any]] = {}
        for row in built:
            first.setdefault(row["event_id"], row)
        with self.sessions.begin() as session:
            # Rows as parameters, not in the statement: SQLAlchemy compiles it once (cached)
            # and sends them as multi-row VALUES ("insertmanyvalues").
            keep = upsert_for(session)(StripeEvent).on_conflict_do_nothing()
            kept = set(session.scalars(keep.returning(StripeEvent.event_id), list(first.values())))
            repeats = Counter(row["event_id"] for row in built)
            for event_id in kept:
                repeats[event_id] -= 1  # the copy that was kept is not a redelivery
            redelivered = [event_id for event_id, n in repeats.items() if n > 0]
            existing = (
                {
                    event.event_id: event
                    for event in session.scalars(
                        select(StripeEvent)
                        .options(
                            load_only(
                                StripeEvent.status, StripeEvent.action, StripeEvent.deliveries
                            )
                        )
                        .where(StripeEvent.event_id.in_(redelivered))
                        .with_for_update()
                    )
                }
                if redelivered
                else {}
            )
            for event_id, event in existing.items():
                event.deliveries += repeats[event_id]
            answers: list[Claim | None] = []
            for row in built:
                event_id = row["event_id"]
                if event_id in kept:
                    kept.discard(event_id)
                    answers.append(None)
                elif event_id in existing:
                    found = existing[event_id]
                    answers.append(Claim(owned=False, status=found.status, action=found.action))
                else:  # removed meanwhile (a purge): the copy is treated as new
                    answers.append(None)
            return answers

    def take(self, event_id: str) -> str | None:
        """Claim a queued (or due failed, or abandoned) event for the relay; its body, or None
        if another relay has it or it is done."""
        now = utcnow()
        with self.sessions.begin() as session:
            row = session.scalars(
                select(StripeEvent)
                .where(StripeEvent.event_id == event_id)
                .with_for_update(skip_locked=True)
            ).one_or_none()
            if row is None or row.payload is None or row.status in FINAL_STATUSES:
                return None
            if row.status == "processing" and aware(row.claimed_at) > now - self.lease:
                return None  # another relay is applying it right now
            row.status, row.claimed_at, row.attempts = "processing", now, row.attempts + 1
            row.next_try_at = now + self.lease  # due again only if this relay dies
            return row.payload

    def due(self, limit: int) -> list[str]:
        """Event ids the relay should (re)try now, oldest first."""
        now = utcnow()
        with self.sessions() as session:
            rows = session.scalars(
                select(StripeEvent.event_id)
                .where(
                    StripeEvent.status.in_(QUEUED_STATUSES),
                    StripeEvent.payload.is_not(None),
                    StripeEvent.next_try_at <= now,
                )
                .order_by(StripeEvent.next_try_at)
                .limit(limit)
            )
            return list(rows)

    def due_now(self, error_prefix: str) -> int:
        """Events that failed with `error_prefix` (e.g. Temporal down) are due at once."""
        with self.sessions.begin() as session:
            result = session.execute(
                update(StripeEvent)
                .where(
                    StripeEvent.status == "failed",
                    StripeEvent.payload.is_not(None),
                    StripeEvent.error.startswith(error_prefix),
                )
                .values(next_try_at=utcnow())
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def attempts(self, event_id: str) -> int:
        with self.sessions() as session:
            count = session.scalar(
                select(StripeEvent.attempts).where(StripeEvent.event_id == event_id)
            )
            return int(count or 0)

    def retry_later(self, event_id: str, error: str, delay: timedelta) -> None:
        self._set(event_id, status="failed", error=error[:2000], next_try_at=utcnow() + delay)

    def finish(self, event_id: str, status: EventStatus, action: str) -> None:
        # The body carries customer data: kept only until the event is applied.
        self._set(
            event_id,
            status=status,
            action=action,
            error=None,
            processed_at=utcnow(),
            payload=None,
            next_try_at=None,
        )

    def fail(self, event_id: str, error: str, action: str | None = None) -> None:
        self._set(event_id, status="failed", action=action, error=error[:2000])

    def _set(self, event_id: str, **values: Any) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(StripeEvent).where(StripeEvent.event_id == event_id).values(**values)
            )
