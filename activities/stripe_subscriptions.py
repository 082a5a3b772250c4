"""Stripe activities on the subscription that the customer asks for from the payment page."""

from __future__ import annotations

from datetime import UTC, datetime

import stripe
from temporalio import activity

from activities.failures import compact_failures
from models.activities import PauseSubscriptionInput, PauseSubscriptionResult
from policies.case_facts import get


class StripeSubscriptionActivities:
    def __init__(self, client: stripe.StripeClient) -> None:
        self.client = client

    @activity.defn(name="pause_subscription")
    @compact_failures
    def pause_subscription(self, input: PauseSubscriptionInput) -> PauseSubscriptionResult:
        """Stripe `pause_collection` until `resumes_at`. `keep_as_draft` (Stripe: "temporarily
        offer services for free and collect payment later"): invoices made meanwhile stay
        drafts, so nothing is charged or dunned while paused. The key makes a retried
        activity one pause; a pause already in place is the same result."""
        resumes = int(input.resumes_at.timestamp())
        subscription = self.client.v1.subscriptions.update(
            input.subscription_id,
            params={"pause_collection": {"behavior": "keep_as_draft", "resumes_at": resumes}},
            options={"idempotency_key": f"dunning-{input.invoice_id}:pause"},
        )
        behavior = get(subscription, "pause_collection", "behavior") or "keep_as_draft"
        until = get(subscription, "pause_collection", "resumes_at") or resumes
        return PauseSubscriptionResult(
            behavior=str(behavior), resumes_at=datetime.fromtimestamp(int(until), UTC)
        )


def cancel_subscription(client: stripe.StripeClient, subscription_id: str) -> None:
    """The final action's cancel. It is a DELETE, which Stripe treats as idempotent by
    definition (keys apply to POST only); a second cancel is refused, so confirm it stands."""
    try:
        client.v1.subscriptions.cancel(subscription_id)
    except stripe.InvalidRequestError:
        if client.v1.subscriptions.retrieve(subscription_id).status != "canceled":
            raise
