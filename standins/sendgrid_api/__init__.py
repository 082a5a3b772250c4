"""Local stand-in for SendGrid's v3 Mail Send API (tests and `dunning dev`)."""

from .app import create_app
from .validation import validate_mail_send

__all__ = ["create_app", "validate_mail_send"]
