"""Helpers for the Stripe stand-in tests: a webhook receiver, the SDK client, invoices, faults."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import stripe
from fastapi import FastAPI, Request, Response

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


def make_client(url: str, **kwargs: Any) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_standin", base_addresses={"api": url}, max_network_retries=0, **kwargs
    )


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


def add_fault(base: str, **fault: Any) -> None:
    httpx.post(f"{base}/_standin/faults", json=fault).raise_for_status()


def verified(body: str, sig: str) -> Any:
    return stripe.Webhook.construct_event(body, sig, SECRET, tolerance=300)
