"""The card-expiry activities against the Stripe and SendGrid stand-ins and the test ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from models.ledger import PreDunningCase
from models.predunning import (
    PreDunningMessageInput,
    PreDunningStatus,
    RecordPreDunningInput,
    RenewalCheckInput,
    ScanPage,
    ScanPageInput,
)
from models.predunning_report import predunning_summary
from models.settings import Settings
from models.store import Ledger
from tests.workflows.predunning_helpers import (
    Expiring,
    account_updater,
    card_expiry_activities,
    expiring,
    renew,
    warnings_sent,
)


def scan_all(settings: Settings, ledger: Ledger, horizon_days: int = 30) -> ScanPage:
    """Every page, as the scan workflow reads them (small pages: the cursor is exercised)."""
    acts = card_expiry_activities(settings, ledger)
    found = ScanPage()
    cursor = None
    while True:
        page = ActivityEnvironment().run(
            acts.scan,
            ScanPageInput(horizon_days=horizon_days, starting_after=cursor, page_size=2),
        )
        found.cards += page.cards
        found.subscriptions_read += page.subscriptions_read
        found.skipped_renewed += page.skipped_renewed
        if page.next_cursor is None:
            return found
        cursor = page.next_cursor


def test_scan_finds_expiring_cards_on_either_default(settings: Settings, ledger: Ledger) -> None:
    on_customer = expiring(settings)
    on_subscription = expiring(settings, default_on="subscription")
    later = expiring(settings, renews_in=60 * 86400)  # beyond the 30-day horizon
    fine = expiring(settings, exp_month=12, exp_year=2034)  # valid long after renewal

    found = {card.subscription_id: card for card in scan_all(settings, ledger).cards}

    assert on_customer.subscription in found and on_subscription.subscription in found
    assert later.subscription not in found and fine.subscription not in found
    card = found[on_subscription.subscription]
    assert (card.payment_method_id, card.exp_month, card.exp_year) == (
        on_subscription.payment_method,
        on_subscription.exp_month,
        on_subscription.exp_year,
    )
    assert card.renews_at == datetime.fromtimestamp(on_subscription.renews_at, UTC)


def test_scan_rereads_the_card_and_skips_one_the_updater_renewed(
    settings: Settings, ledger: Ledger
) -> None:
    renewed, kept = expiring(settings), expiring(settings)
    acts = card_expiry_activities(settings, ledger)
    # The list is read first; the account updater renews a card before the re-read.
    listed = {
        sub.id: sub
        for sub in acts.client.v1.subscriptions.list(
            params={"status": "active", "limit": 100, "expand": list_expand()}
        ).auto_paging_iter()
    }
    account_updater(settings, renewed.payment_method, 2031)
    page = ScanPage()
    horizon = datetime.now(UTC) + timedelta(days=30)
    for sub_id in (renewed.subscription, kept.subscription):
        acts._examine(listed[sub_id], horizon, page)

    assert [c.subscription_id for c in page.cards] == [kept.subscription]
    assert page.skipped_renewed == 1
    assert renewed.subscription not in {c.subscription_id for c in scan_all(settings, ledger).cards}


def list_expand() -> list[str]:
    from activities.card_expiry import SUBSCRIPTION_EXPAND

    return list(SUBSCRIPTION_EXPAND)


def test_renewal_check_reads_paid_failed_and_new_cards(settings: Settings, ledger: Ledger) -> None:
    acts = card_expiry_activities(settings, ledger)
    paid, failed = (
        expiring(settings, renews_in=3600),
        expiring(settings, renews_in=3600, payment_method="pm_card_chargeDeclinedExpiredCard"),
    )
    waiting, updated = expiring(settings, renews_in=3600), expiring(settings, renews_in=3600)
    renew(settings, paid.subscription)
    renew(settings, failed.subscription)
    account_updater(settings, updated.payment_method, 2031)

    def check(made: Expiring) -> PreDunningStatus | None:
        return acts.check_renewal(RenewalCheckInput(card=made.card())).status

    assert check(paid) == PreDunningStatus.RENEWED
    assert check(failed) == PreDunningStatus.FAILED_ANYWAY
    assert check(waiting) is None
    assert check(updated) == PreDunningStatus.CARD_UPDATED


def test_warning_is_sent_in_the_customer_language_and_recorded(
    settings: Settings, ledger: Ledger
) -> None:
    made = expiring(settings, preferred_locales=["es-ES"], name="Lucía")
    acts = card_expiry_activities(settings, ledger)
    workflow_id = made.workflow_id
    message = PreDunningMessageInput(workflow_id=workflow_id, message="warning", card=made.card())

    result = ActivityEnvironment().run(acts.send_email, message)

    assert result.status == "sent"
    (sent,) = warnings_sent(settings, workflow_id)
    assert sent["custom_args"]["dunning_dedupe_key"] == f"{workflow_id}:warning"
    assert sent["subject"] == "Tu tarjeta caduca antes de tu próximo pago"
    text = sent["text"]
    assert sent["to"] == ["customer@example.com"]
    assert "Hola, Lucía" in text and "Visa •••• 4242" in text
    assert f"https://billing.example.com/account/{made.customer}/card" in text


def test_ledger_row_opens_once_and_closes_once(settings: Settings, ledger: Ledger) -> None:
    made = expiring(settings)
    acts = card_expiry_activities(settings, ledger)
    opened = datetime.now(UTC)
    since = opened - timedelta(seconds=1)
    before = predunning_summary_now(ledger, since)
    for status, at in (
        (PreDunningStatus.WARNED, opened),
        (PreDunningStatus.WARNED, opened + timedelta(seconds=5)),  # a retried write
        (PreDunningStatus.CARD_UPDATED, opened + timedelta(hours=1)),
        (PreDunningStatus.FAILED_ANYWAY, opened + timedelta(hours=2)),  # closed already
    ):
        acts.record(
            RecordPreDunningInput(
                workflow_id=made.workflow_id, card=made.card(), status=status, at=at
            )
        )
    with ledger.sessions() as session:
        (row,) = session.scalars(
            select(PreDunningCase).where(PreDunningCase.workflow_id == made.workflow_id)
        )
    assert (row.status, row.opened_at, row.closed_at) == (
        "card_updated",
        opened,
        opened + timedelta(hours=1),
    )
    after = predunning_summary_now(ledger, since)
    assert after["warned"] - before["warned"] == 1
    assert after["card_updated"] - before["card_updated"] == 1


def predunning_summary_now(ledger: Ledger, since: datetime) -> dict[str, int]:
    with ledger.sessions() as session:
        return predunning_summary(session, since, datetime.now(UTC) + timedelta(days=1))
