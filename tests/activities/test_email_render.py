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


def test_a_spanish_email_is_in_spanish_with_spanish_amounts() -> None:
    email = render_email(
        "payment_failed", ctx(locale="es-ES", action_needed="update_payment_method")
    )
    assert email.subject == "No hemos podido procesar tu pago de 12,00 €"
    assert nbsp(email.text).startswith(
        "Hola, Ada Lovelace:\n\nHemos intentado cobrar tu pago de 12,00 € correspondiente a"
    )
    assert "Actualizar tarjeta: " + UPDATE in email.text
    assert '<html lang="es">' in email.html
    assert "Importe: <strong>" not in email.html and "<strong>12,00 €</strong>" in nbsp(email.html)


@pytest.mark.parametrize(
    ("deadline", "timezone", "day"),
    [
        # Madrid moves to summer time in the night of 28 to 29 March 2026 (UTC+1 → UTC+2).
        (datetime(2026, 3, 28, 22, 30, tzinfo=UTC), "Europe/Madrid", "28 de marzo de 2026"),
        (datetime(2026, 3, 29, 22, 30, tzinfo=UTC), "Europe/Madrid", "30 de marzo de 2026"),
        (datetime(2026, 3, 29, 22, 30, tzinfo=UTC), "America/Bogota", "29 de marzo de 2026"),
        (datetime(2026, 3, 29, 22, 30, tzinfo=UTC), None, "29 de marzo de 2026"),
    ],
)
def test_dates_are_the_day_in_the_customers_zone(
    deadline: datetime, timezone: str | None, day: str
) -> None:
    email = render_email(
        "final_notice",
        ctx(locale="es", timezone=timezone, final_deadline=deadline, final_action="leave_past_due"),
    )
    assert email.subject == f"Último aviso: paga 12,00 € antes del {day}"
    assert f"Si no recibimos el pago antes del {day}, tu cuenta seguirá" in nbsp(email.text)


@pytest.mark.parametrize("locale", ["en", "es"])
def test_variables_stay_html_escaped_in_every_language(locale: str) -> None:
    email = render_email(
        "reminder", ctx(locale=locale, customer_name="<b>Ana</b>", plan_name="Pro & <i>Max</i>")
    )
    assert "<b>Ana</b>" not in email.html and "<i>" not in email.html
    assert "&lt;b&gt;Ana&lt;/b&gt;" in email.html
    assert "Pro &amp; &lt;i&gt;Max&lt;/i&gt;" in email.html
    assert "<b>Ana</b>" in email.text and "Pro & <i>Max</i>" in email.text


def test_messages_name_the_plan_and_the_next_step() -> None:
    email = render_email(
        "reminder",
        ctx(plan_name="Pro", next_step_at=datetime(2026, 4, 2, 6, tzinfo=UTC), attempts=1,
            timezone="America/Los_Angeles"),
    )  # fmt: skip
    assert "for your Pro plan (invoice in_1Abc)" in email.text
    assert "after 1 attempt." in email.text
    # 06:00 UTC is still the evening before in Los Angeles.
    assert "Our next attempt is on April 1, 2026." in email.text
    assert "Plan: Pro" in email.text and "Plan: Pro" in email.html
    spanish = render_email("reminder", ctx(locale="es", plan_name="Pro", attempts=3))
    assert "correspondiente a tu plan Pro (factura in_1Abc)" in spanish.text
    assert "tras 3 intentos." in spanish.text


def test_a_final_notice_without_deadline_names_the_next_step() -> None:
    email = render_email("final_notice", ctx(next_step_at=datetime(2026, 5, 1, 12, tzinfo=UTC)))
    assert email.subject.endswith("by May 1, 2026")


@pytest.mark.parametrize("action", ["update_payment_method", "authenticate", None])
def test_the_payment_page_is_the_link_when_the_case_has_one(action: str | None) -> None:
    pay = "https://billing.example.com/pay/tok_1"
    email = render_email("urgent", ctx(pay_url=pay, action_needed=action))
    assert pay in email.text and f'href="{pay}"' in email.html
    assert UPDATE not in email.text and HOSTED not in email.text
    # A receipt's link stays Stripe's invoice; the page is only the feedback question's link.
    receipt = render_email("recovered", ctx(pay_url=pay))
    assert f"View invoice: {HOSTED}" in receipt.text
    assert f'<a href="{html_url(HOSTED)}" style="display:inline-block;' in receipt.html
    assert [line for line in receipt.text.splitlines() if pay in line] == [
        f"One question, if you have a moment: what made the payment fail? Answer here: {pay}"
    ]


def test_a_variant_replaces_only_the_parts_it_has() -> None:
    base = render_email("reminder", ctx())
    b = render_email("reminder", ctx(variant="b"))
    assert b.subject == "Ada Lovelace, don't lose access: €12.00 is still unpaid"
    assert (b.text, b.html) == (base.text, base.html)
    assert render_email("reminder", ctx(variant="b", customer_name=None)).subject.startswith(
        "Don't lose access"
    )
    assert render_email("reminder", ctx(variant="b", locale="es")).subject == (
        "Ada Lovelace, no pierdas el acceso: tienes 12,00 € pendientes de pago"
    )
    # An arm without files of its own, or a name that is no file name, gets the base template.
    for variant in ("c", "../sms/reminder", "B"):
        assert render_email("reminder", ctx(variant=variant)) == base
    assert render_email("urgent", ctx(variant="b")) == render_email("urgent", ctx())
