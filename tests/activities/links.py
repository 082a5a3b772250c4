"""A payment page link as the send activities make it, for the messages' length tests."""

from __future__ import annotations

from datetime import UTC, datetime

from models.pay_links import link_expiry, pay_url
from models.settings import Settings


def page_link() -> str:
    """A Stripe invoice id, a dated key id and a merchant's own domain: 171 characters."""
    settings = Settings(
        dunning_link_secret="2026-11:" + "s" * 40,
        dunning_public_url="https://billing.example-merchant.com",
        _env_file=None,  # type: ignore[call-arg]
    )
    deadline = datetime(2026, 12, 24, tzinfo=UTC)
    link = pay_url(settings, "in_1PqRsTuVwXyZaBcDeFgHiJkL", link_expiry(deadline))
    assert link is not None and len(link) == 171
    return link
