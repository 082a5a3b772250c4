"""Support sets how a customer is reached: `dunning customer set` and
`PUT /api/customers/{customer_id}/preferences`.

Preferences are stored in the ledger, which each new case reads when it opens (they win over
the Stripe customer, which wins over the policy). An opt-out or opt-in also reaches the
customer's running cases at once, as a `channel_opt_out` signal (what an SMS STOP does): a
case keeps the preferences it opened with for everything else.
"""

from __future__ import annotations

from babel import Locale, UnknownLocaleError
from pydantic import BaseModel, Field
from temporalio.client import Client

from models.channel_store import ChannelStore
from models.dunning import MAX_BY, ChannelOptOutInput
from models.preferences import (
    PreferenceError,
    Preferences,
    PreferenceStore,
    check_phone,
    check_timezone,
    parse_channels,
)
from models.store import Ledger
from workflows.search_attributes import workflow_id_for


class CasesNotTold(Exception):
    """Stored, but Temporal is unreachable: these running cases do not know of the change."""

    def __init__(self, invoices: list[str]) -> None:
        super().__init__(f"{len(invoices)} running case(s) not told")
        self.invoices = invoices


class PreferencesChange(BaseModel):
    """Fields left out stay as they are; an empty string clears one."""

    channels: str | None = Field(default=None, description="preferred order, e.g. sms,email")
    phone: str | None = Field(default=None, description="international format, +34…")
    timezone: str | None = Field(default=None, description="IANA zone, e.g. Europe/Madrid")
    locale: str | None = Field(default=None, description="e.g. es, es-MX, en")
    opt_out: list[str] = Field(default=[], description="channels to stop using")
    opt_in: list[str] = Field(default=[], description="channels to use again")
    by: str = Field(min_length=1, max_length=MAX_BY, description="who changes them")


class PreferencesView(BaseModel):
    customer_id: str
    channels: list[str]
    phone: str | None
    timezone: str | None
    locale: str | None
    opted_out: list[str]
    # Running cases told about an opt-out or opt-in now.
    cases_told: list[str] = []

    @classmethod
    def of(cls, customer_id: str, prefs: Preferences | None, told: list[str]) -> PreferencesView:
        p = prefs or Preferences([], None, None, None, [])
        return cls(
            customer_id=customer_id,
            channels=p.channels,
            phone=p.phone,
            timezone=p.timezone,
            locale=p.locale,
            opted_out=p.opted_out,
            cases_told=told,
        )


def _check_locale(tag: str) -> str:
    try:
        Locale.parse(tag.strip().replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        raise PreferenceError(f"unknown locale {tag!r} (use a tag like es, es-MX, en)") from None
    return tag.strip()


def validated(change: PreferencesChange) -> dict[str, str | None]:
    """The stored form of a change; PreferenceError names the first bad field."""
    outs, ins = parse_channels(",".join(change.opt_out)), parse_channels(",".join(change.opt_in))
    both = set(outs) & set(ins)
    if both:
        raise PreferenceError(f"{', '.join(sorted(both))} cannot be opted out and in at once")
    values: dict[str, str | None] = {}
    if change.channels is not None:
        values["channels"] = ",".join(parse_channels(change.channels))
    if change.phone is not None:
        values["phone"] = check_phone(change.phone) if change.phone else ""
    if change.timezone is not None:
        values["timezone"] = check_timezone(change.timezone) if change.timezone else ""
    if change.locale is not None:
        values["locale"] = _check_locale(change.locale) if change.locale else ""
    return values


async def change_preferences(
    ledger: Ledger, client: Client | None, customer_id: str, change: PreferencesChange
) -> PreferencesView:
    """Store the change, then tell the customer's running cases about opt-outs and opt-ins
    (client None: Temporal unreachable; CasesNotTold when there were cases to tell)."""
    values = validated(change)
    store = PreferenceStore(ledger.sessions)
    before = store.get(customer_id)
    opted = set(before.opted_out if before else [])
    now_out = (opted | set(change.opt_out)) - set(change.opt_in)
    values["opted_out"] = ",".join(sorted(now_out))
    prefs = store.set(customer_id, change.by, **values)
    flips = {c: True for c in now_out - opted} | {c: False for c in opted - now_out}
    told: list[str] = []
    running = ChannelStore(ledger.sessions).open_invoices_of([customer_id]) if flips else []
    if running and client is None:
        raise CasesNotTold(running)
    if client is not None:
        for invoice in running:
            handle = client.get_workflow_handle(workflow_id_for(invoice))
            for channel, out in flips.items():
                source = f"support ({change.by})"
                await handle.signal(
                    "channel_opt_out",
                    ChannelOptOutInput(channel=channel, opted_out=out, source=source),
                )
            told.append(invoice)
    return PreferencesView.of(customer_id, prefs, told)


def current_preferences(ledger: Ledger, customer_id: str) -> PreferencesView:
    return PreferencesView.of(customer_id, PreferenceStore(ledger.sessions).get(customer_id), [])
