"""The Stripe stand-in, driven through the real stripe SDK over HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import stripe
from fastapi import FastAPI, Request, Response

from standins.server import BackgroundServer
from standins.stripe_api import StripeStandinConfig, create_app
from standins.stripe_api.forms import decode
from standins.stripe_api.idempotency import begin
from standins.stripe_api.state import Store

SECRET = "whsec_standin_test_secret"


class Receiver:
    """A webhook endpoint that records raw bodies and can fail the first N deliveries."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str]] = []
        self.fail_next = 0
        self.app = FastAPI()

        @self.app.post("/hook")
        async def hook(request: Request) -> Response:
            if self.fail_next > 0:
                self.fail_next -= 1
                return Response(status_code=500)
            body = (await request.body()).decode()
            self.received.append((body, request.headers.get("stripe-signature", "")))
            return Response(status_code=200)

    def wait_for(self, type_: str, timeout: float = 5.0) -> tuple[str, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body, sig in list(self.received):
                if json.loads(body)["type"] == type_:
                    return body, sig
            time.sleep(0.02)
        raise AssertionError(f"no {type_} webhook received")


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()
    with BackgroundServer(rec.app) as srv:
        yield rec, f"{srv.url}/hook"


@pytest.fixture(scope="module")
def server() -> Iterator[BackgroundServer]:
    config = StripeStandinConfig(webhook_backoff_seconds=0.01)
    with BackgroundServer(create_app(config)) as srv:
        yield srv


@pytest.fixture
def base(server: BackgroundServer) -> str:
    httpx.post(f"{server.url}/_standin/reset").raise_for_status()
    httpx.post(f"{server.url}/_standin/webhooks", json={"url": None}).raise_for_status()
    return server.url


def make_client(url: str, **kwargs: Any) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_standin", base_addresses={"api": url}, max_network_retries=0, **kwargs
    )


@pytest.fixture
def client(base: str) -> stripe.StripeClient:
    return make_client(base)


def charges(base: str, invoice_id: str) -> dict[str, Any]:
    return httpx.get(f"{base}/_standin/invoices/{invoice_id}/charges").json()


def open_invoice(client: stripe.StripeClient, pm: str | None = "pm_card_visa") -> Any:
    """Customer (default pm), active subscription and a finalized 12.00 EUR invoice for it."""
    params: dict[str, Any] = {"name": "Erika", "email": "erika@example.com"}
    if pm:
        params["payment_method"] = pm
        params["invoice_settings"] = {"default_payment_method": pm}
    cus = client.v1.customers.create(params=params)  # type: ignore[arg-type]
    sub_params: Any = {
        "customer": cus.id,
        "items": [
            {
                "price_data": {
                    "currency": "eur",
                    "unit_amount": 1200,
                    "product_data": {"name": "Plan"},
                    "recurring": {"interval": "month"},
                }
            }
        ],
    }
    sub = client.v1.subscriptions.create(params=sub_params)
    inv = client.v1.invoices.create(
        params={"customer": cus.id, "subscription": sub.id, "currency": "eur"}
    )
    client.v1.invoice_items.create(
        params={"customer": cus.id, "invoice": inv.id, "amount": 1200, "currency": "eur"}
    )
    return client.v1.invoices.finalize_invoice(inv.id)


def subscription_of(inv: Any) -> str:
    return str(inv.parent.subscription_details.subscription)


def test_forms_decode_bracket_notation() -> None:
    body = (
        "invoice_settings[default_payment_method]=pm_x&expand[]=customer&expand[]=lines"
        "&items[0][price_data][unit_amount]=5&items[1][price]=price_1&metadata[a]=&name=N"
    )
    assert decode(body) == {
        "invoice_settings": {"default_payment_method": "pm_x"},
        "expand": ["customer", "lines"],
        "items": [{"price_data": {"unit_amount": "5"}}, {"price": "price_1"}],
        "metadata": {"a": ""},
        "name": "N",
    }


