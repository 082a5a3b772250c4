"""Test controls under `/_standin/` (not part of Twilio's API; no auth)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from .config import TwilioStandinConfig
from .delivery import Deliverer
from .inbound import receive
from .phones import e164
from .state import DeliveryFailure, Store


class FaultIn(BaseModel):
    # For the next `count` creates (To containing `to_contains`, if given): "429" and "500"
    # refuse before any message exists; "hang" sends, then answers after `seconds`; "delay"
    # waits `seconds` first and sends only if the client is still waiting.
    mode: Literal["429", "500", "hang", "delay"]
    count: int = Field(default=1, ge=1)
    to_contains: str | None = None
    seconds: float = Field(default=30.0, ge=0, le=600)


class FailingIn(BaseModel):
    number: str
    status: Literal["undelivered", "failed"] = "undelivered"
    # 30003 "Unreachable destination handset"; 30005 unknown destination; 30006 landline.
    error_code: int = 30003


class InboundIn(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    sender: str = Field(alias="from")
    body: str
    to: str | None = None


class InboundUrlIn(BaseModel):
    url: str | None = None


def _number(raw: str) -> str:
    number = e164(raw)
    if number is None:
        raise HTTPException(422, f"{raw!r} is not a valid E.164 phone number")
    return number


def control_router(config: TwilioStandinConfig, store: Store, deliverer: Deliverer) -> APIRouter:
    router = APIRouter(prefix="/_standin")

    @router.post("/faults")
    def add_fault(spec: FaultIn) -> dict[str, Any]:
        store.add_fault(spec.mode, spec.count, spec.to_contains, spec.seconds)
        return {"faults": store.pending_faults()}

    @router.get("/faults")
    def list_faults() -> dict[str, Any]:
        return {"faults": store.pending_faults()}

    @router.delete("/faults")
    def clear_faults() -> dict[str, Any]:
        with store.lock:
            store.faults.clear()
        return {"faults": []}

    @router.post("/failing_numbers")
    def fail_number(spec: FailingIn) -> dict[str, Any]:
        with store.lock:
            store.failing[_number(spec.number)] = DeliveryFailure(spec.status, spec.error_code)
            return {"failing": {n: asdict(f) for n, f in store.failing.items()}}

    @router.delete("/failing_numbers")
    def clear_failing() -> dict[str, Any]:
        with store.lock:
            store.failing.clear()
        return {"failing": {}}

    @router.post("/inbound_url")
    def set_inbound_url(spec: InboundUrlIn) -> dict[str, Any]:
        with store.lock:
            config.inbound_url = spec.url
        return {"url": spec.url}

    @router.post("/inbound")
    def inbound(spec: InboundIn) -> dict[str, Any]:
        """A customer texts `body` from `from` to one of the account's numbers."""
        to = spec.to or config.numbers[0]
        if to not in config.numbers:
            raise HTTPException(422, f"{to} is not one of the account's numbers")
        message, params = receive(store, config, _number(spec.sender), to, spec.body)
        with store.lock:
            url = config.inbound_url
        if url:
            deliverer.webhook("inbound", url, params, message["sid"])
        return {"message": message, "params": params, "webhook_url": url}

    @router.get("/opt_outs")
    def opt_outs() -> dict[str, Any]:
        with store.lock:
            return {"opted_out": sorted(store.opted_out)}

    @router.get("/messages")
    def messages(to: str | None = None, direction: str | None = None) -> dict[str, Any]:
        """Every message, oldest first, with the StatusCallback each was sent with."""
        with store.lock:
            found = [
                {**s.resource, "status_callback": s.status_callback}
                for s in store.messages.values()
                if (to is None or s.resource["to"] == to)
                and (direction is None or s.resource["direction"] == direction)
            ]
        return {"messages": found}

    @router.get("/attempts")
    def attempts() -> dict[str, Any]:
        with store.lock:
            return {"attempts": list(store.attempts)}

    @router.get("/deliveries")
    def deliveries() -> dict[str, Any]:
        with store.lock:
            return {"deliveries": list(store.deliveries)}

    @router.post("/reset")
    def reset() -> dict[str, Any]:
        # The inbound URL survives a reset (as the Stripe stand-in's webhook endpoint does);
        # messages, opt-outs, failing numbers, faults and logs do not.
        store.reset()
        return {"reset": True}

    return router
