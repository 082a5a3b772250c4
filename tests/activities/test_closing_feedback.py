"""Issue 11's one question in the closing messages (recovered, canceled): asked with the case's
payment page link when there is one, in every channel that has the message, in en and es."""

from __future__ import annotations

import pytest

from activities.email_render import TEMPLATES, EmailContext, render_email
from activities.in_app import render_notice
from activities.sms_render import render_sms
from activities.twilio_client import sms_segments
from tests.activities.links import page_link

QUESTIONS = {
    ("recovered", "en"): "One question, if you have a moment: what made the payment fail?",
    ("canceled", "en"): "One question, if you have a moment: why are you leaving?",
    ("recovered", "es"): "Una pregunta, si tienes un momento: ¿por qué falló el pago?",
    ("canceled", "es"): "Una pregunta, si tienes un momento: ¿por qué te vas?",
}
SHORT = {
    ("recovered", "en"): "One question: what made the payment fail?",
    ("canceled", "en"): "One question: why are you leaving?",
    # Words within GSM-7 (é and ¿ are in it, ó is not), so the text needs no accent stripped.
    ("recovered", "es"): "Una pregunta: ¿qué hizo que fallara el pago?",
    ("canceled", "es"): "Una pregunta: ¿por qué te vas?",
}
HOSTED = "https://invoice.stripe.com/i/acct_1/test_abc"


def context(
    template: str, locale: str, pay: str | None, amount: int = 1200, name: str | None = "Ana"
) -> EmailContext:
    return EmailContext(
        customer_name=name, locale=locale, amount_due=amount, currency="eur", invoice_id="in_1",
        hosted_invoice_url=HOSTED, pay_url=pay, final_action="cancel_subscription",
    )  # fmt: skip


@pytest.mark.parametrize(("template", "locale"), QUESTIONS)
def test_the_email_asks_last_with_the_page_link(template: str, locale: str) -> None:
    pay = "https://billing.example.com/pay/tok_1?a=1&b=2"
    answer = {"en": "Answer here", "es": "Responde aquí"}[locale]
    question = QUESTIONS[(template, locale)]
    email = render_email(template, context(template, locale, pay))
    # After the footer: the message's own link stays its call to action (the receipt).
    assert email.text.endswith(f"\n\n{question} {answer}: {pay}\n")
    assert f'{question} <a href="{pay.replace("&", "&amp;")}">{answer}</a></p>' in email.html
    without = render_email(template, context(template, locale, None))
    assert question not in without.text + without.html
    assert "tok_1" not in without.text + without.html


@pytest.mark.parametrize("template", [t for t in TEMPLATES if t not in ("recovered", "canceled")])
def test_only_the_closing_messages_ask(template: str) -> None:
    email = render_email(template, context(template, "en", "https://billing.example.com/pay/t"))
    text = render_sms(template, context(template, "en", "https://billing.example.com/pay/t"))
    assert "One question" not in email.text + email.html + text


@pytest.mark.parametrize(("template", "locale"), QUESTIONS)
def test_the_sms_and_the_notice_ask_in_fewer_words_with_the_link_once(
    template: str, locale: str
) -> None:
    pay = page_link()
    body = render_sms(template, context(template, locale, pay))
    assert f"{SHORT[(template, locale)]} {pay} " in body
    assert body.startswith("Ana, ") and sms_segments(body) == 2
    # The canceled text's own link is that same page, which asks the question: one link.
    assert body.count("https://") == 1
    _, notice = render_notice(template, context(template, locale, pay))
    assert notice.endswith(f"{SHORT[(template, locale)]} {pay}")


def test_when_the_question_does_not_fit_the_text_keeps_its_old_form() -> None:
    # Without a name and with 1,234,567.89 €, the canceled text with the question needs three
    # segments: it falls back to the brief form, the invoice's link (a canceled case's page
    # only asks the question; the invoice is paid on Stripe's hosted page).
    pay = page_link()
    big = context("canceled", "en", pay, amount=123456789, name=None)
    body = render_sms("canceled", big)
    assert sms_segments(body) <= 2 and pay not in body and "question" not in body
    assert HOSTED in body
    recovered = render_sms("recovered", big)
    assert SHORT[("recovered", "en")] in recovered and sms_segments(recovered) == 2
