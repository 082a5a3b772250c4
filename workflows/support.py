"""What support actions do to a case, once their validators (in `Case`) have accepted them.

Each is recorded in the ledger by a bookkeeping activity that runs beside the case (see
`bookkeeping`, which also records the payment page's actions), keyed by the Update id so a
retried request is recorded once.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from models.activities import RecordCustomerActionInput, RecordSupportActionInput
    from models.dunning import (
        GrantGraceInput,
        Outcome,
        PauseInput,
        ResumeInput,
        RetryNowInput,
        StopInput,
    )
    from policies.engine import Trigger
    from workflows.calls import CaseCalls, failure_reason
    from workflows.case import Case
    from workflows.presentation import actor


class SupportActions:
    def __init__(self, case: Case) -> None:
        self.case = case
        # Support's and the customer's (RecordCustomerActionInput) actions, in order.
        self.records: list[RecordSupportActionInput | RecordCustomerActionInput] = []

    async def bookkeeping(self, calls: CaseCalls) -> None:
        """Runs beside the case, so a ledger outage never holds up a charge."""
        while True:
            await workflow.wait_condition(lambda: bool(self.records))
            record = self.records[0]
            try:
                await calls.record(record)
            except ActivityError as err:
                self.case.log(f"{record.action} not recorded in the ledger: {failure_reason(err)}")
            self.records.pop(0)

    def record(self, action: str, by: str, result: str, **extra: object) -> None:
        info = workflow.current_update_info()
        via = "update" if info else "signal"
        request_id = (
            info.id if info else f"{workflow.info().run_id}:signal:{len(self.case.history)}"
        )
        self.records.append(
            RecordSupportActionInput(
                invoice_id=self.case.input.invoice_id,
                request_id=request_id,
                action=action,
                by=by,
                result=result,
                at=workflow.now(),
                via=via,
                **extra,  # type: ignore[arg-type]
            )
        )
        why = extra.get("reason")
        self.case.log(f"{action} by {actor(by)}" + (f" ({why})" if why else "") + f": {result}")

    def grant_grace(self, input: GrantGraceInput) -> str:
        message = self.case.grant_grace(input.days, input.reason, input.by, workflow.now())
        self.record("grant_grace", input.by, message, reason=input.reason, days=input.days)
        return message

    def pause(self, input: PauseInput) -> str:
        self.case.pause(input.reason, workflow.now())
        self.record("pause", input.by, "paused", reason=input.reason)
        return "paused: no charges or emails until resumed"

    def resume(self, input: ResumeInput) -> str:
        self.case.resume(workflow.now())
        self.record("resume", input.by, "resumed")
        return "resumed; deadlines moved later by the time spent paused"

    def retry_now(self, input: RetryNowInput) -> str:
        self.case.request_retry(Trigger.SUPPORT)
        self.record("retry_now", input.by, "retry queued")
        return "a charge attempt runs now"

    def stop(self, input: StopInput) -> str:
        self.case.close(Outcome.STOPPED, input.reason)
        self.record("stop", input.by, "stopped", reason=input.reason)
        return "stopped: no further charges or emails"
