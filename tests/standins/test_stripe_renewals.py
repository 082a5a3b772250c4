"""The Stripe stand-in's subscription list, account updater and renewal controls, through the
real stripe-python SDK."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe

from standins.server import BackgroundServer
from standins.stripe_api import create_app

DAY = 86400


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app()) as srv:
        yield srv


@pytest.fixture
def base(server: BackgroundServer) -> str:
    httpx.post(f"{server.url}/_standin/reset").raise_for_status()
    return server.url


@pytest.fixture
def client(base: str) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_standin", base_addresses={"api": base}, max_network_retries=0
    )


def expiring(base: str, **spec: Any) -> dict[str, Any]:
    body = {"exp_month": 1, "exp_year": 2027, "renews_at": int(time.time()) + 10 * DAY, **spec}
    response = httpx.post(f"{base}/_standin/scenarios/expiring_subscription", json=body)
    return dict(response.raise_for_status().json())


def test_list_pages_newest_first_with_auto_paging(base: str, client: stripe.StripeClient) -> None:
    made = [expiring(base)["subscription"] for _ in range(5)]
    first = client.v1.subscriptions.list(params={"status": "active", "limit": 2})
    assert [s.id for s in first.data] == made[::-1][:2]
    assert first.has_more
    paged = [s.id for s in first.auto_paging_iter()]
    assert paged == made[::-1]
    after = client.v1.subscriptions.list(params={"limit": 10, "starting_after": made[2]})
    assert [s.id for s in after.data] == [made[1], made[0]]
    assert not after.has_more


def test_status_filter_and_canceled_left_out_by_default(
    base: str, client: stripe.StripeClient
) -> None:
    kept, gone = expiring(base)["subscription"], expiring(base)["subscription"]
    client.v1.subscriptions.cancel(gone)
    assert [s.id for s in client.v1.subscriptions.list()] == [kept]
    assert [s.id for s in client.v1.subscriptions.list(params={"status": "active"})] == [kept]
    ended = client.v1.subscriptions.list(params={"status": "ended"})
    assert [s.id for s in ended] == [gone]
    assert len(client.v1.subscriptions.list(params={"status": "all"}).data) == 2


def test_expand_reaches_the_customer_default_card(base: str, client: stripe.StripeClient) -> None:
    made = expiring(base, exp_month=3, exp_year=2027)
    page = client.v1.subscriptions.list(
        params={
            "status": "active",
            "expand": [
                "data.default_payment_method",
                "data.customer",
                "data.customer.invoice_settings.default_payment_method",
            ],
        }
    )
    sub = page.data[0]
    customer: Any = sub.customer
    card = customer.invoice_settings.default_payment_method
    assert sub.default_payment_method is None
    assert (card.id, card.card.exp_month, card.card.exp_year) == (made["payment_method"], 3, 2027)
    assert sub["items"].data[0].current_period_end > time.time()


def test_account_updater_renews_the_card_in_place(base: str, client: stripe.StripeClient) -> None:
    made = expiring(base, default_on="subscription")
    pm = made["payment_method"]
    httpx.post(
        f"{base}/_standin/payment_methods/{pm}/account_updater",
        json={"exp_month": 1, "exp_year": 2031},
    ).raise_for_status()
    card = client.v1.payment_methods.retrieve(pm).card
    assert card is not None and (card.exp_month, card.exp_year) == (1, 2031)
    events = httpx.get(f"{base}/_standin/events").json()["events"]
    updated = [e for e in events if e["type"] == "payment_method.automatically_updated"]
    assert updated[-1]["data"]["previous_attributes"] == {
        "card": {"exp_month": 1, "exp_year": 2027}
    }


@pytest.mark.parametrize(
    ("card", "status"),
    [("pm_card_visa", "paid"), ("pm_card_chargeDeclinedExpiredCard", "open")],
)
def test_renew_bills_the_next_period(
    base: str, client: stripe.StripeClient, card: str, status: str
) -> None:
    made = expiring(base, payment_method=card)
    before = client.v1.subscriptions.retrieve(made["subscription"])
    end = before["items"].data[0].current_period_end
    renewed = httpx.post(f"{base}/_standin/subscriptions/{made['subscription']}/renew").json()
    assert renewed["status"] == status
    after = client.v1.subscriptions.retrieve(
        made["subscription"], params={"expand": ["latest_invoice"]}
    )
    invoice = after.latest_invoice
    assert invoice.id == renewed["invoice"] and invoice.attempt_count == 1  # type: ignore[union-attr]
    assert after["items"].data[0].current_period_start == end
