"""The recovery report's customer side: feedback by reason, segment and outcome with the
response rate, the free-text answers for support, and the pre-dunning outcomes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session
from typer.testing import CliRunner

from models.ledger import CaseFeedback, PreDunningCase
from models.settings import Settings, get_settings
from models.store import Ledger
from starter.cli import app
from starter.support.report import compute_report
from tests.starter.test_support_console import console, logged_in

SINCE = datetime(2006, 2, 1, tzinfo=UTC)  # a month no other test seeds
UNTIL = datetime(2006, 3, 1, tzinfo=UTC)
LATER = datetime(2006, 4, 1, tzinfo=UTC)  # the second test's month
DAY = timedelta(days=1)


def seed(ledger: Ledger, since: datetime = SINCE) -> str:
    tag = uuid.uuid4().hex[:8]
    cases = [  # outcome, segment, feedback (reason, text)
        ("recovered", "smb", ("no_funds_until_payday", "Paid on the 15th <b>always</b>")),
        ("recovered", "smb", ("card_expired", None)),
        ("subscription_canceled", "ent", ("too_expensive", "Cheaper elsewhere")),
        ("recovered", "smb", None),
        ("stopped", "smb", None),  # support stopped it: not asked
    ]
    for n, (outcome, segment, answer) in enumerate(cases):
        invoice = f"in_fb_{tag}_{n}"
        ledger.open_case(
            invoice_id=invoice, workflow_id=f"dunning-{invoice}", customer_id=f"cus_fb_{tag}",
            amount_due=1000, currency="eur", policy="default", segment=segment,
            opened_at=since + n * DAY,
        )  # fmt: skip
        ledger.record_outcome(invoice, outcome, "eur", 1, 1000, closed_at=since + (n + 2) * DAY)
        if answer:
            with ledger.sessions.begin() as session:
                session.add(CaseFeedback(invoice_id=invoice, reason=answer[0], text=answer[1],
                                         answered_at=since + (n + 3) * DAY))  # fmt: skip
    with ledger.sessions.begin() as session:
        for n, status in enumerate(["card_updated", "card_updated", "failed_anyway", "warned"]):
            session.add(PreDunningCase(
                workflow_id=f"predunning-pm_{tag}{n}-2006-3", customer_id=f"cus_fb_{tag}",
                subscription_id="sub_x", payment_method_id=f"pm_{tag}{n}", exp_month=3,
                exp_year=2006, renews_at=since + 20 * DAY, status=status,
                opened_at=since + n * DAY,
            ))  # fmt: skip
    return tag


def test_feedback_and_predunning_figures(ledger: Ledger, settings: Settings) -> None:
    seed(ledger)
    with Session(ledger.engine) as session:
        report = compute_report(session, SINCE, UNTIL)
    feedback, warnings = report.feedback, report.predunning
    assert feedback is not None and warnings is not None
    assert (feedback.asked, feedback.answered, feedback.response_rate) == (4, 3, 0.75)
    assert {(r.reason, r.segment, r.outcome, r.answers) for r in feedback.by_reason} == {
        ("no_funds_until_payday", "smb", "recovered", 1),
        ("card_expired", "smb", "recovered", 1),
        ("too_expensive", "ent", "subscription_canceled", 1),
    }
    assert [t.text for t in feedback.recent_texts] == [
        "Cheaper elsewhere", "Paid on the 15th <b>always</b>"
    ]  # fmt: skip
    assert (warnings.warned, warnings.card_updated, warnings.failed_anyway, warnings.open) == (
        4, 2, 1, 1
    )  # fmt: skip
    assert warnings.saved_rate == round(2 / 3, 4)


async def test_the_console_and_the_cli_show_them(
    ledger: Ledger, settings: Settings, database_url: str, monkeypatch
) -> None:
    seed(ledger, LATER)
    http = await logged_in(console(settings, ledger))
    # The console's page covers every case (days=0); the figures are checked above.
    page = (await http.get("/support/report", params={"days": "0"})).text
    assert 'id="feedback"' in page and "no funds until payday" in page
    assert "<b>always</b>" not in page  # the customer's words are escaped
    assert 'id="predunning"' in page and "updated the card" in page
    assert "<title>Recovery report · Dunning support</title>" in page

    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    result = CliRunner().invoke(
        app, ["report", "--since", "2006-04-01", "--until", "2006-05-01"], env={"COLUMNS": "120"}
    )
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "Feedback: 3 of 4 asked answered (75.0%)" in result.output
    assert (
        "Cheaper elsewhere" in result.output and "Pre-dunning: 4 expiring card(s)" in result.output
    )