def test_concurrent_use_of_a_key_is_a_409_conflict() -> None:
    store = Store()
    assert begin(store, "sk", "k", "POST", "/v1/x", {}, "req_1") is None
    with pytest.raises(Exception) as info:
        begin(store, "sk", "k", "POST", "/v1/x", {}, "req_2")
    assert getattr(info.value, "status", None) == 409
    assert info.value.body()["error"]["code"] == "idempotency_key_in_use"  # type: ignore[attr-defined]


def test_auth_is_required(base: str) -> None:
    response = httpx.post(f"{base}/v1/customers")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.headers["Request-Id"].startswith("req_")
    bad = stripe.StripeClient("pk_live_nope", base_addresses={"api": base}, max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError):
        bad.v1.customers.create()


def test_customer_shape_and_update(client: stripe.StripeClient) -> None:
    cus = client.v1.customers.create(
        params={
            "name": "Max",
            "email": "max@example.com",
            "preferred_locales": ["de"],
            "metadata": {"crm": "42"},
        }
    )
    assert cus.id.startswith("cus_") and cus.object == "customer" and cus.livemode is False
    assert cus.preferred_locales == ["de"] and cus.metadata is not None
    assert cus.metadata["crm"] == "42"
    pm = client.v1.payment_methods.attach("pm_card_mastercard", params={"customer": cus.id})
    assert pm.id.startswith("pm_") and pm.id != "pm_card_mastercard"
    assert pm.customer == cus.id and pm.card is not None and pm.card.last4 == "4444"
    updated = client.v1.customers.update(
        cus.id, params={"invoice_settings": {"default_payment_method": pm.id}}
    )
    assert updated.invoice_settings is not None
    assert updated.invoice_settings.default_payment_method == pm.id
    fetched = client.v1.customers.retrieve(cus.id)
    assert fetched.invoice_settings is not None
    assert fetched.invoice_settings.default_payment_method == pm.id
    assert client.v1.payment_methods.retrieve(pm.id).customer == cus.id


def test_invoice_has_current_api_shape(client: stripe.StripeClient) -> None:
    inv = open_invoice(client)
    raw = inv.to_dict()
    for gone in ("subscription", "charge", "payment_intent"):
        assert gone not in raw
    assert inv.parent.type == "subscription_details"
    assert subscription_of(inv).startswith("sub_")
    assert inv.status == "open" and inv.amount_due == 1200 and inv.amount_remaining == 1200
    assert inv.attempt_count == 0 and inv.attempted is False
    assert inv.number and inv.hosted_invoice_url and inv.invoice_pdf
    assert inv.status_transitions.finalized_at is not None
    assert inv.lines.object == "list" and inv.lines.data[0].amount == 1200
    assert inv.customer_email == "erika@example.com" and inv.customer_name == "Erika"
    expanded = client.v1.invoices.retrieve(inv.id, params={"expand": ["customer"]})
    assert expanded.customer.object == "customer"  # type: ignore[union-attr]
    assert expanded.customer.email == "erika@example.com"  # type: ignore[union-attr]


DECLINES = [
    ("pm_card_chargeDeclined", "card_declined", "generic_decline", "try_again_later"),
    (
        "pm_card_chargeDeclinedInsufficientFunds",
        "card_declined",
        "insufficient_funds",
        "try_again_later",
    ),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card", "confirm_card_data"),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc", "confirm_card_data"),
    (
        "pm_card_chargeDeclinedProcessingError",
        "processing_error",
        "processing_error",
        "try_again_later",
    ),
    ("pm_card_chargeDeclinedFraudulent", "card_declined", "fraudulent", "do_not_try_again"),
    ("pm_card_chargeDeclinedLostCard", "card_declined", "lost_card", "do_not_try_again"),
    ("pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card", "do_not_try_again"),
    ("pm_card_authenticationRequired", "authentication_required", "authentication_required", None),
]


@pytest.mark.parametrize(("pm", "code", "decline_code", "advice_code"), DECLINES)
def test_declined_payment(
    client: stripe.StripeClient,
    base: str,
    pm: str,
    code: str,
    decline_code: str,
    advice_code: str | None,
) -> None:
    inv = open_invoice(client, pm)
    with pytest.raises(stripe.CardError) as info:
        client.v1.invoices.pay(inv.id)
    err = info.value
    assert err.http_status == 402 and err.code == code
    assert err.error is not None
    assert err.error.type == "card_error"
    assert err.error.decline_code == decline_code
    assert err.error.advice_code == advice_code
    assert err.error.charge and err.error.charge.startswith("ch_")
    assert err.error.doc_url and err.error.message
    pi = err.error.payment_intent
    assert pi is not None and pi.object == "payment_intent"
    assert pi.status == (
        "requires_action" if pm.endswith("Required") else "requires_payment_method"
    )
    after = client.v1.invoices.retrieve(inv.id)
    assert after.status == "open" and after.attempt_count == 1 and after.attempted is True
    assert client.v1.subscriptions.retrieve(subscription_of(inv)).status == "past_due"
    log = charges(base, inv.id)
    assert log["count"] == 1 and log["attempts"][0]["outcome"] == "declined"
    assert log["attempts"][0]["decline_code"] == decline_code


def test_on_session_authentication_needs_customer_action(client: stripe.StripeClient) -> None:
    inv = open_invoice(client, "pm_card_authenticationRequired")
    with pytest.raises(stripe.CardError) as info:
        client.v1.invoices.pay(inv.id, params={"off_session": False})
    assert info.value.code == "invoice_payment_intent_requires_action"


def test_successful_payment_recovers_subscription(client: stripe.StripeClient, base: str) -> None:
    inv = open_invoice(client, "pm_card_chargeDeclined")
    with pytest.raises(stripe.CardError):
        client.v1.invoices.pay(inv.id)
    paid = client.v1.invoices.pay(inv.id, params={"payment_method": "pm_card_visa"})
    assert paid.status == "paid" and paid.amount_paid == 1200 and paid.amount_remaining == 0
    assert paid.status_transitions.paid_at is not None and paid.attempt_count == 2
    assert client.v1.subscriptions.retrieve(subscription_of(inv)).status == "active"
    assert [a["outcome"] for a in charges(base, inv.id)["attempts"]] == ["declined", "succeeded"]
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.invoices.pay(inv.id)
    assert info.value.http_status == 400 and "already paid" in str(info.value.user_message)


def test_paid_out_of_band_is_not_a_charge(client: stripe.StripeClient, base: str) -> None:
    inv = open_invoice(client)
    paid = client.v1.invoices.pay(inv.id, params={"paid_out_of_band": True})
    assert paid.status == "paid"
    assert charges(base, inv.id)["count"] == 0


def test_pay_without_payment_method_is_rejected(client: stripe.StripeClient, base: str) -> None:
    inv = open_invoice(client, pm=None)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.invoices.pay(inv.id, options={"idempotency_key": "first"})
    assert "no attached payment source or default payment method" in str(info.value)
    assert charges(base, inv.id)["count"] == 0
    # A validation failure saves no idempotent result, so the same key may run again.
    client.v1.customers.update(
        str(inv.customer), params={"invoice_settings": {"default_payment_method": "pm_card_visa"}}
    )
    assert client.v1.invoices.pay(inv.id, options={"idempotency_key": "first"}).status == "paid"


def test_idempotent_replay(client: stripe.StripeClient, base: str) -> None:
    inv = open_invoice(client, "pm_card_chargeDeclinedInsufficientFunds")
    bodies = []
    for _ in range(2):
        with pytest.raises(stripe.CardError) as info:
            client.v1.invoices.pay(inv.id, options={"idempotency_key": "pay-1"})
        bodies.append(info.value.json_body)
        replayed = info.value.headers.get("Idempotent-Replayed")  # type: ignore[union-attr]
    assert bodies[0] == bodies[1] and replayed == "true"
    assert charges(base, inv.id)["count"] == 1
    assert client.v1.invoices.retrieve(inv.id).attempt_count == 1
    with pytest.raises(stripe.IdempotencyError) as mismatch:
        client.v1.invoices.pay(
            inv.id,
            params={"payment_method": "pm_card_visa"},
            options={"idempotency_key": "pay-1"},
        )
    assert "same parameters" in str(mismatch.value)
    assert charges(base, inv.id)["count"] == 1


