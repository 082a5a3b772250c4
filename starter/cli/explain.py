"""`dunning explain INVOICE`: which segment rule gives an invoice its policy, and the schedule.

A dry run: it reads the invoice, its customer and subscription from Stripe and the customer's
earlier cases from the ledger, evaluates the rules (policies/rules.py) and prints the rule that
matched, why each earlier rule did not, the experiment arm the customer lands in (sticky:
policies/experiments.py), the policy (the arm's, else the rule's) and the schedule with dates.
Nothing is written anywhere. The schedule starts when the invoice's case opened (the ledger),
or now for an invoice without a case. The decline class comes from the invoice's last payment
error, classified by the worker's default policy (DUNNING_POLICY), as the opening activity
does before any rule has chosen a policy.

Exit codes: 0 explained; 1 Stripe or the ledger cannot be reached, or the rules file (or a
policy it names) is bad, or a rule cannot decide the invoice; 3 Stripe has no such invoice.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.text import Text

from starter.cli import UserError, command, console, fail, load_settings, redact, user_errors
from starter.cli.support_views import when

if TYPE_CHECKING:
    from models.settings import Settings
    from policies.experiments import Assignment
    from policies.rules import Match, RuleSet
    from policies.schema import DeclineClass

EXIT_NO_INVOICE = 3


def _read_stripe(settings: Settings, invoice_id: str) -> tuple[Any, Any, Any, Any]:
    """(invoice, customer, subscription, last payment error) or exit 3 / UserError; the same
    reads as the opening activity (models/stripe_reads.py)."""
    import stripe

    from models.stripe_reads import get, last_decline, make_stripe_client, object_id

    client = make_stripe_client(settings)
    where = settings.stripe_api_base or "api.stripe.com"
    try:
        invoice = client.v1.invoices.retrieve(invoice_id, params={"expand": ["customer"]})
    except stripe.InvalidRequestError as err:
        if err.http_status == 404:
            fail(f"Stripe has no invoice {invoice_id}", EXIT_NO_INVOICE)
        raise UserError(f"Stripe refused to read {invoice_id}: {err.user_message}") from None
    except stripe.StripeError as err:
        raise UserError(f"cannot read {invoice_id} from Stripe at {where}: {err}") from None
    try:
        customer = invoice.customer
        if isinstance(customer, str):
            customer = client.v1.customers.retrieve(customer)
        sub_id = object_id(get(invoice, "parent", "subscription_details", "subscription"))
        sub_id = sub_id or object_id(get(invoice, "subscription"))
        subscription = client.v1.subscriptions.retrieve(sub_id) if sub_id else None
    except stripe.StripeError as err:  # the invoice exists: its customer or subscription not
        raise UserError(
            f"cannot read {invoice_id}'s records from Stripe at {where}: {err}"
        ) from None
    return invoice, customer, subscription, last_decline(client, invoice)


def _read_ledger(settings: Settings, invoice_id: str, customer_id: str) -> tuple[Any, list[Any]]:
    """(when this invoice's case opened or None, when the customer's other cases opened)."""
    import sqlalchemy as sa

    from models.ledger import Case
    from models.store import Ledger, make_engine

    if settings.database_url.startswith("sqlite:///"):
        path = Path(settings.database_url.removeprefix("sqlite:///"))
        if not path.exists():  # SQLite would create an empty file and then find no tables
            raise UserError(f"no ledger at {path}: start `dunning dev`, or set DATABASE_URL")
    ledger = Ledger(make_engine(settings.database_url))
    query = sa.select(Case.invoice_id, Case.opened_at).where(Case.customer_id == customer_id)
    try:
        with ledger.sessions() as session:
            rows = session.execute(query).all()
    except sa.exc.DBAPIError as err:
        first = (str(err.orig).strip().splitlines() or [type(err.orig).__name__])[0]
        raise UserError(
            f"reading the ledger at {redact(settings.database_url)} failed: {first}"
        ) from None
    finally:
        ledger.engine.dispose()
    opened = next((r.opened_at for r in rows if r.invoice_id == invoice_id), None)
    return opened, [r.opened_at for r in rows if r.invoice_id != invoice_id]


def schedule(policy_name: str, cls: DeclineClass, start: datetime) -> list[dict[str, Any]]:
    """The policy's steps and final action as the engine dates them, before any grace."""
    from policies import engine
    from policies.loader import POLICY_DIR, load_policy

    policy = load_policy(POLICY_DIR / f"{policy_name}.yaml")
    state = engine.CaseState(started_at=start, decline_class=cls)
    rows: list[dict[str, Any]] = []
    for index, step in enumerate(policy.steps):
        charge = engine.step_charges(policy, state, step)
        notify = step.channels
        rows.append(
            {
                "step": index + 1,
                "at": engine.step_due(policy, state, index).isoformat(),
                "charge": charge,
                "template": step.template,
                "channels": list(notify.channels) if notify else [],
                "level": step.level,
            }
        )
        state = engine.after_step(state, index, charge)
    final_at = engine.final_deadline(policy, state).isoformat()
    rows.append({"step": None, "at": final_at, "action": policy.final.action})
    return rows


