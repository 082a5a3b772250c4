"""Notification claims: claim a dedupe key before sending, settle it after, so a retry can tell
what happened to the message."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from models.ledger import Notification, utcnow
from models.store import insert_ignore


class NotificationStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def claim(self, attempt: int, **values: Any) -> tuple[bool, Notification]:
        """Claim the dedupe key. Returns (claimed, row); not claimed means do not send."""
        with self.sessions.begin() as session:
            if insert_ignore(
                session, Notification, {**values, "status": "claimed", "claim_attempt": attempt}
            ):
                row = session.scalars(
                    select(Notification).where(Notification.dedupe_key == values["dedupe_key"])
                ).one()
                return True, row
            row = session.scalars(
                select(Notification)
                .where(Notification.dedupe_key == values["dedupe_key"])
                .with_for_update()
            ).one()
            if row.status == "failed_retryable":
                row.status, row.claim_attempt, row.error = "claimed", attempt, None
                return True, row
            if row.status == "claimed" and row.claim_attempt != attempt:
                # An earlier attempt claimed the key and never settled it: the worker died
                # between the HTTP call and the commit. SendGrid may have the message, so
                # sending again could duplicate it; at most once wins.
                row.status = "uncertain"
                row.error = f"attempt {row.claim_attempt} did not finish; not re-sent"
            return False, row

    def settle(self, dedupe_key: str, status: str, **values: Any) -> None:
        with self.sessions.begin() as session:
            extra = {"sent_at": utcnow()} if status == "sent" else {}
            session.execute(
                update(Notification)
                .where(Notification.dedupe_key == dedupe_key)
                .values(status=status, **values, **extra)
            )
