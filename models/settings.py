"""All configuration, from the environment or a `.env` file; read through `get_settings()`."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class EncryptionConfigError(Exception):
    """Payload encryption is misconfigured, or missing in production: refuse to start.

    Defined here, beside the settings it is about, so the CLI can map it to one line without
    importing the Temporal SDK."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    dunning_task_queue: str = "dunning"
    dunning_policy: str = "policies/default.yaml"
    # Segment rules (policies/rules.yaml format): which policy each new case gets. Empty: every
    # case gets DUNNING_POLICY (or the policy its start request names).
    dunning_rules: str = ""

    # SQLite is only the embedded dev default; production and tests use PostgreSQL.
    database_url: str = "sqlite:///.dev/dunning.db"

    stripe_api_key: str = "sk_test_standin"
    stripe_api_base: str | None = None
    stripe_timeout_seconds: float = Field(default=20.0, gt=0)
    stripe_webhook_secret: str = ""

    sendgrid_api_key: str = "SG.standin"
    sendgrid_api_host: str | None = None
    sendgrid_timeout_seconds: float = Field(default=20.0, gt=0)
    dunning_email_from: str = "billing@example.com"
    # Where customers update their card; {customer} and {invoice} are filled in. Empty means
    # the Stripe hosted invoice page, which also lets them pay with a new card.
    dunning_update_payment_url: str = ""

    # SMS through Twilio's Messages API. Without an Account SID the sms channel is skipped
    # ("not configured"). TWILIO_FROM is a number (E.164) or a Messaging Service SID (MG...).
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_from: str = ""
    twilio_api_base: str | None = None
    twilio_timeout_seconds: float = Field(default=20.0, gt=0)
    # The API's public base URL (https://billing-api.example.com): Twilio posts status
    # callbacks to {it}/webhooks/twilio and signs that exact URL, so the API checks against it.
    dunning_public_url: str = ""
    # Merchant webhooks (Standard Webhooks): endpoints separated by commas, and the signing
    # secret `whsec_` + base64. Without URLs no case event is announced.
    dunning_webhook_urls: str = ""
    dunning_webhook_secret: str = ""
    dunning_webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    # SendGrid's Signed Event Webhook: the verification key SendGrid shows (base64 of the
    # ECDSA P-256 public key). Without it POST /webhooks/sendgrid refuses every delivery.
    sendgrid_webhook_public_key: str = ""
    # The payment page (/pay/{token}): `kid:secret` pairs separated by commas, the first signs,
    # all verify (rotation). Empty: messages link to Stripe's hosted invoice page instead.
    dunning_link_secret: str = ""
    # Stripe.js on the payment page (production); empty shows the stand-in's test card form.
    stripe_publishable_key: str = ""
    # Pre-dunning: the daily scan for cards that expire before renewal (local time and zone).
    dunning_card_expiry_scan_at: str = "09:00"
    dunning_card_expiry_scan_timezone: str = "UTC"
    # "off": messages go out at any hour, whatever the policy's quiet_hours say (a switch for
    # incidents and tests; recorded per case at opening, so running cases are not changed).
    dunning_quiet_hours: Literal["on", "off"] = "on"
    # Bearer token of the in-app notification feed (the merchant's backend); empty means the
    # support token.
    dunning_app_token: str = ""

    worker_shutdown_seconds: float = Field(default=30.0, gt=0)
    # How often the worker compares open ledger cases with Temporal (cases terminated,
    # timed out or reset outside the workflow's own path); `dunning reconcile` runs it once.
    dunning_reconcile_seconds: float = Field(default=300.0, gt=0)

    # Webhook / support API.
    # The webhook relay (starter/webhooks/relay.py): accepted events applied to Temporal by at
    # most this many concurrent starts/signals per API process.
    dunning_relay_concurrency: int = Field(default=32, ge=1, le=500)
    # How long an event a process is applying stays its own: if the process dies, another
    # relay applies the event after this (each application is bounded to a few seconds).
    dunning_relay_lease_seconds: float = Field(default=120.0, gt=0)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # "dev" relaxes what production refuses (e.g. support routes without a token).
    dunning_env: str = "production"
    dunning_support_token: str = ""
    temporal_ui_url: str = "http://localhost:8233"

    # Payload encryption (models/codec.py): `id:base64key` pairs, the first one encrypts.
    # Production refuses to start without keys unless DUNNING_ENCRYPTION=off says so.
    dunning_encryption_keys: str = ""
    dunning_encryption: Literal["on", "off"] = "on"
    # Bearer token of the codec server (`dunning codec-server`); empty is open in dev only.
    dunning_codec_token: str = ""
    # Or the access token a Temporal UI behind SSO forwards (starter/codec_auth.py).
    dunning_codec_oidc_issuer: str = ""
    dunning_codec_oidc_audience: str = ""
    dunning_codec_oidc_jwks_url: str = ""

    @field_validator("dunning_encryption", mode="before")
    @classmethod
    def _on_off(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    def webhook_secrets(self) -> list[str]:
        """STRIPE_WEBHOOK_SECRET may hold several secrets separated by commas (rotation)."""
        return [s.strip() for s in self.stripe_webhook_secret.split(",") if s.strip()]

    def merchant_webhook_urls(self) -> list[str]:
        return [u.strip() for u in self.dunning_webhook_urls.split(",") if u.strip()]

    @property
    def dev_mode(self) -> bool:
        return self.dunning_env.lower() in ("dev", "development", "local")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
