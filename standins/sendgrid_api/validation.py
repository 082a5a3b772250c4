"""Validation of `POST /v3/mail/send` bodies, following SendGrid's published rules.

Sources (Twilio SendGrid docs):
- Mail Send API reference: https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send
- Mail Send errors: https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors
- v3 error format: https://www.twilio.com/docs/sendgrid/api-reference/how-to-use-the-sendgrid-v3-api/errors

Every problem found is reported, as the real endpoint lists all validation errors at once.
"""

from __future__ import annotations

import json

from .fields import (
    MAX_CUSTOM_ARGS_BYTES,
    MAX_PERSONALIZATIONS,
    MAX_RECIPIENTS,
    Error,
    check_address_list,
    check_categories,
    check_content,
    check_from,
    check_reply_to,
    check_string_map,
    check_subject,
    error,
    invalid_type,
)

__all__ = ["Error", "error", "validate_mail_send"]


def validate_mail_send(body: object) -> list[Error]:
    """Return every validation error for a mail/send body; empty list means accepted."""
    if not isinstance(body, dict):
        return [error("Bad Request", None)]
    errors: list[Error] = []

    top_subject = check_subject(body.get("subject"), "subject", errors)
    top_args = check_string_map(body.get("custom_args"), "custom_args", errors)
    check_string_map(body.get("headers"), "headers", errors)

    personalizations = body.get("personalizations")
    all_have_subject = True
    total_recipients = 0
    if personalizations is None or personalizations == []:
        errors.append(error("You must have at least one personalization.", "personalizations"))
        all_have_subject = False
    elif not isinstance(personalizations, list):
        errors.append(invalid_type("personalizations", "array", personalizations))
        all_have_subject = False
    else:
        if len(personalizations) > MAX_PERSONALIZATIONS:
            errors.append(
                error(
                    "The personalization block is limited to 1000 personalizations per API "
                    f"request. You have provided {len(personalizations)} personalizations. "
                    "Please consider splitting this into multiple requests and resending "
                    "your request.",
                    "personalizations",
                )
            )
        for idx, pers in enumerate(personalizations):
            field = f"personalizations.{idx}"
            if not isinstance(pers, dict):
                errors.append(invalid_type(field, "object", pers))
                all_have_subject = False
                continue
            addresses: list[str] = []
            addresses += check_address_list(pers.get("to"), f"{field}.to", errors, required=True)
            addresses += check_address_list(pers.get("cc"), f"{field}.cc", errors, required=False)
            addresses += check_address_list(pers.get("bcc"), f"{field}.bcc", errors, required=False)
            total_recipients += len(addresses)
            lowered = [a.lower() for a in addresses]
            dupes = sorted({a for a in lowered if lowered.count(a) > 1})
            if dupes:
                errors.append(
                    error(
                        "Each email address in the personalization block should be unique "
                        "between to, cc, and bcc. We found the first duplicate instance of "
                        f"[{dupes[0]}] in the {field} field.",
                        field,
                    )
                )
            if "subject" in pers:
                if not check_subject(pers.get("subject"), f"{field}.subject", errors):
                    all_have_subject = False
            else:
                all_have_subject = False
            args = check_string_map(pers.get("custom_args"), f"{field}.custom_args", errors)
            check_string_map(pers.get("headers"), f"{field}.headers", errors)
            merged = {**top_args, **args}
            size = len(json.dumps(merged, ensure_ascii=False).encode("utf-8"))
            if size > MAX_CUSTOM_ARGS_BYTES:
                errors.append(
                    error(
                        "The total size of your custom_args must be less than 10,000 bytes.",
                        f"{field}.custom_args" if args else "custom_args",
                    )
                )
    if total_recipients > MAX_RECIPIENTS:
        errors.append(
            error(
                "There is a limit of 1000 total recipients (to + cc + bcc) per request.",
                "personalizations",
            )
        )

    has_template = isinstance(body.get("template_id"), str) and bool(body["template_id"])
    if not top_subject and not all_have_subject and not has_template and "subject" not in body:
        errors.append(
            error(
                "The subject is required. You can get around this requirement if you use a "
                "template with a subject defined or if every personalization has a subject "
                "defined.",
                "subject",
            )
        )

    check_from(body, errors)
    check_reply_to(body, errors)
    check_content(body, errors)
    check_categories(body, errors)
    return errors
