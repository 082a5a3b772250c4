"""Email templates and renderer (activities/email_render.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from activities.email_render import (
    TEMPLATES,
    EmailContext,
    RenderedEmail,
    format_amount,
    render_email,
)

HOSTED = "https://invoice.stripe.com/i/acct_1/test_abc?s=ap&x=1"
UPDATE = "https://billing.example.com/update-card?token=t1"


def ctx(**overrides: Any) -> EmailContext:
    base: dict[str, Any] = {
        "customer_name": "Ada Lovelace",
        "amount_due": 1200,
        "currency": "eur",
        "invoice_id": "in_1Abc",
        "hosted_invoice_url": HOSTED,
        "update_payment_url": UPDATE,
    }
    base.update(overrides)
    return EmailContext(**base)


def nbsp(value: str) -> str:
    # CLDR puts a no-break space (or narrow one) between number and symbol in many locales.
    return value.replace("\xa0", " ").replace("\u202f", " ")


def html_url(url: str) -> str:
    return url.replace("&", "&amp;")


def test_template_names() -> None:
    assert TEMPLATES == (
        "payment_failed",
        "reminder",
        "urgent",
        "final_notice",
        "canceled",
        "recovered",
        "authentication_needed",
    )


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        (1200, "EUR", "de", "12,00 €"),
        (1200, "eur", "en", "€12.00"),
        (1200, "JPY", "en", "¥1,200"),
        (1500, "KWD", "en", "1.500"),
        (123456, "usd", "en", "$1,234.56"),
        (1234, "CAD", "fr-CA", "12,34 $"),
        (5000, "XOF", "fr", "5 000"),
        (1200, "EUR", "not-a-locale", "€12.00"),
        (1200, "EUR", "", "€12.00"),
    ],
)
def test_format_amount(amount: int, currency: str, locale: str, expected: str) -> None:
    assert expected in nbsp(format_amount(amount, currency, locale))


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders_all_parts(template: str) -> None:
    email = render_email(template, ctx(locale="de"))
    assert isinstance(email, RenderedEmail)
    assert email.subject and "\n" not in email.subject
    for part in (email.text, email.html):
        assert "Ada Lovelace" in part
        assert "12,00 €" in nbsp(part)
        assert "in_1Abc" in part
    assert email.html.lstrip().startswith("<!DOCTYPE html>")
    assert "<" not in email.text


@pytest.mark.parametrize("template", TEMPLATES)
def test_no_undefined_or_leftover_markup(template: str) -> None:
    email = render_email(
        template, ctx(customer_name=None, hosted_invoice_url=None, update_payment_url=None)
    )
    for part in (email.subject, email.text, email.html):
        assert "None" not in part
        assert "{{" not in part and "{%" not in part


ACTION_TEMPLATES = tuple(t for t in TEMPLATES if t != "recovered")


@pytest.mark.parametrize("template", ACTION_TEMPLATES)
@pytest.mark.parametrize(
    ("action", "label", "url"),
    [
        ("update_payment_method", "update your card", UPDATE),
        ("authenticate", "confirm the payment", HOSTED),
        (None, "view and pay the invoice", HOSTED),
    ],
)
def test_call_to_action_follows_action_needed(
    template: str, action: str | None, label: str, url: str
) -> None:
    email = render_email(template, ctx(action_needed=action))
    assert label in email.text
    assert label in email.html
    assert url in email.text
    assert f'href="{html_url(url)}"' in email.html
    other = HOSTED if url == UPDATE else UPDATE
    assert other not in email.text


def test_update_card_falls_back_to_hosted_invoice() -> None:
    email = render_email(
        "reminder", ctx(action_needed="update_payment_method", update_payment_url=None)
    )
    assert HOSTED in email.text


def test_recovered_links_to_invoice_not_to_an_action() -> None:
    email = render_email("recovered", ctx(action_needed="update_payment_method"))
    assert HOSTED in email.text
    assert UPDATE not in email.text
    assert "update your card" not in email.text


def test_html_escapes_customer_name() -> None:
    email = render_email("payment_failed", ctx(customer_name="<script>alert(1)</script>"))
    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "<script>alert(1)</script>" in email.text


@pytest.mark.parametrize("name", [None, "", "   "])
def test_missing_name_falls_back_to_there(name: str | None) -> None:
    email = render_email("payment_failed", ctx(customer_name=name))
    assert "Hi there," in email.text
    assert "Hi there," in email.html


def test_unknown_template_is_value_error() -> None:
    with pytest.raises(ValueError, match="no_such_template"):
        render_email("no_such_template", ctx())


@pytest.mark.parametrize(
    ("final_action", "phrase"),
    [
        ("cancel_subscription", "subscription will be canceled"),
        ("mark_uncollectible", "written off"),
        ("leave_past_due", "remain past due"),
    ],
)
def test_final_notice_states_deadline_and_consequence(final_action: str, phrase: str) -> None:
    deadline = datetime(2025, 3, 5, 12, tzinfo=UTC)
    email = render_email("final_notice", ctx(final_deadline=deadline, final_action=final_action))
    for part in (email.text, email.html):
        assert "March 5, 2025" in part
        assert phrase in part
    assert "March 5, 2025" in email.subject


def test_final_notice_without_deadline_still_renders() -> None:
    email = render_email("final_notice", ctx())
    assert "final notice" in email.text.lower()


def test_tone_escalates() -> None:
    subjects = {t: render_email(t, ctx()).subject for t in TEMPLATES}
    assert subjects["reminder"].startswith("Reminder")
    assert subjects["urgent"].startswith("Action required")
    assert subjects["final_notice"].startswith("Final notice")


@pytest.mark.parametrize("template", TEMPLATES)
def test_never_mentions_fraud(template: str) -> None:
    email = render_email(
        template, ctx(final_action="mark_uncollectible", final_deadline=datetime(2025, 1, 1))
    )
    for part in (email.subject, email.text, email.html):
        assert "fraud" not in part.lower()


def test_zero_decimal_amount_in_email() -> None:
    email = render_email("payment_failed", ctx(amount_due=1200, currency="jpy", locale="en"))
    assert "¥1,200" in email.text
