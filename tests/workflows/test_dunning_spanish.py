"""A Spanish customer hears every message of a whole case in Spanish: each email (subject, text,
HTML) and each text message, from the Stripe customer's preferred_locales alone."""

from __future__ import annotations

import random
import re

from temporalio.testing import WorkflowEnvironment

from models.dunning import Outcome
from starter.cases import start_case
from tests.workflows.helpers import INSUFFICIENT, sent_keys

# Words every English message of ours has one of, and no Spanish one does.
ENGLISH = ("payment", "invoice", "Reply STOP", "your ")


async def test_every_message_of_a_case_is_in_spanish(
    time_env: WorkflowEnvironment, run_worker, stripe_control, sendgrid, twilio
) -> None:
    case = stripe_control.failed_invoice(INSUFFICIENT)
    number = f"+346{random.randrange(10**7, 10**8)}"
    stripe_control.sdk.v1.customers.update(
        case.customer, params={"preferred_locales": ["es-ES"], "phone": number}
    )
    async with run_worker(time_env.client, **twilio.settings) as task_queue:
        handle = await start_case(time_env.client, case.dunning_input(), task_queue)
        result = await handle.result()

    assert result.outcome == Outcome.SUBSCRIPTION_CANCELED
    emails = sendgrid.messages(case.invoice)
    assert [k.split(":")[0] for k in sent_keys(sendgrid, case.invoice)] == [
        "step", "step", "step", "step", "final"
    ]  # fmt: skip
    texts = [t["body"] for t in twilio.messages(number)]
    assert len(texts) == 2  # the urgent and final notices
    for message in [*(m["subject"] for m in emails), *(m["text"] for m in emails), *texts]:
        words = re.sub(r"https?://\S+", "", message)  # links are not copy
        assert not any(word in words for word in ENGLISH), message
    assert all("STOP" in text for text in texts)  # Twilio's keyword, in every language
    assert all("€" in m["text"] and "factura" in m["text"] for m in emails)
