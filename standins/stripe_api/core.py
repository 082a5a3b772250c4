"""Shared plumbing for the API handlers: the stand-in's parts and per-request context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .config import StripeStandinConfig
from .errors import invalid, missing_param, no_such
from .state import Store
from .webhooks import Emitter


@dataclass
class Core:
    config: StripeStandinConfig
    store: Store = field(default_factory=Store)
    emitter: Emitter = field(init=False)

    def __post_init__(self) -> None:
        self.emitter = Emitter(self.store, self.config)


@dataclass
class Ctx:
    """Who is asking: used for `request` on events and for the charge log."""

    request_id: str | None = None
    idempotency_key: str | None = None

    def emit(self, core: Core, type_: str, obj: dict[str, Any], prev: Any = None) -> None:
        core.emitter.emit(
            type_,
            obj,
            previous_attributes=prev,
            request_id=self.request_id,
            idempotency_key=self.idempotency_key,
        )


def require(params: dict[str, Any], name: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise missing_param(name)
    return value


def as_int(params: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(
            f"Invalid integer: {value}", param=name, code="parameter_invalid_integer"
        ) from None


def as_bool(params: dict[str, Any], name: str, default: bool) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if value in ("true", True):
        return True
    if value in ("false", False):
        return False
    raise invalid(f"Invalid boolean: {value}", param=name)


def fetch(core: Core, object_id: str, prefix: str, kind: str, param: str = "id") -> dict[str, Any]:
    obj = core.store.get(object_id, prefix) if isinstance(object_id, str) else None
    if obj is None:
        raise no_such(kind, str(object_id), param)
    return obj


def apply_metadata(obj: dict[str, Any], value: Any) -> None:
    # Stripe: keys set to "" are removed; `metadata=""` clears everything.
    if value is None:
        return
    if value == "":
        obj["metadata"] = {}
        return
    if not isinstance(value, dict):
        raise invalid("Invalid metadata: must be a hash", param="metadata")
    for key, val in value.items():
        if val == "":
            obj["metadata"].pop(key, None)
        else:
            obj["metadata"][key] = str(val)


def diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`previous_attributes`: old values of what changed, nested dicts reduced to the change."""
    out: dict[str, Any] = {}
    for key, old_value in old.items():
        new_value = new.get(key)
        if old_value == new_value:
            continue
        if isinstance(old_value, dict) and isinstance(new_value, dict) and key != "metadata":
            out[key] = diff(old_value, new_value)
        else:
            out[key] = old_value
    return out
