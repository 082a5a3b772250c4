"""Named Temporal UI list views for ops: each a visibility query as a link.

The Temporal UI keeps saved views and column choices in each browser, with no API to preset
them; these links open the same filtered lists, and the README says how to save them as views
and which columns to add (DunningStatus, DunningStep, CustomerId, AmountDue, NextActionAt).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from models.settings import Settings
from starter.support.service import ENDED_QUERY, list_query

RUNNING = "ExecutionStatus = 'Running'"


def named_queries(now: datetime | None = None, customer: str | None = None) -> dict[str, str]:
    """Name → visibility query, each limited to `customer` when given."""
    base = list_query(customer=customer)
    due = (now or datetime.now(UTC)) + timedelta(hours=24)
    views = {
        "Open cases": RUNNING,
        "Paused (waiting for support)": f"DunningStatus = 'paused' AND {RUNNING}",
        "Next action within 24 h": f"NextActionAt <= '{due.isoformat()}' AND {RUNNING}",
        "Recovered": "DunningStatus = 'recovered'",
        "Final action applied": "DunningStatus = 'canceled'",
        "Stopped": "DunningStatus = 'stopped'",
        "Ended with an error": "DunningStatus = 'error'",
        "Ended outside the workflow (terminated, timed out)": ENDED_QUERY,
    }
    return {name: f"{base} AND {clause}" for name, clause in views.items()}


def ui_links(
    settings: Settings, customer: str | None = None, now: datetime | None = None
) -> dict[str, str]:
    """Name → Temporal UI URL of the filtered workflow list."""
    namespace = quote(settings.temporal_namespace, safe="")
    root = f"{settings.temporal_ui_url.rstrip('/')}/namespaces/{namespace}/workflows"
    return {
        name: f"{root}?query={quote(query, safe='')}"
        for name, query in named_queries(now, customer).items()
    }
