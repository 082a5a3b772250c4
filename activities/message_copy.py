"""What every channel's message says about a case (email, SMS, in-app), in the customer's
language: the context a case gives a message, and the variables its templates see.

Pure: no network, database or Temporal imports. The copy written here in Python (what happens
after a final notice, the action a link leads to) is marked for `pybabel extract` like the
templates' and translated through the same catalog (models/i18n.py).
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Callable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from models.activities import NotificationInput
from models.i18n import format_day, format_money, supported_locale, translations

TEMPLATES: tuple[str, ...] = (
    "payment_failed",
    "reminder",
    "urgent",
    "final_notice",
    "canceled",
    "recovered",
    "authentication_needed",
)

# An experiment arm names template files (`reminder.b.subject.j2`), so it must be a plain word.
VARIANT = re.compile(r"^[a-z0-9_]{1,32}$")


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated where it is used."""
    return message


# How an SMS addresses a customer whose name we don't know ("There, your payment…"; in
# Spanish "Hola, tu pago…"), so it is a word to translate, not a name.
FALLBACK_NAME = N_("there")

_CONSEQUENCES = {
    "cancel_subscription": N_("your subscription will be canceled"),
    "mark_uncollectible": N_(
        "your account will be closed for collection and the invoice written off as uncollectible"
    ),
    "leave_past_due": N_("your account will remain past due until the balance is paid"),
    None: N_("we may have to take further action on your account"),
}
# The same, short enough for a final notice by SMS to fit two segments with a long link.
_SHORT_CONSEQUENCES = {
    "cancel_subscription": N_("your subscription will be canceled"),
    "mark_uncollectible": N_("your account will be closed"),
    "leave_past_due": N_("your account will stay past due"),
    None: N_("we may take further action"),
}

# Issue 11's one question after the outcome, asked by the closing messages when the case has
# a payment page: the page of a closed case asks the same question (templates/pay/closed).
# An SMS asks it in fewer words, as its link alone is about half of one segment.
_FEEDBACK_QUESTIONS = {
    "recovered": (
        N_("One question, if you have a moment: what made the payment fail?"),
        N_("One question: what made the payment fail?"),
    ),
    "canceled": (
        N_("One question, if you have a moment: why are you leaving?"),
        N_("One question: why are you leaving?"),
    ),
}


class EmailContext(BaseModel):
    customer_name: str | None = None
    # Any tag the case resolved (preferences, Stripe's preferred_locales): "es-MX", "en".
    locale: str = "en"
    # The customer's IANA time zone: dates are the day it is there. None: UTC.
    timezone: str | None = None
    amount_due: int
    currency: str
    invoice_id: str
    plan_name: str | None = None
    hosted_invoice_url: str | None = None
    update_payment_url: str | None = None
    pay_url: str | None = None
    action_needed: Literal["update_payment_method", "authenticate"] | None = None
    next_step_at: datetime | None = None
    final_deadline: datetime | None = None
    final_action: Literal["cancel_subscription", "mark_uncollectible", "leave_past_due"] | None = (
        None
    )
    attempts: int = 0
    variant: str | None = None


# The payment page's link for (invoice, final deadline), or None when the page is off: made
# in the activity from DUNNING_LINK_SECRET, so no token ever sits in a workflow's history.
PageLink = Callable[[str, datetime | None], str | None]


def message_context(
    input: NotificationInput, update_payment_url: str = "", page_link: PageLink | None = None
) -> EmailContext:
    """What every channel's message says about the case. The link is DUNNING_UPDATE_PAYMENT_URL
    with {customer} and {invoice} filled in, else Stripe's hosted invoice page; the case's
    payment page (`pay_url`) comes before both."""
    page = input.pay_url or (
        page_link(input.invoice_id, input.final_deadline) if page_link else None
    )
    url = input.hosted_invoice_url
    if update_payment_url:
        url = update_payment_url.format(customer=input.customer_id, invoice=input.invoice_id)
    return EmailContext(
        customer_name=input.customer_name,
        locale=input.locale,
        timezone=input.timezone,
        amount_due=input.amount_due,
        currency=input.currency,
        invoice_id=input.invoice_id,
        plan_name=input.plan_name,
        hosted_invoice_url=input.hosted_invoice_url,
        update_payment_url=url,
        pay_url=page,
        action_needed=input.action_needed,
        next_step_at=input.next_step_at,
        final_deadline=input.final_deadline,
        final_action=input.final_action,
        attempts=input.attempts,
        variant=input.variant,
    )


