"""How the console renders: the Jinja environment and its filters (times, money, words)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from models.dunning import DunningState
from models.money import currency_exponent
from starter.support.report import duration_words

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates" / "support"


def _when(moment: datetime | None) -> Markup:
    """A <time> in UTC that console.js rewrites into the reader's own zone (named)."""
    if moment is None:
        return Markup("—")
    # PostgreSQL answers in the session's time zone: normalise before printing.
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%d %H:%M UTC")
    return Markup('<time datetime="{}">{}</time>').format(utc.isoformat(), text)


# What each decline class means for the case, for people who do not know Stripe's codes.
DECLINE_WORDS = {
    "soft": "temporary decline: a later retry of the same card may work",
    "new_payment_method": "the card cannot be charged again: the customer needs a new card",
    "authentication": "the bank wants the customer to authenticate the payment (3-D Secure)",
}


def _outcome(state: DunningState) -> str:
    """The outcome once, with its reason ("recovered — charge attempt 2"), never twice."""
    if state.outcome is None:
        return ""
    words = state.outcome.value.replace("_", " ")
    words = "" if words == state.status.value else words
    reason = state.outcome_reason or ""
    return " — ".join(part for part in (words, reason) if part)


def _money(amount: int | None, currency: str) -> str:
    exponent = currency_exponent(currency)
    return f"{(amount or 0) / 10**exponent:,.{exponent}f}"


# Autoescape on for every template: customer names, emails and email bodies are untrusted.
ENV = Environment(loader=FileSystemLoader(TEMPLATE_DIR), autoescape=True, undefined=StrictUndefined)
ENV.filters.update(
    duration=duration_words,
    when=_when,
    money=_money,
    decline_words=lambda c: DECLINE_WORDS.get(c, c),
    outcome=_outcome,
)
