"""How to reach a customer: what support or the customer set, else Stripe, else the policy.

The ledger's `customer_preferences` row wins field by field; an empty field falls through to
the Stripe customer (`phone`, `preferred_locales`, `address.country`, `metadata`), and what
neither says is left to the policy (its channels, its quiet-hours zone). The opening activity
resolves it once, so the case's history records how its customer was reached.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from babel.core import get_global
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.ledger import CustomerPreference, utcnow
from models.store import statements, table_of
from policies.case_facts import get
from policies.schema import Channel

CHANNEL_NAMES: tuple[str, ...] = get_args(Channel)
# Stripe customer metadata keys a merchant may use for the same preferences.
METADATA_TIMEZONE = "timezone"
METADATA_CHANNELS = "dunning_channels"


class PreferenceError(ValueError):
    """A preference that cannot be kept (unknown channel or zone, a number that is not one)."""


def parse_channels(text: str | None) -> list[str]:
    names = [c.strip() for c in (text or "").split(",") if c.strip()]
    unknown = [c for c in names if c not in CHANNEL_NAMES]
    if unknown:
        raise PreferenceError(
            f"unknown channel {', '.join(unknown)}; expected some of {', '.join(CHANNEL_NAMES)}"
        )
    return list(dict.fromkeys(names))


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise PreferenceError(f"unknown time zone {name!r} (use an IANA name)") from None
    return name


def check_phone(number: str, country: str | None = None) -> str:
    """E.164, as Twilio wants it; a national number needs the customer's country."""
    try:
        parsed = phonenumbers.parse(number, (country or "").upper() or None)
    except phonenumbers.NumberParseException:
        raise PreferenceError(f"{number!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise PreferenceError(f"{number!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def country_timezone(country: str | None) -> str | None:
    """A country's most common zone, from CLDR: the metazone most of its zones share, and in
    it the zone Windows uses as that metazone's main one (Europe/Madrid's rules for ES,
    America/New_York for US). Countries spanning zones need the customer's own zone for
    precision (preferences, or Stripe metadata `timezone`)."""
    zones = get_global("territory_zones").get((country or "").upper()) or []
    if not zones:
        return None
    metazones = get_global("meta_zones")
    golden = set(get_global("windows_zone_mapping").values())
    counts = Counter(metazones.get(zone) for zone in zones)
    return max(zones, key=lambda z: (counts[metazones.get(z)], z in golden))


@dataclass(frozen=True)
class Preferences:
    channels: list[str]
    phone: str | None
    timezone: str | None
    locale: str | None
    opted_out: list[str]


class PreferenceStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def get(self, customer_id: str) -> Preferences | None:
        # One read in autocommit (models.store.Statements): every case opening makes it.
        table = table_of(CustomerPreference)
        found = statements(self.sessions).run(
            lambda conn: conn.execute(
                select(table).where(table.c.customer_id == customer_id)
            ).first()
        )
        if found is None:
            return None
        return Preferences(
            channels=parse_channels(found.channels),
            phone=found.phone,
            timezone=found.timezone,
            locale=found.locale,
            opted_out=parse_channels(found.opted_out),
        )

    def set(self, customer_id: str, by: str, **changes: Any) -> Preferences:
        """Change the given fields (None leaves a field as it is, "" clears it)."""
        values = {k: (v or None) for k, v in changes.items() if v is not None}
        base = {"customer_id": customer_id, "updated_by": by[:255], "updated_at": utcnow()}
        with self.sessions.begin() as session:
            row = session.get(CustomerPreference, customer_id, with_for_update=True)
            if row is None:
                session.add(CustomerPreference(**base, **values))
            else:
                for key, value in {**base, **values}.items():
                    setattr(row, key, value)
        found = self.get(customer_id)
        assert found is not None
        return found


def customer_reach(customer: Any, invoice: Any, prefs: Preferences | None) -> dict[str, Any]:
    """The opening result's reach fields: preferences first, then the Stripe customer."""
    metadata = get(customer, "metadata")
    locales = get(customer, "preferred_locales") or []
    country = get(customer, "address", "country")
    stripe_zone = get(metadata, METADATA_TIMEZONE) if metadata is not None else None
    stripe_channels = get(metadata, METADATA_CHANNELS) if metadata is not None else None
    p = prefs or Preferences([], None, None, None, [])
    zone = p.timezone or _valid_zone(stripe_zone) or country_timezone(country)
    channels = p.channels or _valid_channels(stripe_channels)
    return {
        "locale": p.locale or (locales[0] if locales else "en"),
        "phone": p.phone or get(customer, "phone") or get(invoice, "customer_phone"),
        "country": country,
        "timezone": zone,
        "preferred_channels": channels,
        "opted_out_channels": p.opted_out,
    }


def _valid_zone(name: Any) -> str | None:
    # Metadata is free text the merchant typed: a bad value is ignored, not an error.
    if not isinstance(name, str):
        return None
    try:
        return check_timezone(name.strip())
    except PreferenceError:
        return None


def _valid_channels(text: Any) -> list[str]:
    try:
        return parse_channels(text) if isinstance(text, str) else []
    except PreferenceError:
        return []
