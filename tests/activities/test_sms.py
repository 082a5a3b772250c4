"""SMS activity against the Twilio stand-in: at most one text per message key, Twilio's
refusals classified at the boundary, a timeout resolved from Twilio's message list."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.email_render import TEMPLATES, EmailContext
from activities.sms import SmsActivities, TwilioRetryableError
from activities.sms_render import OPT_OUT_HINT, render_sms
from activities.twilio_client import make_twilio_client, sms_segments
from models.activities import NotificationInput, NotificationResult
from models.channel_store import ChannelStore
from models.i18n import SUPPORTED, translations
from models.ledger import Notification
from models.notification_store import NotificationStore
from models.store import Ledger
from tests.activities.conftest import open_case
from tests.activities.links import page_link
from tests.conftest import TwilioControl
from tests.standin_control import StripeControl

PHONE = "+34612345678"
LONG_URL = "https://invoice.stripe.com/i/acct_1PqRsTuVwXyZ/test_" + "Yx" * 45 + "?s=ap"
FINAL_ACTIONS = ("cancel_subscription", "mark_uncollectible", "leave_past_due", None)
LONG_NAME = "Maximiliano Fernández de la Peña y Gómez-Ortúzar"


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("locale", SUPPORTED)
@pytest.mark.parametrize("name", ["Ada", "José Ñúñez Ørsted-Çelik 🙂", LONG_NAME, None])
@pytest.mark.parametrize("amount", [1200, 123456, 123456789])
def test_every_text_fits_two_segments_links_and_ends_with_the_opt_out_hint(
    template: str, locale: str, name: str | None, amount: int
) -> None:
    hint = translations(locale).gettext(OPT_OUT_HINT)
    assert "STOP" in hint
    # With the payment page, its link replaces LONG_URL, and the closing messages ask one
    # question with it when the text still fits (tests/activities/test_closing_feedback.py).
    for final_action, page in itertools.product(FINAL_ACTIONS, (None, page_link())):
        context = EmailContext(
            customer_name=name, locale=locale, timezone="America/Argentina/Buenos_Aires",
            amount_due=amount, currency="eur", invoice_id="in_1", plan_name="Enterprise",
            hosted_invoice_url=LONG_URL, action_needed="update_payment_method",
            next_step_at=datetime(2026, 9, 30, tzinfo=UTC), attempts=3,
            final_deadline=datetime(2026, 12, 24, tzinfo=UTC), final_action=final_action,
            pay_url=page,
        )  # fmt: skip
        body = render_sms(template, context)
        assert sms_segments(body) <= 2, body
        assert body.endswith(hint)
        if template != "recovered":
            assert (page or LONG_URL) in body


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_spanish_text_is_in_spanish(template: str) -> None:
    context = EmailContext(
        customer_name="Ana", locale="es-MX", amount_due=1234, currency="mxn", invoice_id="in_1",
        hosted_invoice_url=LONG_URL, final_deadline=datetime(2026, 3, 29, 23, tzinfo=UTC),
        timezone="Europe/Madrid", final_action="cancel_subscription",
    )  # fmt: skip
    body = render_sms(template, context)
    assert body.startswith("Ana, ")
    assert body.endswith("Baja: responde STOP.")
    assert "$12.34" in body and "Reply" not in body
    if template == "final_notice":
        # 23:00 UTC on 29 March is already 30 March in Madrid (summer time began that night).
        assert "30 de marzo de 2026" in body


def test_without_a_name_a_text_greets_in_the_customers_language() -> None:
    context = EmailContext(amount_due=1200, currency="eur", invoice_id="in_1")
    assert render_sms("reminder", context).startswith("There, a reminder: ")
    spanish = context.model_copy(update={"locale": "es"})
    assert render_sms("reminder", spanish).startswith("Hola, te recordamos ")


def test_a_variant_has_its_own_text_only_when_its_file_exists() -> None:
    context = EmailContext(customer_name="Ada", amount_due=1200, currency="eur", invoice_id="in_1")
    base = render_sms("reminder", context)
    assert render_sms("reminder", context.model_copy(update={"variant": "b"})) == base
    assert render_sms("reminder", context.model_copy(update={"variant": "../sms"})) == base


def test_a_short_text_keeps_the_name_and_one_segment() -> None:
    context = EmailContext(customer_name="Ada", amount_due=1200, currency="eur", invoice_id="in_1")
    body = render_sms("reminder", context)
    assert body.startswith("Ada, ") and sms_segments(body) == 1


@pytest.fixture
def sms(twilio: TwilioControl, ledger: Ledger) -> SmsActivities:
    client = make_twilio_client(
        str(twilio.settings["twilio_account_sid"]), twilio.auth_token, twilio.url, timeout=2
    )
    return SmsActivities(
        client, NotificationStore(ledger.sessions), ChannelStore(ledger.sessions),
        sender=str(twilio.settings["twilio_from"]), min_unlisted_age=timedelta(0),
    )  # fmt: skip


@pytest.fixture
def text(stripe_control: StripeControl, ledger: Ledger) -> NotificationInput:
    case = stripe_control.failed_invoice("pm_card_chargeDeclinedInsufficientFunds")
    open_case(ledger, case)
    return NotificationInput(
        invoice_id=case.invoice, dedupe_key=f"dunning-{case.invoice}:step:4", template="urgent",
        level="urgent", step=4, channel="sms", to_phone="612 34 56 78", country="ES",
        customer_id=case.customer, customer_name="Ada", amount_due=1200, currency="eur",
        hosted_invoice_url="https://invoice.stripe.com/i/test",
    )  # fmt: skip


def run(sms: SmsActivities, input: NotificationInput, attempt: int = 1) -> NotificationResult:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt)
    return env.run(sms.send_sms, input)


def row(ledger: Ledger, key: str) -> Notification:
    with ledger.sessions() as session:
        return session.query(Notification).filter_by(dedupe_key=key).one()


def test_sends_once_in_e164_and_records_the_sid(
    sms: SmsActivities, text: NotificationInput, twilio: TwilioControl, ledger: Ledger
) -> None:
    result = run(sms, text)
    (sent,) = twilio.messages(PHONE)
    assert (result.status, result.provider_message_id) == ("sent", sent["sid"])
    assert result.dedupe_key == f"{text.dedupe_key}:sms"
    assert "https://invoice.stripe.com/i/test" in sent["body"]
    stored = row(ledger, result.dedupe_key)
    assert (stored.channel, stored.status, stored.to_address) == ("sms", "sent", PHONE)
    assert run(sms, text, attempt=2).status == "duplicate"
    assert len(twilio.messages(PHONE)) == 1


@pytest.mark.parametrize(
    ("phone", "status", "ledger_status"),
    [(None, "no_address", "no_address"), ("12", "rejected", "rejected")],
)
def test_no_or_a_bad_number_is_a_result_not_an_error(
    sms: SmsActivities, text: NotificationInput, twilio: TwilioControl, ledger: Ledger,
    phone: str | None, status: str, ledger_status: str,
) -> None:  # fmt: skip
    result = run(sms, text.model_copy(update={"to_phone": phone}))
    assert result.status == status
    assert row(ledger, result.dedupe_key).status == ledger_status
    assert twilio.messages() == []


def test_a_number_that_texted_stop_is_skipped_and_remembered(
    sms: SmsActivities, text: NotificationInput, twilio: TwilioControl, ledger: Ledger
) -> None:
    twilio.text_from(PHONE, "STOP")  # Twilio blocks it (21610); our ledger has not heard yet
    result = run(sms, text)
    assert result.status == "skipped" and "21610" in (result.detail or "")
    assert row(ledger, result.dedupe_key).status == "opted_out"
    assert ChannelStore(ledger.sessions).is_opted_out("sms", PHONE)
    ChannelStore(ledger.sessions).set_opt_out("sms", PHONE, False, "test")


def test_twilio_429_and_500_are_retried_and_send_once(
    sms: SmsActivities, text: NotificationInput, twilio: TwilioControl, ledger: Ledger
) -> None:
    twilio.fault("429")
    twilio.fault("500")
    with pytest.raises(TwilioRetryableError, match="429"):
        run(sms, text, attempt=1)
    with pytest.raises(TwilioRetryableError, match="500"):
        run(sms, text, attempt=2)
    assert run(sms, text, attempt=3).status == "sent"
    assert len(twilio.messages(PHONE)) == 1


def test_a_timeout_is_resolved_from_twilios_list_without_a_second_text(
    sms: SmsActivities, text: NotificationInput, twilio: TwilioControl, ledger: Ledger
) -> None:
    twilio.fault("hang", seconds=4)  # Twilio sends it, then answers after our 2 s timeout
    with pytest.raises(ApplicationError) as exc:
        run(sms, text, attempt=1)
    assert exc.value.type == "TwilioDeliveryUnknown" and not exc.value.non_retryable
    assert row(ledger, f"{text.dedupe_key}:sms").status == "uncertain"
    result = run(sms, text, attempt=2)
    (sent,) = twilio.messages(PHONE)
    assert (result.status, result.provider_message_id) == ("sent", sent["sid"])
    assert "not re-sent" in (result.detail or "")


def test_a_crash_before_twilio_took_it_is_sent_once_asked(
    sms: SmsActivities, text: NotificationInput, twilio: TwilioControl, ledger: Ledger
) -> None:
    claimed, _ = NotificationStore(ledger.sessions).claim(
        attempt=1, invoice_id=text.invoice_id, dedupe_key=f"{text.dedupe_key}:sms",
        template="urgent", channel="sms",
    )  # fmt: skip
    assert claimed
    assert run(sms, text, attempt=2).status == "sent"
    assert len(twilio.messages(PHONE)) == 1