def catalog_for(context: EmailContext) -> gettext.NullTranslations:
    return translations(context.locale)


def _call_to_action(
    template: str, ctx: EmailContext, catalog: gettext.NullTranslations
) -> dict[str, str] | None:
    # A recovered payment needs no action; link to the paid invoice as a receipt.
    if template == "recovered":
        action: str | None = "receipt"
    else:
        action = ctx.action_needed
    # Spanish (like most languages) words "to update" and "please update" differently, so the
    # phrase comes in both forms: `phrase` after "to"/"you can", `request` after "please".
    if action == "update_payment_method":
        # The hosted invoice page also accepts a new card, so it is a usable fallback.
        url = ctx.pay_url or ctx.update_payment_url or ctx.hosted_invoice_url
        phrase = catalog.pgettext("infinitive", "update your card")
        request = catalog.pgettext("imperative", "update your card")
        button = catalog.gettext("Update your card")
    elif action == "authenticate":
        # Stripe: customers complete 3D Secure for an invoice on its hosted invoice page, which
        # our payment page hands them on to.
        url = ctx.pay_url or ctx.hosted_invoice_url
        phrase = catalog.pgettext("infinitive", "confirm the payment")
        request = catalog.pgettext("imperative", "confirm the payment")
        button = catalog.gettext("Confirm the payment")
    elif action == "receipt":
        url = ctx.hosted_invoice_url
        phrase = catalog.pgettext("infinitive", "view your invoice")
        request = catalog.pgettext("imperative", "view your invoice")
        button = catalog.gettext("View invoice")
    else:
        # A canceled case's page only asks the feedback question: paying the invoice that is
        # still open happens on Stripe's hosted page.
        page = None if template == "canceled" else ctx.pay_url
        url = page or ctx.hosted_invoice_url
        phrase = catalog.pgettext("infinitive", "view and pay the invoice")
        request = catalog.pgettext("imperative", "view and pay the invoice")
        button = catalog.gettext("View and pay invoice")
    if not url:
        return None
    return {"url": url, "phrase": phrase, "request": request, "button": button}


def _feedback(
    template: str, ctx: EmailContext, catalog: gettext.NullTranslations
) -> dict[str, str] | None:
    questions = _FEEDBACK_QUESTIONS.get(template)
    if questions is None or not ctx.pay_url:
        return None
    question, short = questions
    return {
        "question": catalog.gettext(question),
        "short_question": catalog.gettext(short),
        "url": ctx.pay_url,
    }


def message_variables(
    template: str, context: EmailContext, catalog: gettext.NullTranslations | None = None
) -> dict[str, object]:
    """What every channel's templates of a message see (email, SMS, in-app)."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown email template {template!r}; expected one of {TEMPLATES}")
    catalog = catalog or catalog_for(context)
    customer_name = (context.customer_name or "").strip() or None
    plan = (context.plan_name or "").strip() or None
    if plan:
        subject_of = catalog.gettext("your %(plan)s plan (invoice %(invoice_id)s)") % {
            "plan": plan,
            "invoice_id": context.invoice_id,
        }
    else:
        subject_of = catalog.gettext("invoice %(invoice_id)s") % {"invoice_id": context.invoice_id}

    def day(moment: datetime | None) -> str | None:
        return None if moment is None else format_day(moment, context.locale, context.timezone)

    return {
        "lang": supported_locale(context.locale),
        "customer_name": customer_name,
        "name": customer_name or catalog.gettext(FALLBACK_NAME).capitalize(),
        "amount": format_money(context.amount_due, context.currency, context.locale),
        "invoice_id": context.invoice_id,
        "plan": plan,
        # "invoice in_1" or "your Pro plan (invoice in_1)": what the payment is for.
        "subject_of": subject_of,
        "cta": _call_to_action(template, context, catalog),
        # The closing messages' question and the payment page's link; None: no such line.
        "feedback": _feedback(template, context, catalog),
        "next_date": day(context.next_step_at),
        "deadline": day(context.final_deadline),
        "final_action": context.final_action,
        "consequence": catalog.gettext(_CONSEQUENCES[context.final_action]),
        "short_consequence": catalog.gettext(_SHORT_CONSEQUENCES[context.final_action]),
        "attempts": context.attempts,
    }
