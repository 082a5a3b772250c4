"""All configuration, from the environment or a `.env` file; read through `get_settings()`."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    dunning_task_queue: str = "dunning"
    dunning_policy: str = "policies/default.yaml"

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

    worker_shutdown_seconds: float = Field(default=30.0, gt=0)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
