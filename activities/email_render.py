"""Render dunning emails (subject, plain text, HTML) from Jinja templates.

Pure: no network, database or Temporal imports, so it can run inside any activity or test.
Templates live in `templates/email/` at the repository root as `<name>.subject.j2`,
`<name>.txt.j2` and `<name>.html.j2`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.numbers import UnknownCurrencyError, format_currency
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel

from models.activities import NotificationInput
from models.money import currency_exponent

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates" / "email"

TEMPLATES: tuple[str, ...] = (
    "payment_failed",
    "reminder",
    "urgent",
    "final_notice",
    "canceled",
    "recovered",
    "authentication_needed",
)

FALLBACK_LOCALE = "en"
FALLBACK_NAME = "there"


class EmailContext(BaseModel):
    customer_name: str | None = None
    locale: str = "en"
    amount_due: int
    currency: str
    invoice_id: str
    hosted_invoice_url: str | None = None
    update_payment_url: str | None = None
    action_needed: Literal["update_payment_method", "authenticate"] | None = None
    final_deadline: datetime | None = None
    final_action: Literal["cancel_subscription", "mark_uncollectible", "leave_past_due"] | None = (
        None
    )
    attempts: int = 0


def message_context(input: NotificationInput, update_payment_url: str = "") -> EmailContext:
    """What every channel's message says about the case. The link is DUNNING_UPDATE_PAYMENT_URL
    with {customer} and {invoice} filled in, else Stripe's hosted invoice page."""
    url = input.hosted_invoice_url
    if update_payment_url:
        url = update_payment_url.format(customer=input.customer_id, invoice=input.invoice_id)
    return EmailContext(
        customer_name=input.customer_name,
        locale=input.locale,
        amount_due=input.amount_due,
        currency=input.currency,
        invoice_id=input.invoice_id,
        hosted_invoice_url=input.hosted_invoice_url,
        update_payment_url=url,
        action_needed=input.action_needed,
        final_deadline=input.final_deadline,
        final_action=input.final_action,
        attempts=input.attempts,
    )


class RenderedEmail(BaseModel):
    subject: str
    text: str
    html: str


def _resolve_locale(locale: str | None) -> Locale:
    # Stripe's preferred_locales use BCP 47 tags ("fr-CA"); Babel wants "fr_CA".
    if locale:
        try:
            return Locale.parse(locale.strip().replace("-", "_"))
        except (UnknownLocaleError, ValueError, TypeError):
            pass
    return Locale.parse(FALLBACK_LOCALE)


def format_amount(amount_minor: int, currency: str, locale: str = "en") -> str:
    code = currency.upper()
    value = Decimal(amount_minor).scaleb(-currency_exponent(code))
    loc = _resolve_locale(locale)
    try:
        return format_currency(value, code, locale=loc)
    except UnknownCurrencyError:
        # Keep the digits Stripe implies rather than failing a dunning email on a rare code.
        return f"{code} {value}"


def _format_deadline(deadline: datetime | None, locale: str) -> str | None:
    if deadline is None:
        return None
    loc = _resolve_locale(locale)
    # The copy is English, so month names follow it; an English regional variant (en_GB)
    # still decides day/month order.
    date_locale = loc if loc.language == "en" else Locale.parse(FALLBACK_LOCALE)
    return format_date(deadline.date(), format="long", locale=date_locale)


_CONSEQUENCES = {
    "cancel_subscription": "your subscription will be canceled",
    "mark_uncollectible": (
        "your account will be closed for collection and the invoice written off as uncollectible"
    ),
    "leave_past_due": "your account will remain past due until the balance is paid",
    None: "we may have to take further action on your account",
}


def _call_to_action(template: str, ctx: EmailContext) -> dict[str, str] | None:
    # A recovered payment needs no action; link to the paid invoice as a receipt.
    if template == "recovered":
        action: str | None = "receipt"
    else:
        action = ctx.action_needed
    if action == "update_payment_method":
        # The hosted invoice page also accepts a new card, so it is a usable fallback.
        url = ctx.update_payment_url or ctx.hosted_invoice_url
        phrase, button = "update your card", "Update your card"
    elif action == "authenticate":
        # Stripe: customers complete 3D Secure for an invoice on its hosted invoice page.
        url = ctx.hosted_invoice_url
        phrase, button = "confirm the payment", "Confirm the payment"
    elif action == "receipt":
        url = ctx.hosted_invoice_url
        phrase, button = "view your invoice", "View invoice"
    else:
        url = ctx.hosted_invoice_url
        phrase, button = "view and pay the invoice", "View and pay invoice"
    if not url:
        return None
    return {"url": url, "phrase": phrase, "button": button}


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        # Only the HTML part is escaped; subject and text are plain text.
        autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def message_variables(template: str, context: EmailContext) -> dict[str, object]:
    """What every channel's templates of a message see (email, SMS, in-app)."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown email template {template!r}; expected one of {TEMPLATES}")
    name = (context.customer_name or "").strip() or FALLBACK_NAME
    return {
        "name": name,
        "amount": format_amount(context.amount_due, context.currency, context.locale),
        "invoice_id": context.invoice_id,
        "cta": _call_to_action(template, context),
        "deadline": _format_deadline(context.final_deadline, context.locale),
        "final_action": context.final_action,
        "consequence": _CONSEQUENCES[context.final_action],
        "attempts": context.attempts,
    }


def render_email(template: str, context: EmailContext) -> RenderedEmail:
    variables = message_variables(template, context)
    env = _environment()
    subject = env.get_template(f"{template}.subject.j2").render(variables)
    text = env.get_template(f"{template}.txt.j2").render(variables)
    html = env.get_template(f"{template}.html.j2").render(variables)
    return RenderedEmail(
        # A subject is a single header line; collapse whitespace so a name can't add lines.
        subject=" ".join(subject.split()),
        text=text.strip() + "\n",
        html=html.strip() + "\n",
    )