def _explain(
    invoice_id: str, rules: RuleSet
) -> tuple[Match, Assignment | None, list[dict[str, Any]]]:
    from models.stripe_reads import decline_of, object_id
    from policies.case_facts import aware, facts_from_stripe
    from policies.engine import classify_decline
    from policies.experiments import assign
    from policies.loader import load_policy
    from policies.rules import evaluate

    settings = load_settings()
    invoice, customer, subscription, error = _read_stripe(settings, invoice_id)
    opened, prior = _read_ledger(settings, invoice_id, object_id(customer) or "")
    start = aware(opened) if opened else datetime.now(UTC)
    cls = classify_decline(load_policy(settings.dunning_policy), *decline_of(error))
    match = evaluate(rules, facts_from_stripe(invoice, customer, subscription, cls, start, prior))
    experiment = rules.experiments.get(match.experiment) if match.experiment else None
    # The same customer id as the opening activity hashes (the invoice's customer).
    drawn = assign(experiment, object_id(customer) or "") if experiment else None
    policy = drawn.policy(match.policy) if drawn else match.policy
    return match, drawn, schedule(policy, cls, start)


def as_dict(match: Match, drawn: Assignment | None = None) -> dict[str, Any]:
    return {
        "rule": {"index": match.index, "name": match.name},
        "policy": drawn.policy(match.policy) if drawn else match.policy,
        "experiment": match.experiment,
        "variant": drawn.arm.name if drawn else None,
        "reasons": [
            {"index": m.index, "name": m.name, "reasons": list(m.reasons)} for m in match.misses
        ],
    }


def _render(match: Match, drawn: Assignment | None, rows: list[dict[str, Any]]) -> None:
    name = f" ({match.name})" if match.name else ""
    console.print(Text(f"Rule: rules[{match.index}]{name}"))
    for miss in match.misses:
        label = f"rules[{miss.index}]" + (f" ({miss.name})" if miss.name else "")
        console.print(Text(f"  not {label}: {'; '.join(miss.reasons)}"))
    console.print(Text(f"Policy: {drawn.policy(match.policy) if drawn else match.policy}"))
    console.print(Text(f"Experiment: {match.experiment or 'none'}"))
    if drawn:
        variant = drawn.arm.message_variant
        templates = f"templates {variant}" if variant else "base templates"
        console.print(Text(f"Arm: {drawn.arm.name} ({templates}); {drawn.why}"))
    console.print("Schedule:")
    for row in rows:
        at = when(datetime.fromisoformat(row["at"]))
        if row["step"] is None:
            console.print(Text(f"  {at}  final: {row['action']}"))
            continue
        parts = ["charge" if row["charge"] else "no charge"]
        if row["template"]:
            parts.append(f"{row['template']} by {', '.join(row['channels'])}")
        console.print(Text(f"  {at}  step {row['step']}: {'; '.join(parts)}"))


@command(rich_help_panel="Support")
def explain(
    invoice: str = typer.Argument(..., metavar="INVOICE", help="A Stripe invoice id (in_...)."),
    rules_file: Path | None = typer.Option(
        None,
        "--rules",
        metavar="FILE",
        help="The rules file (default: policies/rules.yaml).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Which rule gives INVOICE its policy, why earlier rules did not, and the schedule.

    A dry run over Stripe and the ledger: nothing is written. Exit codes: 0 explained;
    1 Stripe, the ledger or the rules file is unusable; 3 Stripe has no such invoice.
    """
    from policies.loader import POLICY_DIR
    from policies.rules import RuleError, RulesError, load_rules

    with user_errors():
        try:
            rules = load_rules(rules_file or POLICY_DIR / "rules.yaml")
            match, drawn, rows = _explain(invoice, rules)
        except (RulesError, RuleError) as err:
            raise UserError(f"bad rules file: {err}") from None
    if as_json:
        # Plain stdout, not rich: rich would wrap long lines and break the JSON for scripts.
        body = {**as_dict(match, drawn), "schedule": rows}
        typer.echo(json.dumps(body, indent=2))
    else:
        _render(match, drawn, rows)
