"""Stripe activities: invoice context, payment retries and the final action.

The client never retries on its own (max_network_retries=0): Temporal owns retries, with the
same idempotency key each time, so one retry of ours is exactly one Stripe charge.
"""

from __future__ import annotations

from typing import Any

import stripe
from temporalio import activity
from temporalio.exceptions import ApplicationError

from models.activities import (
    FinalActionInput,
    FinalActionResult,
    InvoiceContextInput,
    InvoiceContextResult,
    RetryPaymentInput,
    RetryPaymentResult,
)
from models.dunning import Outcome
from models.settings import Settings
from models.store import Ledger
from policies.loader import PolicyError, cached_policy, resolve_policy_path

# Pinned so that objects keep the shape this code reads; stripe-python 16.x is typed for it.
STRIPE_API_VERSION = "2026-10-28.endive"


def charge_idempotency_key(invoice_id: str, attempt: int) -> str:
    return f"dunning-{invoice_id}:charge:{attempt}"


def make_stripe_client(settings: Settings) -> stripe.StripeClient:
    base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
    return stripe.StripeClient(
        settings.stripe_api_key,
        stripe_version=STRIPE_API_VERSION,
        base_addresses=base,  # type: ignore[arg-type]
        max_network_retries=0,
        http_client=stripe.RequestsClient(timeout=settings.stripe_timeout_seconds),
    )


def _permanent(exc: stripe.StripeError, kind: str) -> ApplicationError:
    detail = exc.user_message or str(exc)
    return ApplicationError(
        f"Stripe refused the request ({exc.http_status} {exc.code or ''}): {detail}",
        type=kind,
        non_retryable=True,
    )


def _classify(exc: stripe.StripeError) -> Exception:
    """Transient errors are re-raised for Temporal to retry; the rest become non-retryable."""
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError | stripe.APIError):
        return exc  # network, 429 (incl. lock_timeout) and 5xx: retry with backoff
    if isinstance(exc, stripe.IdempotencyError):
        return _permanent(exc, "StripeIdempotencyError")
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return _permanent(exc, "StripeAuthenticationError")
    if exc.http_status == 409:
        return exc  # a concurrent request with the same key: Stripe says retry later
    return _permanent(exc, "StripeInvalidRequest")


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if obj is None:
            return None
        obj = obj.get(key) if hasattr(obj, "get") else getattr(obj, key, None)
    return obj


