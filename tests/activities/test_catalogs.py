"""The message catalogs (locales/*/LC_MESSAGES/messages.po) against the templates and the copy
in Python: every string is in every catalog, Spanish translates all of them, and a Spanish
message shows no English."""

from __future__ import annotations

import gettext
import itertools
from datetime import UTC, datetime
from io import BytesIO
from typing import Any, get_args

import pytest
from babel.messages.mofile import write_mo

from activities.email_render import TEMPLATES, EmailContext, render_email
from activities.in_app import render_notice
from activities.merchant_webhooks import summary
from activities.sms_render import render_sms
from models.activities import CaseEvent, NotificationInput
from models.dunning import Outcome
from models.i18n import SUPPORTED
from tests.catalogs import CONFIGS, ROOT, Key, catalog, catalog_keys, extracted

# Strings a domain's .po keeps by hand, with the file that says them: no extractor finds a
# string a function returns. policies/engine.py's grace_problem gives the more-time validator
# its refusal, which the payment page shows translated. `pybabel update` marks such an entry
# obsolete (`#~`): the test below then asks to restore it.
KEPT_BY_HAND: dict[str, dict[Key, str]] = {
    "pay": {(None, "the case is closed"): "policies/engine.py"},
}


def test_the_extraction_finds_the_templates_and_python_copy() -> None:
    keys = extracted()
    assert (None, "Reply STOP to opt out.") in keys  # activities/sms_render.py
    assert ("imperative", "update your card") in keys  # activities/message_copy.py
    assert (None, "Hi %(name)s,") in keys  # templates/email
    assert (None, "To %(phrase)s: %(url)s") in keys  # templates/sms


def test_the_other_domains_extract_their_templates_and_python() -> None:
    pay, predunning = extracted("pay"), extracted("predunning")
    assert (None, "Pay now") in pay  # templates/pay
    assert (None, "more time cannot be asked for on this plan") in pay  # workflows/customer.py
    assert (None, "your card") in predunning  # models/predunning_render.py
    assert (None, "Update your card") in predunning  # templates/predunning


@pytest.mark.parametrize("domain", CONFIGS)
@pytest.mark.parametrize("locale", SUPPORTED)
def test_each_catalog_has_exactly_the_extracted_strings(locale: str, domain: str) -> None:
    by_hand = KEPT_BY_HAND.get(domain, {})
    in_code = extracted(domain) | set(by_hand)
    in_po = catalog_keys(locale, domain)
    missing = sorted(in_code - in_po, key=str)
    stale = sorted(in_po - in_code, key=str)
    po = f"locales/{locale}/LC_MESSAGES/{domain}.po"
    assert not missing, f"{po}: missing (pybabel extract -F {CONFIGS[domain]}, update): {missing}"
    assert not stale, f"{po}: in the catalog but no longer used: {stale}"
    for (_, msgid), source in by_hand.items():
        assert f'"{msgid}"' in (ROOT / source).read_text(), f"{source} no longer says {msgid!r}"


def test_every_spanish_entry_is_translated_and_keeps_its_placeholders() -> None:
    es = catalog("es")
    for message in es:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert not message.fuzzy, f"fuzzy: {message.id!r}"
        assert all(strings), f"untranslated: {message.id!r}"
    # Babel's own checks: python-format placeholders of msgid and msgstr match.
    problems = [(m.id, errors) for m, errors in es.check()]
    assert not problems


class Misses(gettext.NullTranslations):
    """The fallback of a catalog: it is asked only for what the catalog does not translate."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def gettext(self, message: str) -> str:
        self.seen.add(message)
        return message

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        self.seen.add(msgid1)
        return msgid1 if n == 1 else msgid2

    def pgettext(self, context: str, message: str) -> str:
        self.seen.add(f"{context}|{message}")
        return message

    def npgettext(self, context: str, msgid1: str, msgid2: str, n: int) -> str:
        self.seen.add(f"{context}|{msgid1}")
        return msgid1 if n == 1 else msgid2


def recording_spanish() -> tuple[gettext.GNUTranslations, Misses]:
    compiled = BytesIO()
    write_mo(compiled, catalog("es"))
    compiled.seek(0)
    translations = gettext.GNUTranslations(compiled)
    misses = Misses()
    translations.add_fallback(misses)
    return translations, misses


HOSTED = "https://invoice.stripe.com/i/acct_1/test_abc"
DAY = datetime(2026, 3, 29, 23, 30, tzinfo=UTC)


def contexts() -> list[EmailContext]:
    """Every branch a template has: name or not, plan or not, each action and final action,
    dates or not, zero, one and several attempts, the payment page or not (the closing messages'
    question), the base templates and the variant."""
    out = []
    product = itertools.product(
        ("Ana", None),
        ("update_payment_method", "authenticate", None),
        ("cancel_subscription", "mark_uncollectible", "leave_past_due", None),
        (0, 1, 3),
    )
    for i, (name, action, final, attempts) in enumerate(product):
        dated = i % 2 == 0
        out.append(
            EmailContext(
                customer_name=name,
                locale="es-ES",
                timezone="Europe/Madrid",
                amount_due=1234,
                currency="eur",
                invoice_id="in_1",
                plan_name="Pro" if dated else None,
                hosted_invoice_url=HOSTED if i % 5 else None,
                pay_url="https://pay.example.com/pay/t" if i % 3 == 1 else None,
                action_needed=action,
                next_step_at=DAY if dated else None,
                final_deadline=DAY if i % 3 else None,
                final_action=final,
                attempts=attempts,
                variant="b" if i % 4 == 0 else None,
            )
        )
    return out


@pytest.mark.parametrize("template", TEMPLATES)
def test_spanish_messages_show_no_untranslated_string(template: str) -> None:
    translations, misses = recording_spanish()
    rendered: list[Any] = []
    for context in contexts():
        rendered.append(render_email(template, context, translations))
        rendered.append(render_sms(template, context, translations))
        rendered.append(render_notice(template, context, translations))
    assert len(rendered) == 3 * len(contexts())
    assert misses.seen == set(), f"English in a Spanish {template} message: {misses.seen}"


@pytest.mark.parametrize("event", get_args(CaseEvent))
def test_a_spanish_webhook_summary_shows_no_untranslated_string(event: str) -> None:
    translations, misses = recording_spanish()
    case = NotificationInput(
        invoice_id="in_1", dedupe_key="dunning-in_1:event", customer_id="cus_1", amount_due=1234,
        currency="eur", channel="webhook", event=event, step=2, outcome=Outcome.RECOVERED,
        reason_code="customer_contact",
    )  # fmt: skip
    text = summary(case, "es", translations)
    assert misses.seen == set(), f"English in the Spanish {event} summary: {misses.seen}"
    assert "in_1" in text and text != summary(case)


def test_the_recorder_does_catch_a_string_the_catalog_lacks() -> None:
    translations, misses = recording_spanish()
    assert translations.gettext("A sentence nobody translated") == "A sentence nobody translated"
    assert misses.seen == {"A sentence nobody translated"}
