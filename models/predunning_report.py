"""Pre-dunning in numbers, for the recovery report: how the warnings opened in a window ended."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.ledger import PreDunningCase
from models.predunning import PreDunningStatus


def predunning_summary(session: Session, since: datetime, until: datetime) -> dict[str, Any]:
    """Warnings opened in [since, until) and how they ended so far.

    `warned` counts every warning sent; `card_updated` the customers who changed card before
    the renewal (or whose bank's updater did), `renewed` the renewals that went through on the
    old card, `failed_anyway` those that failed (a dunning case took over), `open` the ones
    still waiting for their renewal. `saved_rate` is (card_updated + renewed) / closed.
    """
    rows = session.execute(
        select(PreDunningCase.status, func.count())
        .where(PreDunningCase.opened_at >= since, PreDunningCase.opened_at < until)
        .group_by(PreDunningCase.status)
    ).all()
    counts = {str(status): int(count) for status, count in rows}
    card_updated = counts.get(PreDunningStatus.CARD_UPDATED.value, 0)
    renewed = counts.get(PreDunningStatus.RENEWED.value, 0)
    failed = counts.get(PreDunningStatus.FAILED_ANYWAY.value, 0)
    closed = card_updated + renewed + failed
    return {
        "since": since.isoformat(),
        "until": until.isoformat(),
        "warned": sum(counts.values()),
        "card_updated": card_updated,
        "renewed": renewed,
        "failed_anyway": failed,
        "open": counts.get(PreDunningStatus.WARNED.value, 0),
        "saved_rate": round((card_updated + renewed) / closed, 4) if closed else None,
    }
