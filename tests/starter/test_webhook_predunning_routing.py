"""The card-update events plan a signal to the customer's card-expiry warnings as well, and
leave the dunning cases' part of the plan exactly as it was."""

from __future__ import annotations

from typing import Any

import pytest

from models.dunning import PaymentMethodUpdatedInput
from models.predunning import CARD_UPDATED_SIGNAL, CardUpdatedInput
from starter.webhooks.payloads import parse_event
from starter.webhooks.routing import Ignore, SignalMatching, SignalPreDunning, plan
from tests.starter import payloads as p

CUSTOMER = "cus_Predunning01"
CARD = "pm_NewCard01"


def _events() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("attached", p.event("payment_method.attached", p.payment_method(CUSTOMER, CARD))),
        ("setup", p.event("setup_intent.succeeded", p.setup_intent(CUSTOMER, CARD))),
        (
            "default",
            p.event(
                "customer.updated",
                p.customer_object(CUSTOMER, CARD),
                previous_attributes={"invoice_settings": {"default_payment_method": "pm_Old01"}},
            ),
        ),
    ]


@pytest.mark.parametrize(("name", "event"), _events(), ids=[n for n, _ in _events()])
def test_card_update_events_reach_the_warnings_of_the_customer(
    name: str, event: dict[str, Any]
) -> None:
    decided = plan(parse_event(p.body_of(event)))

    assert isinstance(decided, SignalMatching)
    # The dunning part, as before.
    assert (decided.attribute, decided.value, decided.signal) == (
        "CustomerId",
        CUSTOMER,
        "payment_method_updated",
    )
    assert decided.arg == PaymentMethodUpdatedInput(
        stripe_event_id=event["id"], payment_method_id=CARD
    )
    assert decided.request_id == f"card:{CARD}"
    # The warnings' part: one signal per card across the three events, as for the cases.
    assert decided.predunning == SignalPreDunning(
        CUSTOMER,
        CARD_UPDATED_SIGNAL,
        CardUpdatedInput(stripe_event_id=event["id"], payment_method_id=CARD),
        f"card:{CARD}",
    )


def test_other_customer_changes_reach_nobody() -> None:
    renamed = p.event(
        "customer.updated", p.customer_object(CUSTOMER, CARD), previous_attributes={"name": "A"}
    )
    assert isinstance(plan(parse_event(p.body_of(renamed))), Ignore)
