"""The Stripe stand-in's idempotency keys, and the faults (429s, 500s, lost answers) around them."""

from __future__ import annotations

import httpx
import pytest
import stripe

from standins.stripe_api.idempotency import begin
from standins.stripe_api.state import Store
from tests.standins.stripe_helpers import add_fault, charges, make_client, open_invoice


def test_concurrent_use_of_a_key_is_a_409_conflict() -> None:
    store = Store()
    assert begin(store, "sk", "k", "POST", "/v1/x", {}, "req_1") is None
    with pytest.raises(Exception) as info:
        begin(store, "sk", "k", "POST", "/v1/x", {}, "req_2")
    assert getattr(info.value, "status", None) == 409
    assert info.value.body()["error"]["code"] == "idempotency_key_in_use"  # type: ignore[attr-defined]


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