def add_fault(base: str, **fault: Any) -> None:
    httpx.post(f"{base}/_standin/faults", json=fault).raise_for_status()


@pytest.mark.parametrize(
    ("mode", "error", "code"),
    [
        ("429", stripe.RateLimitError, "rate_limit"),
        ("lock_timeout", stripe.RateLimitError, "lock_timeout"),
    ],
)
def test_rate_limits_fail_before_anything_happens(
    client: stripe.StripeClient, base: str, mode: str, error: type[Exception], code: str | None
) -> None:
    inv = open_invoice(client)
    add_fault(base, mode=mode, count=1, path_contains="/pay")
    with pytest.raises(error) as info:
        client.v1.invoices.pay(inv.id, options={"idempotency_key": "k"})
    err = info.value
    assert isinstance(err, stripe.StripeError) and err.error is not None
    assert err.error.code == code
    assert charges(base, inv.id)["count"] == 0
    assert client.v1.invoices.retrieve(inv.id).status == "open"
    assert client.v1.invoices.pay(inv.id, options={"idempotency_key": "k"}).status == "paid"
    assert charges(base, inv.id)["count"] == 1


def test_a_500_is_saved_and_replayed_under_its_key(client: stripe.StripeClient, base: str) -> None:
    """Stripe saves any request that began executing, a 500 included, for 24 hours."""
    inv = open_invoice(client)
    add_fault(base, mode="500", count=1, path_contains="/pay")
    for _ in range(2):
        with pytest.raises(stripe.APIError):
            client.v1.invoices.pay(inv.id, options={"idempotency_key": "k500"})
    assert charges(base, inv.id)["count"] == 0
    log = httpx.get(f"{base}/_standin/requests").json()["requests"]
    assert [r["replayed"] for r in log if r["path"].endswith("/pay")] == [False, True]
    assert client.v1.invoices.pay(inv.id, options={"idempotency_key": "k500:r2"}).status == "paid"
    # Without a key nothing is saved: the next request runs.
    other = open_invoice(client)
    add_fault(base, mode="500", count=1, path_contains="/pay")
    with pytest.raises(stripe.APIError):
        client.v1.invoices.pay(other.id)
    assert client.v1.invoices.pay(other.id).status == "paid"


def test_lost_response_then_retry_is_a_replay(client: stripe.StripeClient, base: str) -> None:
    inv = open_invoice(client)
    add_fault(base, mode="hang", count=1, path_contains="/pay", hang_seconds=1.5)
    impatient = make_client(base, http_client=stripe.RequestsClient(timeout=0.3))
    with pytest.raises(stripe.APIConnectionError):
        impatient.v1.invoices.pay(inv.id, options={"idempotency_key": "lost"})
    retried = client.v1.invoices.pay(inv.id, options={"idempotency_key": "lost"})
    assert retried.status == "paid"
    assert charges(base, inv.id)["count"] == 1
    log = httpx.get(f"{base}/_standin/requests").json()["requests"]
    pays = [r for r in log if r["path"].endswith("/pay")]
    assert [r["replayed"] for r in pays] == [False, True]


def test_void_uncollectible_and_cancel(client: stripe.StripeClient) -> None:
    inv = open_invoice(client)
    voided = client.v1.invoices.void_invoice(inv.id)
    assert voided.status == "void" and voided.status_transitions.voided_at is not None
    other = open_invoice(client)
    bad = client.v1.invoices.mark_uncollectible(other.id)
    assert bad.status == "uncollectible"
    assert bad.status_transitions.marked_uncollectible_at is not None
    sub = client.v1.subscriptions.cancel(subscription_of(other))
    assert sub.status == "canceled" and sub.canceled_at is not None
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.subscriptions.cancel(sub.id)
    assert info.value.http_status == 404 and info.value.code == "resource_missing"


