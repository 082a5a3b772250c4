"""The ledger: one row per case, plus its attempts, notifications, support actions and outcome.

Every table has a natural unique key (invoice, idempotency key, dedupe key, request id) so each
write is idempotent: an activity retried after a crash writes nothing twice.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, overload

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def aware(moment: datetime) -> datetime: ...
@overload
def aware(moment: None) -> None: ...
def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive UTC datetimes."""
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: DateTime(timezone=True)}


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        # `dunning report`: the opened_at window as an index-only scan (migration 0003).
        Index(
            "ix_cases_report", "opened_at", postgresql_include=["invoice_id", "first_decline_code"]
        ),
        # `dunning report --by`: the open cases, counted live (migration 0009).
        Index(
            "ix_cases_open",
            "opened_at",
            postgresql_where=text("closed_at IS NULL"),
            sqlite_where=text("closed_at IS NULL"),
            postgresql_include=[
                "invoice_id",
                "segment",
                "policy",
                "experiment",
                "variant",
                "first_decline_code",
            ],
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[str] = mapped_column(String(255), unique=True)
    workflow_id: Mapped[str] = mapped_column(String(300))
    customer_id: Mapped[str] = mapped_column(String(255), index=True)
    subscription_id: Mapped[str | None] = mapped_column(String(255), index=True)
    customer_email: Mapped[str | None] = mapped_column(String(320), index=True)
    customer_name: Mapped[str | None] = mapped_column(String(255))
    amount_due: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    policy: Mapped[str] = mapped_column(String(100))
    # The segment rule that chose the policy (DUNNING_RULES) and why (migration 0007).
    segment: Mapped[str | None] = mapped_column(String(100))
    segment_reason: Mapped[str | None] = mapped_column(Text)
    experiment: Mapped[str | None] = mapped_column(String(100))
    # The experiment arm the customer landed in (sticky per experiment and customer).
    variant: Mapped[str | None] = mapped_column(String(100))
    first_decline_code: Mapped[str | None] = mapped_column(String(100))
    stripe_event_id: Mapped[str | None] = mapped_column(String(255))
    opened_at: Mapped[datetime] = mapped_column(index=True)
    closed_at: Mapped[datetime | None]


class Attempt(Base):
    __tablename__ = "attempts"
    __table_args__ = (UniqueConstraint("invoice_id", "attempt_no"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("cases.invoice_id"), index=True)
    attempt_no: Mapped[int] = mapped_column(Integer)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    trigger: Mapped[str] = mapped_column(String(40))
    step: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(20))
    decline_code: Mapped[str | None] = mapped_column(String(100))
    advice_code: Mapped[str | None] = mapped_column(String(100))
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    attempted_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(Base):
    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("cases.invoice_id"), index=True)
    dedupe_key: Mapped[str] = mapped_column(String(255), unique=True)
    channel: Mapped[str] = mapped_column(String(20), default="email")
    template: Mapped[str] = mapped_column(String(50))
    level: Mapped[str | None] = mapped_column(String(20))
    step: Mapped[int | None] = mapped_column(Integer)
    to_address: Mapped[str | None] = mapped_column(String(320))
    # claimed -> sent | rejected | uncertain | no_address | opted_out; failed_retryable may be
    # claimed again; the claim sweep settles a dead send's claim in a closed case as sent or
    # withdrawn (models/claim_sweep.py). The provider's delivery report moves sent on to
    # delivered | undelivered | failed (SMS status callbacks).
    status: Mapped[str] = mapped_column(String(20))
    claim_attempt: Mapped[int] = mapped_column(Integer, default=1)
    # Indexed: delivery reports name the provider's id (Twilio's message SID) only.
    provider_message_id: Mapped[str | None] = mapped_column(String(255), index=True)
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    # In-app notices: when the customer read it in the merchant's app (engagement).
    read_at: Mapped[datetime | None]


class ChannelOptOut(Base):
    """A customer's address that asked for no more messages on a channel (SMS STOP), or that
    asked back in (START). Per address, as the carrier applies it: every case of every customer
    with that number skips the channel while `opted_out`."""

    __tablename__ = "channel_opt_outs"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(320))
    opted_out: Mapped[bool] = mapped_column(Boolean)
    # What said so: the keyword texted (STOP, START, ...) or the provider's refusal (21610).
    source: Mapped[str] = mapped_column(String(40))
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)


