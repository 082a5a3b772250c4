"""Test-side access to the stand-ins' `/_standin/` controls and to the real SDK clients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import stripe

from models.dunning import DunningInput
from models.settings import Settings
from models.stripe_reads import make_stripe_client

# Stripe's test cards (docs.stripe.com/testing#declined-payments) that the scenarios fail with.
INSUFFICIENT = "pm_card_chargeDeclinedInsufficientFunds"
EXPIRED = "pm_card_chargeDeclinedExpiredCard"


@dataclass
class FailedInvoice:
    invoice: str
    customer: str
    subscription: str
    event: dict[str, Any]
    decline_code: str | None

    def dunning_input(self, **overrides: Any) -> DunningInput:
        obj = self.event["data"]["object"]
        values: dict[str, Any] = {
            "invoice_id": self.invoice,
            "customer_id": self.customer,
            "subscription_id": self.subscription,
            "amount_due": obj["amount_due"],
            "currency": obj["currency"],
            "decline_code": self.decline_code,
            "stripe_event_id": self.event["id"],
        }
        return DunningInput(**{**values, **overrides})


class StripeControl:
    def __init__(self, settings: Settings) -> None:
        assert settings.stripe_api_base
        self.http = httpx.Client(base_url=f"{settings.stripe_api_base}/_standin", timeout=10)
        self.sdk: stripe.StripeClient = make_stripe_client(settings)

    def failed_invoice(self, payment_method: str, **spec: Any) -> FailedInvoice:
        body = (
            self.http.post(
                "/scenarios/failed_invoice", json={"payment_method": payment_method, **spec}
            )
            .raise_for_status()
            .json()
        )
        first = self.charges(body["invoice"])["attempts"][0]
        return FailedInvoice(
            invoice=body["invoice"],
            customer=body["customer"],
            subscription=body["subscription"],
            event=body["event"],
            decline_code=first.get("decline_code"),
        )

    def charges(self, invoice: str) -> dict[str, Any]:
        return self.http.get(f"/invoices/{invoice}/charges").raise_for_status().json()

    def charge_count(self, invoice: str) -> int:
        return int(self.charges(invoice)["count"])

    def fault(self, mode: str, count: int = 1, **extra: Any) -> None:
        self.http.post("/faults", json={"mode": mode, "count": count, **extra}).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/faults").raise_for_status()

    def requests(self) -> list[dict[str, Any]]:
        body = self.http.get("/requests").raise_for_status().json()
        return list(body.get("requests", body) if isinstance(body, dict) else body)

    def use_card(self, customer: str, payment_method: str) -> None:
        self.sdk.v1.payment_methods.attach(payment_method, params={"customer": customer})
        self.sdk.v1.customers.update(
            customer, params={"invoice_settings": {"default_payment_method": payment_method}}
        )


class SendGridControl:
    def __init__(self, settings: Settings) -> None:
        assert settings.sendgrid_api_host
        self.http = httpx.Client(base_url=f"{settings.sendgrid_api_host}/_standin", timeout=10)

    def messages(self, invoice: str) -> list[dict[str, Any]]:
        body = (
            self.http.get("/messages", params={"custom_arg": f"invoice_id:{invoice}"})
            .raise_for_status()
            .json()
        )
        return list(body["messages"] if isinstance(body, dict) else body)

    def fault(self, status: int = 202, count: int = 1, **extra: Any) -> None:
        """Inject a fault; extra: to_contains, delay_seconds, mode, endpoint (see the app)."""
        self.http.post(
            "/faults", json={"status": status, "count": count, **extra}
        ).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/faults").raise_for_status()

    def delay(self, seconds: float, count: int = 1, to_contains: str | None = None) -> None:
        """Slow sends: SendGrid takes the request after `seconds`, if the client still waits."""
        self.fault(202, count, delay_seconds=seconds, mode="delay", to_contains=to_contains)

    def hang(self, seconds: float, count: int = 1, to_contains: str | None = None) -> None:
        """A timeout: the message is accepted at once, the answer comes after `seconds`."""
        self.fault(202, count, delay_seconds=seconds, mode="hang", to_contains=to_contains)

    def activity_feed(self, **settings: Any) -> dict[str, Any]:
        """Email Activity API: available (bool), unavailable_status, lag_seconds."""
        return dict(self.http.post("/activity_feed", json=settings).raise_for_status().json())

    def feed_queries(self) -> list[dict[str, Any]]:
        return list(self.http.get("/activity_feed").raise_for_status().json()["queries"])

    def attempts(self) -> list[dict[str, Any]]:
        return list(self.http.get("/attempts").raise_for_status().json())

    def reset(self) -> None:
        self.http.post("/reset").raise_for_status()
