"""Field-level checks for `POST /v3/mail/send` bodies (see validation.py for sources)."""

from __future__ import annotations

import re
from typing import Any

HELP_BASE = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"

# The errors page: "The personalization block is limited to 1000 personalizations per API
# request" and "There is a limit of 1000 total recipients (to + cc + bcc) per request."
MAX_PERSONALIZATIONS = 1000
MAX_RECIPIENTS = 1000
# Mail Send reference, custom_args: the total size of custom arguments may not exceed 10,000
# bytes (measured here as the UTF-8 JSON encoding of the merged object per personalization).
MAX_CUSTOM_ARGS_BYTES = 10_000
# Mail Send reference, categories: at most 10 per message, each at most 255 characters.
MAX_CATEGORIES = 10
MAX_CATEGORY_LENGTH = 255

# Pragmatic address check: one "@", no whitespace or RFC 5322 specials in the local part, and
# a dotted host name. SendGrid rejects such values with "Does not contain a valid address."
_EMAIL_RE = re.compile(
    r"^[^@\s<>()\[\],;:\"\\]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)

Error = dict[str, Any]


def is_valid_email(value: object) -> bool:
    return isinstance(value, str) and len(value) <= 320 and bool(_EMAIL_RE.match(value))


def _help_for(field: str | None) -> str | None:
    if field is None:
        return None
    # The help anchors in real responses use the field path without array indices,
    # e.g. "#message.personalizations.to" for "personalizations.0.to.0.email".
    anchor = ".".join(part for part in field.split(".") if not part.isdigit())
    return f"{HELP_BASE}#message.{anchor}"


def error(message: str, field: str | None) -> Error:
    return {"message": message, "field": field, "help": _help_for(field)}


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def invalid_type(field: str, expected: str, value: object) -> Error:
    return error(f"Invalid type. Expected: {expected}, given: {_type_name(value)}.", field)


def check_address_list(
    entries: object, field: str, errors: list[Error], *, required: bool
) -> list[str]:
    """Validate a to/cc/bcc array; returns the addresses seen (valid or not)."""
    if entries is None:
        if required:
            errors.append(
                error(
                    "The to array is required for all personalization objects, and must have "
                    "at least one email object with a valid email address.",
                    field,
                )
            )
        return []
    if not isinstance(entries, list):
        errors.append(invalid_type(field, "array", entries))
        return []
    if required and not entries:
        errors.append(
            error(
                "The to array is required for all personalization objects, and must have "
                "at least one email object with a valid email address.",
                field,
            )
        )
    seen: list[str] = []
    for idx, entry in enumerate(entries):
        entry_field = f"{field}.{idx}"
        if not isinstance(entry, dict):
            errors.append(invalid_type(entry_field, "object", entry))
            continue
        email = entry.get("email")
        if email is None:
            errors.append(
                error(
                    "Each email object must at least have an email address and may also "
                    'contain a name. e.g. {"email": "example@example.com"}',
                    f"{entry_field}.email",
                )
            )
            continue
        if not is_valid_email(email):
            errors.append(error("Does not contain a valid address.", f"{entry_field}.email"))
        if isinstance(email, str):
            seen.append(email)
        name = entry.get("name")
        if name is not None and not isinstance(name, str):
            errors.append(invalid_type(f"{entry_field}.name", "string", name))
    return seen


def check_string_map(value: object, field: str, errors: list[Error]) -> dict[str, str]:
    """custom_args / headers: objects whose values must be strings (Mail Send reference)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append(invalid_type(field, "object", value))
        return {}
    clean: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str):
            errors.append(invalid_type(f"{field}.{key}", "string", item))
        else:
            clean[key] = item
    return clean


def check_subject(value: object, field: str, errors: list[Error]) -> bool:
    """Returns True when a usable subject is present."""
    if value is None:
        return False
    if not isinstance(value, str):
        errors.append(invalid_type(field, "string", value))
        return False
    if not value.strip():
        errors.append(
            error("The subject must be a string at least one character in length.", field)
        )
        return False
    return True


def check_from(body: dict[str, Any], errors: list[Error]) -> None:
    sender = body.get("from")
    if sender is None:
        errors.append(
            error(
                "The from object must be provided for every email send. It is an object that "
                "requires the email parameter, but may also contain a name parameter.",
                "from",
            )
        )
    elif not isinstance(sender, dict):
        errors.append(invalid_type("from", "object", sender))
    elif not is_valid_email(sender.get("email")):
        errors.append(error("The from email does not contain a valid address.", "from.email"))


def check_reply_to(body: dict[str, Any], errors: list[Error]) -> None:
    reply_to = body.get("reply_to")
    if reply_to is None:
        return
    if not isinstance(reply_to, dict):
        errors.append(invalid_type("reply_to", "object", reply_to))
    elif not is_valid_email(reply_to.get("email")):
        errors.append(
            error("The reply_to email does not contain a valid address.", "reply_to.email")
        )


def check_content(body: dict[str, Any], errors: list[Error]) -> None:
    content = body.get("content")
    has_template = isinstance(body.get("template_id"), str) and bool(body["template_id"])
    if content is None or content == []:
        if not has_template:
            errors.append(
                error(
                    "Unless a valid template_id is provided, the content parameter is required. "
                    "There must be at least one defined content block. We typically suggest "
                    "both text/plain and text/html blocks are included, but only one block "
                    "is required.",
                    "content",
                )
            )
        return
    if not isinstance(content, list):
        errors.append(invalid_type("content", "array", content))
        return
    types: list[str] = []
    for idx, block in enumerate(content):
        field = f"content.{idx}"
        if not isinstance(block, dict):
            errors.append(invalid_type(field, "object", block))
            continue
        ctype = block.get("type")
        if not isinstance(ctype, str) or not ctype.strip():
            errors.append(
                error(
                    "The content type must be a string at least one character in length.",
                    f"{field}.type",
                )
            )
        else:
            types.append(ctype.strip().lower())
        value = block.get("value")
        if not isinstance(value, str) or not value:
            errors.append(
                error(
                    "The content value must be a string at least one character in length.",
                    f"{field}.value",
                )
            )
    if types.count("text/plain") > 1 or types.count("text/html") > 1:
        errors.append(
            error("If present, text/plain and text/html may only be provided once.", "content")
        )
    # Errors page: "If present, text/plain must be first, followed by text/html, followed by
    # any other content."
    expected_prefix = [t for t in ("text/plain", "text/html") if t in types]
    if types[: len(expected_prefix)] != expected_prefix:
        errors.append(
            error(
                "If present, text/plain must be first, followed by text/html, followed by any "
                "other content.",
                "content",
            )
        )


def check_categories(body: dict[str, Any], errors: list[Error]) -> None:
    categories = body.get("categories")
    if categories is None:
        return
    if not isinstance(categories, list):
        errors.append(invalid_type("categories", "array", categories))
        return
    if len(categories) > MAX_CATEGORIES:
        errors.append(
            error(
                "Too many categories. You may have at most 10 categories per request.", "categories"
            )
        )
    for idx, cat in enumerate(categories):
        if not isinstance(cat, str):
            errors.append(invalid_type(f"categories.{idx}", "string", cat))
        elif len(cat) > MAX_CATEGORY_LENGTH:
            errors.append(error("A category cannot exceed 255 characters.", f"categories.{idx}"))
