"""`X-Twilio-Signature` as Twilio's webhook security page defines it.

Take the full URL Twilio requests (scheme, host, path and query string), append every POST
parameter sorted by name as name immediately followed by value, HMAC-SHA1 the result keyed with
the account's auth token, and base64 the digest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping


def sign(url: str, params: Mapping[str, str], auth_token: str) -> str:
    data = url + "".join(f"{name}{params[name]}" for name in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
