"""Configuration of the Twilio stand-in (also read from the environment by `__main__`)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Fixed test credentials in Twilio's shapes: an Account SID is "AC" + 32 hex digits, a
# Messaging Service SID "MG" + 32 hex digits; the auth token is 32 hex digits.
DEFAULT_ACCOUNT_SID = "AC" + "5" * 32
DEFAULT_AUTH_TOKEN = "7" * 32
DEFAULT_NUMBER = "+14155550100"
DEFAULT_MESSAGING_SERVICE_SID = "MG" + "3" * 32


@dataclass
class TwilioStandinConfig:
    account_sid: str = DEFAULT_ACCOUNT_SID
    auth_token: str = DEFAULT_AUTH_TOKEN
    # The senders the account owns. A From outside this list is refused with 21659.
    numbers: list[str] = field(default_factory=lambda: [DEFAULT_NUMBER])
    # Messaging Services of the account; their sender pool is `numbers`.
    messaging_service_sids: list[str] = field(
        default_factory=lambda: [DEFAULT_MESSAGING_SERVICE_SID]
    )
    # Where customer texts go (the number's "A message comes in" webhook).
    inbound_url: str | None = None
    # Pause between two status changes of an outbound message (queued → sent → delivered),
    # so that tests and demos can watch a message move; 0 moves it as fast as possible.
    status_step_seconds: float = 0.0
