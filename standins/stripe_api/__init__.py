"""A Stripe API stand-in that the real `stripe` SDK can talk to.

    client = stripe.StripeClient("sk_test_x", base_addresses={"api": server.url})

It follows Stripe's documented behaviour for the parts the dunning service uses: customers,
payment methods (the `pm_card_*` test ids), subscriptions, invoices, idempotency keys, error
shapes and signed webhooks. Test controls live under `/_standin/`.
"""

from .app import create_app
from .config import StripeStandinConfig

__all__ = ["StripeStandinConfig", "create_app"]
