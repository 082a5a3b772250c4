"""The console's case timeline shows what the customer did on the payment page and their
feedback, escaped like everything else the customer typed."""

from __future__ import annotations

from datetime import UTC, datetime

from models.ledger import CaseFeedback, CustomerAction
from models.settings import Settings
from models.store import Ledger
from standins.server import free_port
from tests.starter.test_support_console import console, logged_in, seed


async def test_payment_page_actions_and_feedback_are_in_the_timeline(
    settings: Settings, ledger: Ledger
) -> None:
    invoice = seed(ledger)
    at = datetime(2026, 3, 6, 9, 0, tzinfo=UTC)  # after the grace (day 4), before the outcome
    with ledger.sessions.begin() as session:
        session.add(
            CustomerAction(
                invoice_id=invoice, request_id=f"{invoice}-contact", action="contact",
                detail="Paid <b>Friday</b>?", result="our team will reply soon", at=at,
            )
        )  # fmt: skip
        session.add(CaseFeedback(invoice_id=invoice, reason="no_funds_until_payday", text="ok"))
    down = f"127.0.0.1:{free_port()}"  # the ledger alone tells it
    http = await logged_in(console(settings, ledger, temporal_address=down))

    page = (await http.get(f"/support/cases/{invoice}")).text
    assert "Customer asked to talk to a person" in page
    assert "Paid &lt;b&gt;Friday&lt;/b&gt;?" in page and "<b>Friday" not in page
    assert "Customer feedback: no funds until payday" in page
    positions = [page.index(m) for m in ("Grace granted", "talk to a person", "Case closed")]
    assert positions == sorted(positions)