class StripeActivities:
    def __init__(self, client: stripe.StripeClient, ledger: Ledger, default_policy: str) -> None:
        self.client = client
        self.ledger = ledger
        self.default_policy = default_policy

    @activity.defn(name="get_invoice_context")
    def get_invoice_context(self, input: InvoiceContextInput) -> InvoiceContextResult:
        try:
            policy = cached_policy(str(resolve_policy_path(input.policy, self.default_policy)))
        except PolicyError as exc:
            raise ApplicationError(str(exc), type="InvalidPolicy", non_retryable=True) from exc
        try:
            invoice = self.client.v1.invoices.retrieve(
                input.invoice_id, params={"expand": ["customer"]}
            )
            subscription_id = (
                input.subscription_id
                or _get(invoice, "parent", "subscription_details", "subscription")
                or _get(invoice, "subscription")  # API versions before 2025-03-31
            )
            if isinstance(subscription_id, dict | stripe.StripeObject):
                subscription_id = _get(subscription_id, "id")
            subscription_status = None
            if subscription_id:
                subscription = self.client.v1.subscriptions.retrieve(subscription_id)
                subscription_status = subscription.status
            last_error = None
            if not input.decline_code and invoice.status == "open":
                last_error = self._last_payment_error(input.invoice_id)
        except stripe.StripeError as exc:
            raise _classify(exc) from exc

        customer = invoice.customer if not isinstance(invoice.customer, str) else None
        locales = _get(customer, "preferred_locales") or []
        email = _get(customer, "email") or _get(invoice, "customer_email")
        name = _get(customer, "name") or _get(invoice, "customer_name")
        self.ledger.open_case(
            invoice_id=input.invoice_id,
            workflow_id=input.workflow_id,
            customer_id=input.customer_id,
            subscription_id=subscription_id,
            customer_email=email,
            customer_name=name,
            amount_due=input.amount_due,
            currency=input.currency.lower(),
            policy=policy.name,
            first_decline_code=input.decline_code
            or _get(last_error, "decline_code")
            or _get(last_error, "code"),
            stripe_event_id=input.stripe_event_id,
            opened_at=input.opened_at,
        )
        status = invoice.status or "open"
        if status in ("paid", "void"):
            outcome = Outcome.ALREADY_PAID if status == "paid" else Outcome.VOIDED
            self.ledger.record_outcome(input.invoice_id, outcome.value, input.currency.lower(), 0)
        return InvoiceContextResult(
            invoice_status=status,  # type: ignore[arg-type]
            customer_name=name,
            customer_email=email,
            locale=locales[0] if locales else "en",
            amount_due=invoice.amount_due,
            amount_remaining=invoice.amount_remaining,
            currency=invoice.currency,
            hosted_invoice_url=invoice.hosted_invoice_url,
            subscription_id=subscription_id,
            subscription_status=subscription_status,
            decline_code=_get(last_error, "decline_code") or _get(last_error, "code"),
            advice_code=_get(last_error, "advice_code"),
            policy=policy,
        )

    def _last_payment_error(self, invoice_id: str) -> Any:
        """The decline behind the failure: webhooks for invoice.payment_failed do not carry it.

        Since API 2025-03-31 an invoice no longer names its PaymentIntent; its payments do.
        """
        payments = self.client.v1.invoice_payments.list(
            params={"invoice": invoice_id, "limit": 1, "expand": ["data.payment.payment_intent"]}
        )
        for payment in payments.data:
            intent = _get(payment, "payment", "payment_intent")
            if intent is not None and not isinstance(intent, str):
                return _get(intent, "last_payment_error")
        return None

    @activity.defn(name="retry_payment")
    def retry_payment(self, input: RetryPaymentInput) -> RetryPaymentResult:
        key = charge_idempotency_key(input.invoice_id, input.attempt)
        result: RetryPaymentResult
        try:
            params: dict[str, Any] = {"off_session": True}
            if input.payment_method:
                params["payment_method"] = input.payment_method
            invoice = self.client.v1.invoices.pay(
                input.invoice_id,
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": key},
            )
        except stripe.CardError as exc:
            error = exc.error
            result = RetryPaymentResult(
                attempt=input.attempt,
                idempotency_key=key,
                outcome="declined",
                invoice_status="open",
                decline_code=(error.decline_code if error else None) or exc.code,
                advice_code=getattr(error, "advice_code", None) if error else None,
                error_code=exc.code,
                message=exc.user_message,
            )
        except stripe.InvalidRequestError as exc:
            if exc.code != "invoice_already_paid" and "already paid" not in str(exc).lower():
                raise _classify(exc) from exc
            # Paid elsewhere meanwhile (customer portal, another system): that is recovery.
            result = RetryPaymentResult(
                attempt=input.attempt,
                idempotency_key=key,
                outcome="already_paid",
                invoice_status="paid",
                error_code=exc.code,
                message=exc.user_message,
            )
        except stripe.StripeError as exc:
            raise _classify(exc) from exc
        else:
            # A 200 is not proof of payment: check the invoice status Stripe returned.
            paid = invoice.status == "paid"
            result = RetryPaymentResult(
                attempt=input.attempt,
                idempotency_key=key,
                outcome="succeeded" if paid else "not_payable",
                invoice_status=invoice.status,  # type: ignore[arg-type]
                amount_paid=invoice.amount_paid if paid else 0,
                message=None if paid else f"invoice is {invoice.status} after payment",
            )
        if result.outcome != "already_paid":
            self.ledger.record_attempt(
                invoice_id=input.invoice_id,
                attempt_no=input.attempt,
                idempotency_key=key,
                trigger=input.trigger,
                step=input.step,
                outcome=result.outcome,
                decline_code=result.decline_code,
                advice_code=result.advice_code,
                amount=result.amount_paid,
            )
        if result.outcome in ("succeeded", "already_paid"):
            currency, amount_due = self.ledger.case_money(input.invoice_id)
            # Paid elsewhere: Stripe's refusal carries no amount, so count what was due.
            self.ledger.record_outcome(
                input.invoice_id,
                Outcome.RECOVERED.value,
                currency=currency,
                attempts=input.attempt,
                amount_recovered=result.amount_paid or amount_due,
                recovered_step=input.step,
            )
        return result

    @activity.defn(name="apply_final_action")
    def apply_final_action(self, input: FinalActionInput) -> FinalActionResult:
        key = f"dunning-{input.invoice_id}:final"
        action = input.action
        if action == "cancel_subscription" and not input.subscription_id:
            action = "leave_past_due"
        try:
            if action == "cancel_subscription":
                assert input.subscription_id
                outcome, detail = self._cancel(input.subscription_id)
            elif action == "mark_uncollectible":
                outcome, detail = self._mark_uncollectible(input.invoice_id, key)
            else:
                outcome, detail = Outcome.LEFT_PAST_DUE, "invoice left open and past due"
        except stripe.StripeError as exc:
            raise _classify(exc) from exc
        self.ledger.record_outcome(
            input.invoice_id,
            outcome.value,
            currency=self.ledger.case_money(input.invoice_id)[0],
            attempts=input.attempts,
        )
        return FinalActionResult(action=action, outcome=outcome, detail=detail)

    def _cancel(self, subscription_id: str) -> tuple[Outcome, str]:
        # Cancel is a DELETE, which Stripe treats as idempotent by definition (keys apply to
        # POST only); a second cancel is refused, so confirm the subscription is canceled.
        try:
            self.client.v1.subscriptions.cancel(subscription_id)
        except stripe.InvalidRequestError:
            if self.client.v1.subscriptions.retrieve(subscription_id).status != "canceled":
                raise
        return Outcome.SUBSCRIPTION_CANCELED, f"subscription {subscription_id} canceled"

    def _mark_uncollectible(self, invoice_id: str, key: str) -> tuple[Outcome, str]:
        try:
            self.client.v1.invoices.mark_uncollectible(invoice_id, options={"idempotency_key": key})
        except stripe.InvalidRequestError:
            if self.client.v1.invoices.retrieve(invoice_id).status != "uncollectible":
                raise
        return Outcome.MARKED_UNCOLLECTIBLE, f"invoice {invoice_id} marked uncollectible"