class SupportAction(Base):
    __tablename__ = "support_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("cases.invoice_id"), index=True)
    request_id: Mapped[str] = mapped_column(String(255), unique=True)
    action: Mapped[str] = mapped_column(String(30))
    by: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    days: Mapped[int | None] = mapped_column(Integer)
    via: Mapped[str] = mapped_column(String(10))
    result: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]


class CaseOutcome(Base):
    __tablename__ = "outcomes"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("cases.invoice_id"), unique=True)
    outcome: Mapped[str] = mapped_column(String(30), index=True)
    amount_recovered: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    recovered_step: Mapped[int | None] = mapped_column(Integer)
    closed_at: Mapped[datetime] = mapped_column(index=True)
    reason: Mapped[str | None] = mapped_column(Text)


class CustomerPreference(Base):
    """What support or the customer set about reaching them; it wins over the Stripe customer
    and the policy. Empty fields fall through to the next source."""

    __tablename__ = "customer_preferences"

    customer_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    # Channels in the order the customer prefers them (comma-separated channel names).
    channels: Mapped[str | None] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(32))
    timezone: Mapped[str | None] = mapped_column(String(64))
    locale: Mapped[str | None] = mapped_column(String(35))
    # Channels the customer asked not to be reached on (comma-separated).
    opted_out: Mapped[str | None] = mapped_column(String(200))
    updated_by: Mapped[str] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomerAction(Base):
    """What the customer did on the payment page (`/pay/{token}`), as the case accepted it."""

    __tablename__ = "customer_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("cases.invoice_id"), index=True)
    request_id: Mapped[str] = mapped_column(String(255), unique=True)
    action: Mapped[str] = mapped_column(String(30))
    detail: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime]


class CaseFeedback(Base):
    """The one answer a customer gives per case: why the payment failed or why they leave."""

    __tablename__ = "case_feedback"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[str] = mapped_column(ForeignKey("cases.invoice_id"), unique=True)
    reason: Mapped[str] = mapped_column(String(40))
    text: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str | None] = mapped_column(String(30))
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)


class PreDunningCase(Base):
    """A card that expires before its subscription renews, and what came of the warning."""

    __tablename__ = "predunning_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(300), unique=True)
    customer_id: Mapped[str] = mapped_column(String(255), index=True)
    subscription_id: Mapped[str] = mapped_column(String(255))
    payment_method_id: Mapped[str] = mapped_column(String(255))
    exp_month: Mapped[int] = mapped_column(Integer)
    exp_year: Mapped[int] = mapped_column(Integer)
    renews_at: Mapped[datetime]
    # warned / card_updated / renewed / failed_anyway
    status: Mapped[str] = mapped_column(String(30))
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]


# `dunning report --by` (starter/support/report_facts.py keeps them; migration 0009).
REPORT_GROUPS = ("segment", "policy", "variant", "first_decline_code")


class ReportFact(Base):
    """One finished case's figures, computed once when the report first sees its outcome."""

    __tablename__ = "report_facts"
    __table_args__ = tuple(
        Index(
            f"ix_report_facts_{column}_seconds",
            column,
            "seconds_to_recover",
            postgresql_where=text("seconds_to_recover IS NOT NULL"),
            sqlite_where=text("seconds_to_recover IS NOT NULL"),
        )
        for column in REPORT_GROUPS
    )

    outcome_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    invoice_id: Mapped[str] = mapped_column(String(255))
    opened_at: Mapped[datetime] = mapped_column(index=True)
    closed_at: Mapped[datetime]
    segment: Mapped[str | None] = mapped_column(String(100))
    policy: Mapped[str] = mapped_column(String(100))
    experiment: Mapped[str | None] = mapped_column(String(100))
    variant: Mapped[str | None] = mapped_column(String(100))
    first_decline_code: Mapped[str | None] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    outcome: Mapped[str] = mapped_column(String(30))
    amount_recovered: Mapped[int] = mapped_column(BigInteger)
    recovered_step: Mapped[int | None] = mapped_column(Integer)
    seconds_to_recover: Mapped[float | None] = mapped_column(Float)
    messages: Mapped[int] = mapped_column(Integer)
    charges: Mapped[int] = mapped_column(Integer)
    furthest_step: Mapped[int | None] = mapped_column(Integer)


class ReportFactChannel(Base):
    __tablename__ = "report_fact_channels"

    outcome_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    channel: Mapped[str] = mapped_column(String(20), primary_key=True)
