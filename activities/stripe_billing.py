"""Stripe activities: invoice context, charge retries, the last look and the final action.

Only the invoice is required to open a case; everything else read from Stripe (customer,
subscription, the last decline) is enrichment that another Stripe implementation or API version
may not serve, so its failure is logged and the case goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import stripe
from temporalio import activity

from activities.failures import compact_failures
from activities.segments import policy_named, segment_for
from activities.stripe_client import charge_idempotency_key
from activities.stripe_last_look import last_look, settled_outcome, untried_card
from activities.stripe_subscriptions import cancel_subscription
from models.activities import (
    FinalActionInput,
    FinalActionResult,
    InvoiceCheckInput,
    InvoiceCheckResult,
    InvoiceContextInput,
    InvoiceContextResult,
    RetryPaymentInput,
    RetryPaymentResult,
)
from models.dunning import Outcome
from models.preferences import PreferenceStore, customer_reach
from models.store import Ledger
from models.stripe_reads import (
    decline_of,
    failed_charge,
    get,
    last_decline,
    object_id,
    optional,
    plan_name,
)
from policies.rules import RuleSet
from policies.schema import Channel

# The ledger's reads that need nothing from Stripe run beside its calls, not after them: a
# round trip off the case's opening. Shared by every StripeActivities of the process.
BESIDE = ThreadPoolExecutor(max_workers=4, thread_name_prefix="beside-stripe")


class StripeActivities:
    def __init__(
        self,
        client: stripe.StripeClient,
        ledger: Ledger,
        default_policy: str,
        case_event_channels: Sequence[Channel] = (),
        rules: RuleSet | None = None,
        quiet_hours: bool = True,
        preferences: PreferenceStore | None = None,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.preferences = preferences or PreferenceStore(ledger.sessions)
        self.default_policy = default_policy
        self.rules = rules
        self.quiet_hours = quiet_hours
        # Told to each case as it opens (and so recorded in its history).
        self.case_event_channels = list(case_event_channels)

    @activity.defn(name="get_invoice_context")
    @compact_failures
    def get_invoice_context(self, input: InvoiceContextInput) -> InvoiceContextResult:
        policy = policy_named(input.policy, self.default_policy)
        preferences = BESIDE.submit(self.preferences.get, input.customer_id)
        invoice = self.client.v1.invoices.retrieve(
            input.invoice_id, params={"expand": ["customer"]}
        )
        customer: Any = invoice.customer
        if isinstance(customer, str):  # an implementation that does not expand
            customer = optional("customer", lambda: self.client.v1.customers.retrieve(customer))
        subscription_id = (
            input.subscription_id
            or object_id(get(invoice, "parent", "subscription_details", "subscription"))
            or object_id(get(invoice, "subscription"))  # API versions before 2025-03-31
        )
        subscription = None
        if subscription_id:
            sub_id = subscription_id
            subscription = optional(
                "subscription", lambda: self.client.v1.subscriptions.retrieve(sub_id)
            )
        status = invoice.status or "open"
        decline_code, advice_code, failed_card = None, None, None
        if status == "open":
            error = last_decline(self.client, invoice)
            decline_code, advice_code = decline_of(error)
            failed_card = object_id(get(error, "payment_method"))
            if error is None:
                decline_code, failed_card = failed_charge(self.client, invoice)
        segment = segment_for(
            self.rules,
            input.policy,
            policy,
            self.ledger,
            (invoice, customer, subscription),
            (input.decline_code or decline_code, advice_code),
            (input.invoice_id, input.customer_id, input.opened_at),
        )
        policy = policy_named(segment.policy, self.default_policy) if segment else policy
        if not self.quiet_hours:  # DUNNING_QUIET_HOURS=off: messages at any hour
            policy = policy.model_copy(update={"quiet_hours": None})
        email = get(customer, "email") or get(invoice, "customer_email")
        name = get(customer, "name") or get(invoice, "customer_name")
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
            **(segment.recorded() if segment else {}),
            first_decline_code=input.decline_code or decline_code,
            stripe_event_id=input.stripe_event_id,
            opened_at=input.opened_at,
        )
        prefs = preferences.result()
        return InvoiceContextResult(
            invoice_status=status,  # type: ignore[arg-type]
            customer_name=name,
            customer_email=email,
            **customer_reach(customer, invoice, prefs),
            plan_name=plan_name(subscription),
            amount_due=invoice.amount_due,
            amount_remaining=invoice.amount_remaining,
            currency=invoice.currency,
            hosted_invoice_url=invoice.hosted_invoice_url,
            subscription_id=subscription_id,
            subscription_status=get(subscription, "status"),
            default_payment_method=object_id(
                get(customer, "invoice_settings", "default_payment_method")
            ),
            decline_code=decline_code,
            advice_code=advice_code,
            failed_payment_method=failed_card,
            case_event_channels=self.case_event_channels,
            policy=policy,
            **(segment.recorded() if segment else {}),
            message_variant=segment.message_variant if segment else None,
        )

    @activity.defn(name="retry_payment")
    @compact_failures
    def retry_payment(self, input: RetryPaymentInput) -> RetryPaymentResult:
        key = charge_idempotency_key(input.invoice_id, input.attempt, input.key_generation)
        base = {"attempt": input.attempt, "idempotency_key": key}
        params: dict[str, Any] = {"off_session": True}
        if input.payment_method:
            params["payment_method"] = input.payment_method
        try:
            invoice = self.client.v1.invoices.pay(
                input.invoice_id,
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": key},
            )
        except stripe.CardError as exc:
            code, advice = decline_of(exc.error)
            result = RetryPaymentResult(
                **base,
                outcome="declined",
                invoice_status="open",
                decline_code=code or exc.code,
                advice_code=advice,
                error_code=exc.code,
                message=exc.user_message,
            )
        except stripe.InvalidRequestError as exc:
            if exc.code != "invoice_already_paid" and "already paid" not in str(exc).lower():
                raise
            # Paid elsewhere meanwhile (customer portal, another system): that is recovery.
            return RetryPaymentResult(
                **base, outcome="already_paid", invoice_status="paid", error_code=exc.code
            )
        except stripe.APIError as exc:
            # Stripe saved this 5xx under our key and replays it for 24 h: retrying the key is
            # useless. Look at the invoice; if still open, nothing was charged and the workflow
            # retries under the key's next generation.
            now = self.client.v1.invoices.retrieve(input.invoice_id)
            if now.status == "paid":
                return RetryPaymentResult(
                    **base,
                    outcome="already_paid",
                    invoice_status="paid",
                    amount_paid=now.amount_paid,
                )
            return RetryPaymentResult(
                **base,
                outcome="provider_error",
                invoice_status=now.status,  # type: ignore[arg-type]
                error_code=exc.code,
                message=f"Stripe {exc.http_status} (request {exc.request_id})",
            )
        else:
            # A 200 is not proof of payment: check the invoice status Stripe returned.
            paid = invoice.status == "paid"
            result = RetryPaymentResult(
                **base,
                outcome="succeeded" if paid else "not_payable",
                invoice_status=invoice.status,  # type: ignore[arg-type]
                amount_paid=invoice.amount_paid if paid else 0,
                message=None if paid else f"invoice is {invoice.status} after payment",
            )
        self.ledger.record_attempt(
            invoice_id=input.invoice_id,
            attempt_no=input.attempt,
            idempotency_key=key,
            trigger=input.trigger.value,
            step=input.step,
            outcome=result.outcome,
            decline_code=result.decline_code,
            advice_code=result.advice_code,
            amount=result.amount_paid,
        )
        return result

    @activity.defn(name="check_invoice")
    @compact_failures
    def check_invoice(self, input: InvoiceCheckInput) -> InvoiceCheckResult:
        """The last look of cases begun before `apply_final_action` took it itself
        (workflows/final_action.py); kept registered for them."""
        invoice = self.client.v1.invoices.retrieve(input.invoice_id)
        customer = optional(
            "customer", lambda: self.client.v1.customers.retrieve(input.customer_id)
        )
        return InvoiceCheckResult(
            invoice_status=invoice.status or "open",  # type: ignore[arg-type]
            amount_paid=invoice.amount_paid or 0,
            default_payment_method=object_id(
                get(customer, "invoice_settings", "default_payment_method")
            ),
        )

    @activity.defn(name="apply_final_action")
    @compact_failures
    def apply_final_action(self, input: FinalActionInput) -> FinalActionResult:
        action = input.action
        if action == "cancel_subscription" and not input.subscription_id:
            action = "leave_past_due"
        # The last look, right before acting: a customer who paid is never canceled, and a
        # default card the case never charged is charged first (nothing is done here then).
        invoice = last_look(self.client, input)
        settled = settled_outcome(invoice, input, action)
        if settled is not None:
            return settled
        card = untried_card(self.client, invoice, input)
        if card is not None:
            return FinalActionResult(
                action=action,
                outcome=None,
                detail=f"the default card {card} was never charged: charge it first",
                untried_card=card,
            )
        if action == "cancel_subscription":
            assert input.subscription_id
            cancel_subscription(self.client, input.subscription_id)
            return FinalActionResult(
                action=action,
                outcome=Outcome.SUBSCRIPTION_CANCELED,
                detail=f"subscription {input.subscription_id} canceled",
            )
        if action == "mark_uncollectible":
            try:
                self.client.v1.invoices.mark_uncollectible(
                    input.invoice_id,
                    options={"idempotency_key": f"dunning-{input.invoice_id}:final"},
                )
            except stripe.InvalidRequestError:
                # Refused because the invoice changed meanwhile (paid, voided, already marked).
                now = self.client.v1.invoices.retrieve(input.invoice_id)
                settled = settled_outcome(now, input, action, after_refusal=True)
                if settled is None:
                    raise
                return settled
            return FinalActionResult(
                action=action,
                outcome=Outcome.MARKED_UNCOLLECTIBLE,
                detail=f"invoice {input.invoice_id} marked uncollectible",
            )
        return FinalActionResult(
            action=action,
            outcome=Outcome.LEFT_PAST_DUE,
            detail="invoice left open and past due",
        )
