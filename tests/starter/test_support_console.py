"""The support console over HTTP (ASGI transport): login, CSRF, ledger search, the case page."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from models.notification_store import NotificationStore
from models.settings import Settings
from models.store import Ledger
from standins.server import free_port
from starter.app import create_app
from starter.cases import start_case
from starter.support.console import install_console
from tests.deadline import eventually
from tests.standin_control import StripeControl
from tests.workflows.helpers import INSUFFICIENT

TOKEN = "console-test-token"


def console(
    settings: Settings, ledger: Ledger, client: Client | None = None, **extra: Any
) -> FastAPI:
    settings = settings.model_copy(update={"dunning_support_token": TOKEN, **extra})
    app = create_app(settings, client=client, ledger=ledger, temporal_timeout=2)
    return app


def browser(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://c.test")


async def logged_in(app: FastAPI) -> httpx.AsyncClient:
    http = browser(app)
    response = await http.post("/support/login", data={"token": TOKEN})
    assert response.status_code == 303
    return http


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]{32}\.[0-9a-f]{64})"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def seed(ledger: Ledger, **case: Any) -> str:
    """A closed case written straight into the ledger, with one of each timeline entry."""
    invoice = case.pop("invoice_id", f"in_{uuid.uuid4().hex[:12]}")
    t0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    values = {
        "workflow_id": f"dunning-{invoice}",
        "customer_id": f"cus_{uuid.uuid4().hex[:10]}",
        "customer_email": "someone@example.com",
        "customer_name": "<b>Ann</b> & co",
        "amount_due": 123456,
        "currency": "eur",
        "policy": "default",
        "first_decline_code": "insufficient_funds",
        "opened_at": t0,
    }
    ledger.open_case(invoice_id=invoice, **{**values, **case})
    ledger.record_attempt(
        invoice_id=invoice, attempt_no=1, idempotency_key=f"{invoice}-1", trigger="schedule",
        step=1, outcome="declined", decline_code="card_velocity_exceeded",
        attempted_at=t0 + timedelta(days=1),
    )  # fmt: skip
    key = f"{invoice}:payment_failed"
    NotificationStore(ledger.sessions).claim(
        1, invoice_id=invoice, dedupe_key=key, template="payment_failed", level="friendly",
        created_at=t0 + timedelta(days=3),
    )  # fmt: skip
    NotificationStore(ledger.sessions).settle(
        key, "sent", subject="Your payment <failed>", body_text="Hi <script>alert(1)</script>"
    )
    ledger.record_support_action(
        invoice_id=invoice, request_id=f"{invoice}-grace", action="grant_grace", by="bob",
        reason="customer on holiday", days=5, via="update", result="granted 5 days",
        at=t0 + timedelta(days=4),
    )  # fmt: skip
    ledger.record_outcome(invoice, "recovered", "eur", 2, 123456, 2, t0 + timedelta(days=8))
    return invoice


def test_refuses_to_start_without_a_token_outside_dev_mode(settings: Settings) -> None:
    app = FastAPI()
    with pytest.raises(RuntimeError, match="DUNNING_SUPPORT_TOKEN"):
        install_console(app, settings.model_copy(update={"dunning_support_token": ""}))


async def test_dev_mode_without_token_is_open_but_still_checks_csrf(
    settings: Settings, ledger: Ledger
) -> None:
    app = console(settings, ledger, dunning_support_token="", dunning_env="dev")
    http = browser(app)
    assert (await http.get("/support")).status_code == 200
    refused = await http.post("/support/cases/in_x/pause", data={"reason": "r", "by": "b"})
    assert refused.status_code == 403


async def test_login_sets_a_signed_strict_cookie_and_every_page_needs_it(
    settings: Settings, ledger: Ledger
) -> None:
    app = console(settings, ledger)
    http = browser(app)
    response = await http.get("/support", params={"q": "x"})
    assert response.status_code == 303
    assert response.headers["location"] == "/support/login?next=/support%3Fq%3Dx"
    assert (await http.get("/support/report")).status_code == 303
    assert (await http.post("/support/cases/in_x/stop")).status_code == 303

    wrong = await http.post("/support/login", data={"token": "nope"})
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
    ok = await http.post("/support/login", data={"token": TOKEN, "next": "https://evil.test/"})
    assert (ok.status_code, ok.headers["location"]) == (303, "/support")
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/support" in cookie
    page = await http.get("/support")
    assert page.status_code == 200 and "no-store" in page.headers["cache-control"]
    assert "default-src 'none'" in page.headers["content-security-policy"]  # no script at all

    # A forged or an old cookie is no session.
    value = http.cookies["dunning_console"]
    issued = str(int(time.time()) - 13 * 3600)
    old = f"{issued}.{app.state.console.sign('session', issued)}"
    for bad in (value[:-1] + ("0" if value[-1] != "0" else "1"), old):
        http.cookies.clear()
        http.cookies.set("dunning_console", bad, domain="c.test", path="/support")
        assert (await http.get("/support")).status_code == 303


async def test_logout_needs_the_csrf_token(settings: Settings, ledger: Ledger) -> None:
    http = await logged_in(console(settings, ledger))
    token = csrf((await http.get("/support")).text)
    assert (await http.post("/support/logout", data={"csrf": "0" * 64})).status_code == 403
    assert (await http.post("/support/logout", data={"csrf": token})).status_code == 303
    assert (await http.get("/support")).status_code == 303


async def test_search_finds_cases_in_the_ledger(settings: Settings, ledger: Ledger) -> None:
    email = f"Ann.{uuid.uuid4().hex[:6]}@Example.com"
    customer = f"cus_{uuid.uuid4().hex[:10]}"
    first = seed(ledger, customer_email=email, customer_id=customer)
    second = seed(ledger, customer_email=email, customer_id=customer, currency="jpy")
    http = await logged_in(console(settings, ledger))

    page = (await http.get("/support", params={"q": email.lower().upper()})).text
    assert first in page and second in page
    assert "1,234.56" in page and "123,456" in page and "JPY" in page and "recovered" in page
    assert "&lt;b&gt;Ann&lt;/b&gt; &amp; co" in page and "<b>Ann" not in page
    assert second in (await http.get("/support", params={"q": customer})).text
    by_invoice = (await http.get("/support", params={"q": f" {first} "})).text
    assert first in by_invoice and second not in by_invoice
    partial = (await http.get("/support", params={"q": email[:-4]})).text
    assert first not in partial and "No case matches" in partial


async def test_case_page_shows_the_ledger_timeline_while_temporal_is_down(
    settings: Settings, ledger: Ledger
) -> None:
    invoice = seed(ledger)
    down = f"127.0.0.1:{free_port()}"
    app = console(settings, ledger, temporal_address=down, temporal_ui_url="http://ui.test/")
    http = await logged_in(app)

    response = await http.get(f"/support/cases/{invoice}")
    page = response.text
    assert response.status_code == 200 and "Live status is unavailable" in page
    order = [
        "Case opened",
        "decline <code>card_velocity_exceeded</code>",
        "Your payment &lt;failed&gt;",
        "Grace granted: +5 days",
        "Case closed: recovered",
    ]
    positions = [page.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert 'by <span class="who">bob</span>' in page and "customer on holiday" in page
    assert "Hi &lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert f'href="http://ui.test/namespaces/default/workflows/dunning-{invoice}"' in page
    assert 'id="actions"' not in page  # no live state: nothing to act on


async def test_unknown_invoice_is_a_404_page(
    dev_env: WorkflowEnvironment, settings: Settings, ledger: Ledger
) -> None:
    http = await logged_in(console(settings, ledger, dev_env.client))
    response = await http.get("/support/cases/in_nope_console")
    assert response.status_code == 404
    assert "no dunning case exists for invoice in_nope_console" in response.text


async def test_actions_on_a_live_case(
    dev_env: WorkflowEnvironment, run_worker: Any, settings: Settings, ledger: Ledger
) -> None:
    client = dev_env.client
    http = await logged_in(console(settings, ledger, client))
    case = StripeControl(settings).failed_invoice(INSUFFICIENT)
    url = f"/support/cases/{case.invoice}"

    async def act(action: str, **form: str) -> httpx.Response:
        token = csrf((await http.get(url)).text)
        return await http.post(f"{url}/{action}", data={"csrf": token, **form})

    async def refused(action: str, **form: str) -> str:
        # Refused or done, every form post redirects (303): a refresh never posts it again.
        response = await act(action, **form)
        assert (response.status_code, response.headers["location"]) == (303, url)
        return (await http.get(url)).text

    async def page_when(*texts: str) -> str:
        # The ledger and the live state are read side by side: each may lag the other.
        async def page() -> str:
            return (await http.get(url)).text

        return await eventually(
            page, lambda html: all(t in html for t in texts), what=f"{texts!r} on the page"
        )

    async with run_worker(client) as task_queue:
        await start_case(client, case.dunning_input(), task_queue)
        page = await page_when("Step</dt><dd>0 of 5", "Case opened")
        assert 'id="status-value">active' in page

        shown = await refused("grace", days="99", reason="asked", by="ann")
        assert "grace is limited to 14 days per grant" in shown
        assert 'id="error-grace"' in shown and 'value="99"' in shown
        assert "grace is limited" not in (await http.get(url)).text  # shown once
        assert "days must be a whole number" in await refused(
            "grace", days="two", reason="r", by="a"
        )

        form = {"days": "3", "reason": "asked nicely", "by": "ann"}
        token = csrf((await http.get(url)).text)
        done = await http.post(f"{url}/grace", data={"csrf": token, **form})
        # The same form posted again (a double click, the back button): applied once.
        twice = await http.post(f"{url}/grace", data={"csrf": token, **form})
        assert (done.status_code, done.headers["location"]) == (303, url)
        assert twice.status_code == 303
        # The flash is shown once, on the page the redirect leads to; the timeline row is
        # written by an activity a moment later, so it is polled for separately.
        flashed = (await http.get(url)).text
        assert "New final deadline:" in flashed
        assert "3 days: +3d by ann (asked nicely)" in flashed
        page = await page_when("Grace granted: +3 days")
        assert "asked nicely" in page
        assert "New final deadline:" not in page  # shown once

        assert (await act("pause", reason="disputed", by="ann")).status_code == 303
        assert 'id="status-value">paused' in await page_when("Paused</strong>")
        assert "the case is already paused" in await refused("pause", reason="again", by="ann")
        assert (await act("resume", by="ann")).status_code == 303
        await page_when("Resumed</strong>")
        assert "reason is required" in await refused("stop", reason=" ", by="ann")
        assert (await act("stop", reason="written off", by="ann")).status_code == 303
        page = await page_when("Case closed: stopped")
        assert 'id="status-value">stopped' in page and 'id="form-grace"' not in page
        assert "the case is closed: stopped (written off)" in await refused("resume", by="ann")


async def test_report_page_renders_the_recovery_figures(settings: Settings, ledger: Ledger) -> None:
    seed(ledger)
    http = await logged_in(console(settings, ledger))
    response = await http.get("/support/report", params={"days": 0})
    assert response.status_code == 200, response.text
    assert "All cases in the ledger" in response.text and "insufficient_funds" in response.text
    assert "Recovery report" in (await http.get("/support")).text  # linked from every page