def verified(body: str, sig: str) -> Any:
    return stripe.Webhook.construct_event(body, sig, SECRET, tolerance=300)


def test_signed_webhooks(
    client: stripe.StripeClient, base: str, receiver: tuple[Receiver, str]
) -> None:
    rec, url = receiver
    rec.received.clear()
    httpx.post(f"{base}/_standin/webhooks", json={"url": url, "secret": SECRET})
    inv = open_invoice(client, "pm_card_authenticationRequired")
    with pytest.raises(stripe.CardError):
        client.v1.invoices.pay(inv.id, options={"idempotency_key": "hook-pay"})
    event = verified(*rec.wait_for("invoice.payment_failed"))
    assert event.object == "event" and event.id.startswith("evt_")
    assert event.api_version == "2026-10-28.endive" and event.livemode is False
    assert event.request.idempotency_key == "hook-pay"
    assert event.data.object.id == inv.id and event.data.object.attempt_count == 1
    verified(*rec.wait_for("invoice.payment_action_required"))
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(rec.received[0][0], rec.received[0][1], "whsec_wrong")
    client.v1.customers.update(
        str(inv.customer), params={"invoice_settings": {"default_payment_method": "pm_card_visa"}}
    )
    updated = verified(*rec.wait_for("customer.updated"))
    old_pm = updated.data.previous_attributes["invoice_settings"]["default_payment_method"]
    assert old_pm.startswith("pm_")
    verified(*rec.wait_for("payment_method.attached"))
    client.v1.invoices.pay(inv.id)
    verified(*rec.wait_for("invoice.paid"))
    verified(*rec.wait_for("invoice.payment_succeeded"))
    client.v1.subscriptions.cancel(subscription_of(inv))
    verified(*rec.wait_for("customer.subscription.deleted"))
    other = open_invoice(client)
    client.v1.invoices.void_invoice(other.id)
    verified(*rec.wait_for("invoice.voided"))


def test_failed_deliveries_are_retried(base: str, receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    rec.received.clear()
    rec.fail_next = 1
    httpx.post(f"{base}/_standin/webhooks", json={"url": url, "secret": SECRET})
    client = make_client(base)
    client.v1.customers.create(params={"name": "R"})
    rec.wait_for("customer.created")

    def wait() -> list[Any]:
        return list(httpx.get(f"{base}/_standin/events").json()["deliveries"])

    deadline = time.monotonic() + 5
    statuses: list[int] = []
    while statuses != [500, 200] and time.monotonic() < deadline:
        # The stand-in records a delivery after the receiver has answered it.
        statuses = [d["status_code"] for d in wait() if d["type"] == "customer.created"]
        time.sleep(0.02)
    assert statuses == [500, 200]


def test_failed_invoice_scenario(base: str, receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    rec.received.clear()
    httpx.post(f"{base}/_standin/webhooks", json={"url": url, "secret": SECRET})
    out = httpx.post(
        f"{base}/_standin/scenarios/failed_invoice",
        json={
            "payment_method": "pm_card_chargeDeclinedInsufficientFunds",
            "amount": 1200,
            "currency": "eur",
            "name": "Jana",
            "email": "jana@example.com",
            "preferred_locales": ["de"],
        },
    ).json()
    assert out["event"]["type"] == "invoice.payment_failed"
    assert out["event"]["request"] == {"id": None, "idempotency_key": None}
    client = make_client(base)
    inv = client.v1.invoices.retrieve(out["invoice"], params={"expand": ["customer"]})
    assert inv.status == "open" and inv.attempt_count == 1 and inv.amount_due == 1200
    assert inv.currency == "eur" and inv.next_payment_attempt is not None
    assert inv.customer.preferred_locales == ["de"]  # type: ignore[union-attr]
    assert subscription_of(inv) == out["subscription"]
    assert client.v1.subscriptions.retrieve(out["subscription"]).status == "past_due"
    assert charges(base, out["invoice"])["count"] == 1
    event = verified(*rec.wait_for("invoice.payment_failed"))
    assert event.id == out["event"]["id"]
