"""Our own Stripe event payloads, per API version, plus signing and a TCP proxy for outages.

Shapes follow Stripe's API reference for each version: before 2025-03-31.basil an invoice has
top-level `subscription`, `charge` and `payment_intent`; from basil on the subscription is under
`parent.subscription_details` and the other two are gone. Values are synthetic.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

import stripe

API_2020 = "2020-08-27"
API_DAHLIA = "2026-04-22.dahlia"
API_ENDIVE = "2026-10-28.endive"
VERSIONS = [API_2020, API_ENDIVE]

SECRET = "whsec_test_primary_5f1c0e"
OLD_SECRET = "whsec_test_previous_9a2b7d"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


def _before_basil(api_version: str) -> bool:
    return api_version < "2025-03-31"


def event(
    type: str,
    obj: dict[str, Any],
    api_version: str = API_ENDIVE,
    *,
    previous_attributes: dict[str, Any] | None = None,
    id: str | None = None,
    created: int | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": id or new_id("evt"),
        "object": "event",
        "api_version": api_version,
        "created": created or int(time.time()),
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type,
    }


def invoice(
    api_version: str = API_ENDIVE,
    *,
    id: str | None = None,
    customer: str | dict[str, Any] | None = None,
    subscription: str | None = None,
    amount_due: int = 2500,
    amount_remaining: int | None = None,
    amount_paid: int = 0,
    currency: str = "eur",
    status: str = "open",
    attempt_count: int = 1,
    hosted_invoice_url: str | None = None,
) -> dict[str, Any]:
    id = id or new_id("in")
    obj: dict[str, Any] = {
        "id": id,
        "object": "invoice",
        "account_country": "DE",
        "amount_due": amount_due,
        "amount_paid": amount_paid,
        "amount_remaining": amount_due - amount_paid
        if amount_remaining is None
        else amount_remaining,
        "attempt_count": attempt_count,
        "attempted": True,
        "billing_reason": "subscription_cycle",
        "collection_method": "charge_automatically",
        "created": int(time.time()) - 60,
        "currency": currency,
        "customer": customer or new_id("cus"),
        "customer_email": "ada@example.com",
        "hosted_invoice_url": hosted_invoice_url or f"https://invoice.example.test/i/{id}",
        "lines": {"object": "list", "data": [], "has_more": False},
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "status": status,
        "status_transitions": {"finalized_at": int(time.time()) - 60, "paid_at": None},
        "total": amount_due,
        "webhooks_delivered_at": None,
    }
    if _before_basil(api_version):
        obj.update(
            subscription=subscription,
            charge=new_id("ch"),
            payment_intent=new_id("pi"),
            subscription_details={"metadata": {}},
            discount=None,
            tax=None,
        )
    else:
        obj.update(
            parent={
                "quote_details": None,
                "subscription_details": {"metadata": {}, "subscription": subscription}
                if subscription
                else None,
                "type": "subscription_details" if subscription else "invoice_item_details",
            },
            amount_overpaid=0,
            confirmation_secret=None,
            total_taxes=[],
        )
    return obj


def subscription(
    api_version: str = API_ENDIVE,
    *,
    id: str | None = None,
    customer: str | None = None,
    latest_invoice: str | None = None,
    status: str = "canceled",
) -> dict[str, Any]:
    now = int(time.time())
    obj: dict[str, Any] = {
        "id": id or new_id("sub"),
        "object": "subscription",
        "customer": customer or new_id("cus"),
        "status": status,
        "canceled_at": now,
        "ended_at": now,
        "latest_invoice": latest_invoice,
        "cancellation_details": {"comment": None, "feedback": None, "reason": "payment_failed"},
        "items": {"object": "list", "data": [], "has_more": False},
        "metadata": {},
    }
    if _before_basil(api_version):
        obj.update(current_period_start=now - 86400 * 30, current_period_end=now)
    return obj


def customer_object(
    id: str | None = None, default_payment_method: str | None = None
) -> dict[str, Any]:
    return {
        "id": id or new_id("cus"),
        "object": "customer",
        "email": "ada@example.com",
        "delinquent": True,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": default_payment_method,
            "footer": None,
        },
        "metadata": {},
    }


def payment_method(customer: str | None, id: str | None = None) -> dict[str, Any]:
    return {
        "id": id or new_id("pm"),
        "object": "payment_method",
        "billing_details": {"email": None, "name": None},
        "card": {"brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030},
        "customer": customer,
        "type": "card",
        "metadata": {},
    }


def setup_intent(customer: str | None, payment_method: str | None) -> dict[str, Any]:
    return {
        "id": new_id("seti"),
        "object": "setup_intent",
        "customer": customer,
        "payment_method": payment_method,
        "status": "succeeded",
        "usage": "off_session",
    }


def body_of(evt: dict[str, Any]) -> bytes:
    # Stripe pretty-prints its bodies; signatures cover whatever bytes are sent.
    return json.dumps(evt, indent=2).encode()


def sign(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> str:
    return str(
        stripe.WebhookSignature.generate_signature_header(
            body.decode(), secret, timestamp=timestamp or int(time.time())
        )
    )


class TcpProxy:
    """Forwards a local port to a Temporal server; stopping it is a Temporal outage."""

    def __init__(self, target: str, port: int) -> None:
        host, target_port = target.rsplit(":", 1)
        self.target = (host, int(target_port))
        self.port = port
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        await self._server.wait_closed()
        self._server = None
