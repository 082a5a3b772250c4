"""The customer's actions: the case's `customer_*` Updates, and the card's SetupIntent.

The Update id is the page's request id (its form nonce) under the action's name, so a form
posted twice is one action; the workflow's validator decides, and its refusal is the answer.
Refusals and "no such case" come back as `starter.support.service`'s exceptions, as support's
actions do, so both pages and the API speak of the same three outcomes.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

import stripe
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from stripe.params import SetupIntentCreateParams
from temporalio.client import Client

from models import customer_actions as ca
from models.settings import Settings
from models.stripe_reads import get, make_stripe_client, object_id
from starter.deps import bounded
from starter.support.service import execute_case_update

Action = Literal["pay-now", "more-time", "pause", "cancel", "contact"]
UPDATES: dict[Action, str] = {
    "pay-now": ca.CUSTOMER_PAY_NOW,
    "more-time": ca.CUSTOMER_MORE_TIME,
    "pause": ca.CUSTOMER_PAUSE,
    "cancel": ca.CUSTOMER_CANCEL,
    "contact": ca.CUSTOMER_CONTACT,
}
# An Update waits for a worker to validate and run it; cancel waits for the final action.
ACTION_TIMEOUT_SECONDS = 20.0


class BadForm(ValueError):
    """What the customer typed cannot be an input (no date, an empty message)."""


def action_input(action: Action, form: dict[str, str]) -> BaseModel:
    request_id = form["request_id"]
    try:
        if action == "more-time":
            return ca.CustomerMoreTimeInput(
                request_id=request_id, until=date.fromisoformat(form.get("until", ""))
            )
        if action == "contact":
            return ca.CustomerContactInput(
                request_id=request_id, message=form.get("message", "").strip()
            )
    except ValueError as err:  # ValidationError included
        raise BadForm(action) from err
    inputs: dict[Action, type[ca.CustomerActionInput]] = {
        "pay-now": ca.CustomerPayNowInput,
        "pause": ca.CustomerPauseInput,
        "cancel": ca.CustomerCancelInput,
    }
    return inputs[action](request_id=request_id)


async def run_update(
    client: Client, invoice_id: str, name: str, payload: Any
) -> ca.CustomerActionResult:
    update = f"customer:{name}:{payload.request_id}"
    call = execute_case_update(client, invoice_id, name, payload, update, ca.CustomerActionResult)
    result: ca.CustomerActionResult = await bounded(call, ACTION_TIMEOUT_SECONDS)
    return result


# The card: a SetupIntent for the case's customer, confirmed by Stripe.js (or the stand-in's
# test page), then handed to the case as `customer_new_card`.


class CardNotUsable(Exception):
    """The SetupIntent is not this customer's, or did not succeed."""


def _create_setup_intent(settings: Settings, customer_id: str, invoice_id: str) -> Any:
    params: SetupIntentCreateParams = {
        "customer": customer_id,
        # Saved for the retries the case makes without the customer present.
        "usage": "off_session",
        "metadata": {"dunning_invoice": invoice_id},
    }
    return make_stripe_client(settings).v1.setup_intents.create(params=params)


async def create_setup_intent(settings: Settings, customer_id: str, invoice_id: str) -> Any:
    return await run_in_threadpool(_create_setup_intent, settings, customer_id, invoice_id)


def _confirmed_card(settings: Settings, setup_intent_id: str, customer_id: str) -> str:
    client = make_stripe_client(settings)
    try:
        si = client.v1.setup_intents.retrieve(setup_intent_id)
    except stripe.InvalidRequestError as err:
        raise CardNotUsable("unknown setup intent") from err
    pm = object_id(get(si, "payment_method"))
    if object_id(get(si, "customer")) != customer_id or get(si, "status") != "succeeded" or not pm:
        raise CardNotUsable("setup intent not usable for this case")
    return pm


async def confirmed_card(settings: Settings, setup_intent_id: str, customer_id: str) -> str:
    """The payment method of a succeeded SetupIntent of this customer; CardNotUsable else."""
    return await run_in_threadpool(_confirmed_card, settings, setup_intent_id, customer_id)
