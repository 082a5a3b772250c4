"""Stripe's documented test PaymentMethods (https://docs.stripe.com/testing#declined-payments).

Each `pm_card_*` id can be used directly in test mode. Attaching one to a customer creates a new
PaymentMethod with its own `pm_...` id that keeps the card's behaviour, as Stripe does.

advice_code values: Stripe returns `advice_code` (try_again_later, do_not_try_again,
confirm_card_data) on issuer declines "if they provide one"; a real test-mode generic decline
(card ...0002, API 2026-04-22.dahlia) carried `try_again_later`. The others follow the meaning
Stripe gives the advice codes: risk declines (fraud, lost, stolen) must not be retried, stale or
wrong card data needs confirming, and funds/processing problems may clear later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_DECLINED = "Your card was declined."


@dataclass(frozen=True)
class Decline:
    code: str
    decline_code: str
    message: str
    advice_code: str | None = None
    param: str | None = None
    network_decline_code: str | None = None
    # Stripe's test card for 3DS declines off-session payments that need authentication.
    requires_authentication: bool = False


@dataclass(frozen=True)
class TestCard:
    brand: str
    last4: str
    funding: str = "credit"
    decline: Decline | None = None


TEST_CARDS: dict[str, TestCard] = {
    "pm_card_visa": TestCard("visa", "4242"),
    "pm_card_mastercard": TestCard("mastercard", "4444"),
    "pm_card_visa_debit": TestCard("visa", "5556", funding="debit"),
    "pm_card_chargeDeclined": TestCard(
        "visa",
        "0002",
        decline=Decline(
            "card_declined",
            "generic_decline",
            _DECLINED,
            "try_again_later",
            network_decline_code="05",
        ),
    ),
    "pm_card_chargeCustomerFail": TestCard(
        "visa",
        "0341",
        decline=Decline(
            "card_declined",
            "generic_decline",
            _DECLINED,
            "try_again_later",
            network_decline_code="05",
        ),
    ),
    "pm_card_chargeDeclinedInsufficientFunds": TestCard(
        "visa",
        "9995",
        decline=Decline(
            "card_declined",
            "insufficient_funds",
            "Your card has insufficient funds.",
            "try_again_later",
            network_decline_code="51",
        ),
    ),
    "pm_card_chargeDeclinedExpiredCard": TestCard(
        "visa",
        "0069",
        decline=Decline(
            "expired_card",
            "expired_card",
            "Your card has expired.",
            "confirm_card_data",
            param="exp_month",
            network_decline_code="54",
        ),
    ),
    "pm_card_chargeDeclinedIncorrectCvc": TestCard(
        "visa",
        "0127",
        decline=Decline(
            "incorrect_cvc",
            "incorrect_cvc",
            "Your card's security code is incorrect.",
            "confirm_card_data",
            param="cvc",
            network_decline_code="N7",
        ),
    ),
    "pm_card_chargeDeclinedProcessingError": TestCard(
        "visa",
        "0119",
        decline=Decline(
            "processing_error",
            "processing_error",
            "An error occurred while processing your card. Try again in a little bit.",
            "try_again_later",
        ),
    ),
    # Stripe masks risk declines as "Your card was declined." (docs: don't reveal the reason).
    "pm_card_chargeDeclinedFraudulent": TestCard(
        "visa",
        "0019",
        decline=Decline("card_declined", "fraudulent", _DECLINED, "do_not_try_again"),
    ),
    "pm_card_chargeDeclinedLostCard": TestCard(
        "visa",
        "9987",
        decline=Decline(
            "card_declined", "lost_card", _DECLINED, "do_not_try_again", network_decline_code="41"
        ),
    ),
    "pm_card_chargeDeclinedStolenCard": TestCard(
        "visa",
        "9979",
        decline=Decline(
            "card_declined", "stolen_card", _DECLINED, "do_not_try_again", network_decline_code="43"
        ),
    ),
    "pm_card_authenticationRequired": TestCard(
        "visa",
        "3184",
        decline=Decline(
            "authentication_required",
            "authentication_required",
            "Your card was declined. This transaction requires authentication.",
            requires_authentication=True,
        ),
    ),
}


def payment_method_object(
    card: TestCard, pm_id: str, created: int, customer: str | None = None
) -> dict[str, Any]:
    return {
        "id": pm_id,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": None,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "card": {
            "brand": card.brand,
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "pass",
            },
            "country": "US",
            "display_brand": card.brand,
            "exp_month": 12,
            "exp_year": 2034,
            "fingerprint": f"stnd{card.brand[:4]}{card.last4}",
            "funding": card.funding,
            "generated_from": None,
            "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": created,
        "customer": customer,
        "customer_account": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }
