"""The one question after a case's outcome: why the payment failed, or why they leave.

Stored by the API straight in the ledger (`case_feedback`, one row per invoice): the case is
closed, so there is no workflow to ask. A second answer is refused by the unique invoice id,
not by a read first, so two tabs submitting at once still store one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import get_args

from starlette.concurrency import run_in_threadpool

from models.customer_actions import FeedbackReason
from models.ledger import CaseFeedback
from models.store import Ledger, insert_ignore

REASONS: tuple[str, ...] = get_args(FeedbackReason)
MAX_TEXT = 1000


def parse(form: dict[str, str]) -> tuple[str, str | None] | None:
    """(reason, optional text) from the form, or None when the reason is not one we offer."""
    reason, text = form.get("reason", ""), form.get("text", "").strip()
    if reason not in REASONS or len(text) > MAX_TEXT:
        return None
    return reason, text or None


async def store(
    ledger: Ledger, invoice_id: str, outcome: str, reason: str, text: str | None
) -> bool:
    """True when this is the case's first answer."""
    values = {
        "invoice_id": invoice_id,
        "reason": reason,
        "text": text,
        "outcome": outcome,
        "answered_at": datetime.now(UTC),
    }

    def insert() -> bool:
        with ledger.sessions.begin() as session:
            return insert_ignore(session, CaseFeedback, values)

    return await run_in_threadpool(insert)
