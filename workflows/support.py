"""Support actions on a case: Updates with validators, and Signals of the same meaning.

Validators run before anything is written to history, so a rejected action leaves no trace;
the Signals exist for the Temporal UI's "Send signal", where an invalid request is logged and
ignored rather than failing the workflow.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from models.activities import RecordSupportActionInput
    from models.dunning import (
        GraceGrant,
        GrantGraceInput,
        GrantGraceResult,
        Outcome,
        PauseInput,
        PauseResult,
        ResumeInput,
        ResumeResult,
        RetryNowInput,
        RetryNowResult,
        StopInput,
        StopResult,
    )
    from policies import engine
    from policies.engine import Trigger
    from policies.schema import Policy
    from workflows.case_state import CaseBase

MAX_TEXT = 500


def _need(text: str, what: str) -> None:
    if not text or not text.strip():
        raise ValueError(f"{what} is required")
    if len(text) > MAX_TEXT:
        raise ValueError(f"{what} is limited to {MAX_TEXT} characters")


class SupportMixin(CaseBase):
    # Validation, shared by Updates (reject) and Signals (log and ignore).

    def _open_case_policy(self) -> Policy:
        if self.case.closed or self.outcome is not None:
            raise ValueError(f"the case is closed ({self.status_value().value})")
        if self.policy is None:
            raise ValueError("the case is still opening; try again in a few seconds")
        if self.finalizing:
            raise ValueError(f"the final action ({self.policy.final.action}) is already running")
        return self.policy

    def _check_grace(self, input: GrantGraceInput) -> None:
        policy = self._open_case_policy()
        problem = engine.grace_problem(policy, self.case, input.days)
        if problem:
            raise ValueError(problem)
        _need(input.reason, "reason")
        _need(input.by, "by")

    def _check_pause(self, input: PauseInput) -> None:
        self._open_case_policy()
        if self.case.paused_since is not None:
            raise ValueError("the case is already paused")
        _need(input.reason, "reason")
        _need(input.by, "by")

    def _check_resume(self, input: ResumeInput) -> None:
        self._open_case_policy()
        if self.case.paused_since is None:
            raise ValueError("the case is not paused")
        _need(input.by, "by")

    def _check_retry_now(self, input: RetryNowInput) -> None:
        self._open_case_policy()
        if self.case.paused_since is not None:
            raise ValueError("the case is paused; resume it first")
        if self.charging or self.case.pending_retry is not None:
            raise ValueError("a charge is already in progress or queued")
        _need(input.by, "by")

    def _check_stop(self, input: StopInput) -> None:
        self._open_case_policy()
        _need(input.reason, "reason")
        _need(input.by, "by")

    # Effects, shared by Updates and Signals.

    def _record(self, action: str, by: str, via: str, result: str, **extra: object) -> None:
        info = workflow.current_update_info()
        request_id = info.id if info else f"{workflow.info().run_id}:signal:{len(self.history)}"
        self.pending_records.append(
            RecordSupportActionInput(
                invoice_id=self.input.invoice_id,
                request_id=request_id,
                action=action,
                by=by,
                result=result,
                at=workflow.now(),
                via=via,  # type: ignore[arg-type]
                attempts=self.case.attempts,
                **extra,  # type: ignore[arg-type]
            )
        )
        self.history.append(f"{action} ({via})")
        self.revision += 1

    def _apply_grace(self, input: GrantGraceInput, via: str) -> str:
        assert self.policy is not None
        self.case = engine.grant_grace(self.policy, self.case, input.days)
        self.grace.append(
            GraceGrant(days=input.days, reason=input.reason, by=input.by, at=workflow.now())
        )
        deadline = engine.final_deadline(self.policy, self.case, workflow.now())
        message = f"granted {input.days} days of grace; final action now at {deadline.isoformat()}"
        self._record("grant_grace", input.by, via, message, reason=input.reason, days=input.days)
        return message

    def _apply_pause(self, input: PauseInput, via: str) -> str:
        self.case = engine.pause(self.case, workflow.now())
        self.paused_reason = input.reason
        self._record("pause", input.by, via, "paused", reason=input.reason)
        return "paused: no charges or emails until resumed"

    def _apply_resume(self, input: ResumeInput, via: str) -> str:
        self.case = engine.resume(self.case, workflow.now())
        self.paused_reason = None
        self._record("resume", input.by, via, "resumed")
        return "resumed; deadlines moved later by the time spent paused"

    def _apply_retry_now(self, input: RetryNowInput, via: str) -> str:
        self.case = engine.request_retry(self.case, Trigger.SUPPORT)
        self._record("retry_now", input.by, via, "retry queued")
        return "a charge attempt runs now"

    def _apply_stop(self, input: StopInput, via: str) -> str:
        self._close(Outcome.STOPPED)
        self._record(
            "stop", input.by, via, "stopped", reason=input.reason, closes_with=Outcome.STOPPED
        )
        return "stopped: no further charges or emails"

    def _signal(self, check: Callable[[], None], apply: Callable[[str], str], name: str) -> None:
        try:
            check()
        except ValueError as err:
            workflow.logger.warning("Ignored %s signal: %s", name, err)
            return
        apply("signal")

    # Updates.

    @workflow.update(
        name="grant_grace",
        description=(
            "Grant grace days {days, reason, by}: moves the remaining schedule and the final"
            " action later. Returns the new state."
        ),
    )
    def grant_grace(self, input: GrantGraceInput) -> GrantGraceResult:
        message = self._apply_grace(input, "update")
        state = self.snapshot()
        return GrantGraceResult(
            action="grant_grace",
            message=message,
            state=state,
            new_final_deadline=state.final_deadline,
        )

    @grant_grace.validator
    def _validate_grant_grace(self, input: GrantGraceInput) -> None:
        self._check_grace(input)

    @workflow.update(
        name="pause", description="Pause the case {reason, by}: no charges or emails until resumed."
    )
    def pause(self, input: PauseInput) -> PauseResult:
        message = self._apply_pause(input, "update")
        return PauseResult(action="pause", message=message, state=self.snapshot())

    @pause.validator
    def _validate_pause(self, input: PauseInput) -> None:
        self._check_pause(input)

    @workflow.update(
        name="resume",
        description="Resume a paused case {by}; deadlines move later by the paused time.",
    )
    def resume(self, input: ResumeInput) -> ResumeResult:
        message = self._apply_resume(input, "update")
        return ResumeResult(action="resume", message=message, state=self.snapshot())

    @resume.validator
    def _validate_resume(self, input: ResumeInput) -> None:
        self._check_resume(input)

    @workflow.update(
        name="retry_now", description="Retry the charge now {by}, outside the schedule."
    )
    def retry_now(self, input: RetryNowInput) -> RetryNowResult:
        message = self._apply_retry_now(input, "update")
        return RetryNowResult(action="retry_now", message=message, state=self.snapshot())

    @retry_now.validator
    def _validate_retry_now(self, input: RetryNowInput) -> None:
        self._check_retry_now(input)

    @workflow.update(
        name="stop",
        description="Stop dunning {reason, by}: no further charges, emails or final action.",
    )
    def stop(self, input: StopInput) -> StopResult:
        message = self._apply_stop(input, "update")
        return StopResult(action="stop", message=message, state=self.snapshot())

    @stop.validator
    def _validate_stop(self, input: StopInput) -> None:
        self._check_stop(input)

    # Signals of the same meaning, for the Temporal UI.

    @workflow.signal(
        name="grant_grace",
        description=(
            'Same as the grant_grace update, for the UI: JSON {"days": 3, "reason": "...",'
            ' "by": "..."}. Invalid requests are logged and ignored.'
        ),
    )
    def grant_grace_signal(self, input: GrantGraceInput) -> None:
        self._signal(
            lambda: self._check_grace(input),
            lambda via: self._apply_grace(input, via),
            "grant_grace",
        )

    @workflow.signal(
        name="pause",
        description='Same as the pause update, for the UI: JSON {"reason": "...", "by": "..."}.',
    )
    def pause_signal(self, input: PauseInput) -> None:
        self._signal(
            lambda: self._check_pause(input), lambda via: self._apply_pause(input, via), "pause"
        )

    @workflow.signal(
        name="resume", description='Same as the resume update, for the UI: JSON {"by": "..."}.'
    )
    def resume_signal(self, input: ResumeInput) -> None:
        self._signal(
            lambda: self._check_resume(input), lambda via: self._apply_resume(input, via), "resume"
        )

    @workflow.signal(
        name="retry_now",
        description='Same as the retry_now update, for the UI: JSON {"by": "..."}.',
    )
    def retry_now_signal(self, input: RetryNowInput) -> None:
        self._signal(
            lambda: self._check_retry_now(input),
            lambda via: self._apply_retry_now(input, via),
            "retry_now",
        )

    @workflow.signal(
        name="stop",
        description='Same as the stop update, for the UI: JSON {"reason": "...", "by": "..."}.',
    )
    def stop_signal(self, input: StopInput) -> None:
        self._signal(
            lambda: self._check_stop(input), lambda via: self._apply_stop(input, via), "stop"
        )
