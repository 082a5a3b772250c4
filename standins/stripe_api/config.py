"""Configuration of the Stripe stand-in."""

from __future__ import annotations

from dataclasses import dataclass

# The version stripe-python 16.1.0 pins; event envelopes carry it as `api_version`.
DEFAULT_API_VERSION = "2026-10-28.endive"


@dataclass
class StripeStandinConfig:
    webhook_url: str | None = None
    webhook_secret: str | None = None
    api_version: str = DEFAULT_API_VERSION
    # Delivery retries for a failing webhook endpoint (Stripe retries for days; tests need seconds).
    webhook_attempts: int = 3
    webhook_backoff_seconds: float = 0.2
