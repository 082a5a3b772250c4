"""A workflow that asks the engine for a payday inside Temporal's sandbox (test_payday.py).

`DunningWorkflow` runs the engine in that sandbox, where late imports and locale look-ups fail
the workflow task; this module is imported by the sandbox on its own, without pytest.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from policies import engine
    from policies.schema import Policy


@workflow.defn(sandboxed=True)
class PaydayInSandbox:
    @workflow.run
    async def run(self, policy: Policy, started_at: datetime, countries: list[str]) -> list[str]:
        state = engine.CaseState(started_at=started_at)
        return [
            str(engine.next_action(policy, state, workflow.now(), country).at)
            for country in countries
        ]
