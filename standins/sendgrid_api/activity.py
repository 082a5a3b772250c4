"""The Email Activity API ("messages" API): `GET /v3/messages?query=...&limit=...`.

Sources (Twilio SendGrid docs):
- Filter all messages: https://www.twilio.com/docs/sendgrid/api-reference/email-activity/filter-all-messages
- Getting started / query reference:
  https://www.twilio.com/docs/sendgrid/for-developers/sending-email/getting-started-email-activity-api

Queries have the form `query_type="query_content"` (URL encoded), compound queries join terms
with AND, and a custom argument is addressed as `unique_args['name']="value"` (custom_args of the
v3 Mail Send API are the unique_args of the activity feed). The stand-in understands equality
terms on the fields below joined by AND, each optionally in parentheses; anything else is
answered with 400 rather than silently ignored, so a client can never mistake an unsupported
query for "no such message".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .state import RecordedMessage

# Filter all messages: "limit ... must be greater than 0 and less than or equal to 1000",
# 10 when omitted.
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000

# Fields of a listed message that an equality term may name.
_PLAIN_FIELDS = ("msg_id", "from_email", "subject", "to_email", "status")

_TERM = re.compile(
    r"""(?:unique_args\[(?P<quote>['"])(?P<arg>[^'"\]]+)(?P=quote)\]|(?P<field>[a-z_]+))"""
    r"""\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)\"""",
)
_AND = re.compile(r"AND\b", re.IGNORECASE)


class QueryError(ValueError):
    """A query (or limit) the stand-in cannot parse; answered with 400 naming the field."""

    def __init__(self, message: str, field: str = "query") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Term:
    field: str  # a plain field, or "unique_args" with `arg` set
    value: str
    arg: str | None = None


def parse_query(query: str) -> list[Term]:
    """Parse `a="x" AND (unique_args['k']="y")` into terms; raise QueryError otherwise."""
    terms: list[Term] = []
    pos, depth = 0, 0
    text = query.strip()
    if not text:
        raise QueryError("query must not be empty")
    while True:
        while pos < len(text) and (text[pos].isspace() or text[pos] == "("):
            depth += text[pos] == "("
            pos += 1
        match = _TERM.match(text, pos)
        if match is None:
            raise QueryError(f"invalid query at position {pos}: {text[pos : pos + 40]!r}")
        field, arg = match["field"], match["arg"]
        if arg is None and field not in _PLAIN_FIELDS:
            raise QueryError(f"unsupported query type {field!r}")
        value = re.sub(r"\\(.)", r"\1", match["value"])
        terms.append(Term("unique_args" if arg else field, value, arg))
        pos = match.end()
        while pos < len(text) and (text[pos].isspace() or text[pos] == ")"):
            depth -= text[pos] == ")"
            pos += 1
        if depth < 0:
            raise QueryError("unbalanced parentheses")
        if pos == len(text):
            break
        joiner = _AND.match(text, pos)
        if joiner is None:
            raise QueryError(f"expected AND at position {pos}: {text[pos : pos + 40]!r}")
        pos = joiner.end()
    if depth != 0:
        raise QueryError("unbalanced parentheses")
    return terms


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise QueryError("limit must be an integer", "limit") from None
    if not 0 < limit <= MAX_LIMIT:
        raise QueryError(f"limit must be greater than 0 and at most {MAX_LIMIT}", "limit")
    return limit


def _event_time(received_at: str) -> str:
    # The feed's timestamps look like "2017-11-07T23:13:58Z" (whole seconds, UTC).
    return datetime.fromisoformat(received_at).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _entries(message: RecordedMessage) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """One feed entry per recipient: SendGrid splits a request into one message per address,
    each with its own msg_id that starts with the request's X-Message-Id."""
    recipients = message.to + message.cc + message.bcc
    return [
        (
            {
                "msg_id": (
                    f"{message.message_id}.standin0001p1-{message.personalization_index}-{idx}.0"
                ),
                "from_email": message.from_email,
                "subject": message.subject,
                "to_email": address,
                "status": "delivered",
                "opens_count": 0,
                "clicks_count": 0,
                "last_event_time": _event_time(message.received_at),
            },
            message.custom_args,
        )
        for idx, address in enumerate(recipients)
    ]


def _matches(entry: dict[str, Any], custom_args: dict[str, str], terms: list[Term]) -> bool:
    for term in terms:
        if term.field == "unique_args":
            assert term.arg is not None
            if custom_args.get(term.arg) != term.value:
                return False
        elif term.field in ("to_email", "from_email"):
            # Addresses compare case-insensitively, as mailbox domains do.
            if str(entry.get(term.field) or "").lower() != term.value.lower():
                return False
        elif entry.get(term.field) != term.value:
            return False
    return True


def list_messages(
    messages: list[RecordedMessage],
    query: str | None,
    limit: int,
    lag_seconds: float = 0.0,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """The `messages` array of the answer: newest first, at most `limit` entries."""
    terms = parse_query(query) if query is not None else []
    cutoff = (now or datetime.now(UTC)) - timedelta(seconds=lag_seconds)
    found: list[dict[str, Any]] = []
    for message in reversed(messages):
        # The feed is eventually consistent: messages accepted within the lag are not listed.
        if lag_seconds and datetime.fromisoformat(message.received_at) > cutoff:
            continue
        for entry, custom_args in _entries(message):
            if _matches(entry, custom_args, terms):
                found.append(entry)
    return found[:limit]
