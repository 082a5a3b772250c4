"""`dunning customer show | set`: how a customer is reached (channels, phone, zone, language).

Exit codes: 0 done; 1 the ledger or a setting is wrong, or Temporal is unreachable while
running cases must hear of an opt-out (the preferences are stored: run the command again);
2 a value was refused (unknown channel, zone or locale, a number that is not one).
"""

from __future__ import annotations

import asyncio
import json

import typer

from starter.cli import app, console, fail, ledger_errors, load_settings, user_errors
from starter.cli.help import PlainCommand, PlainGroup

EXIT_REFUSED = 2

customer_app = typer.Typer(
    cls=PlainGroup,
    rich_markup_mode=None,
    no_args_is_help=True,
    help="How a customer is reached: preferred channels, phone, time zone, language, opt-outs.",
)
app.add_typer(customer_app, name="customer", rich_help_panel="Support")


def _show(view: object, as_json: bool) -> None:
    from starter.support.preferences import PreferencesView

    assert isinstance(view, PreferencesView)
    if as_json:
        print(json.dumps(view.model_dump(), indent=2))
        return
    console.print(f"Customer {view.customer_id}")
    console.print(f"  channels:  {', '.join(view.channels) or '(the policy’s)'}")
    console.print(f"  phone:     {view.phone or '(from Stripe)'}")
    console.print(f"  time zone: {view.timezone or '(from Stripe’s address country)'}")
    console.print(f"  locale:    {view.locale or '(from Stripe’s preferred_locales)'}")
    console.print(f"  opted out: {', '.join(view.opted_out) or 'none'}")
    if view.cases_told:
        console.print(f"  running cases told: {', '.join(view.cases_told)}")


@customer_app.command("show", cls=PlainCommand)
def show(
    customer: str = typer.Argument(..., metavar="CUSTOMER", help="Stripe customer id (cus_...)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print what support or the customer set (empty fields come from Stripe or the policy)."""
    with user_errors():
        settings = load_settings()
    from models.store import Ledger, make_engine
    from starter.support.preferences import current_preferences

    ledger = Ledger(make_engine(settings.database_url))
    try:
        with user_errors(), ledger_errors(settings.database_url):
            view = current_preferences(ledger, customer)
    finally:
        ledger.engine.dispose()
    _show(view, as_json)


@customer_app.command("set", cls=PlainCommand)
def set_(
    customer: str = typer.Argument(..., metavar="CUSTOMER", help="Stripe customer id (cus_...)."),
    by: str = typer.Option(..., "--by", metavar="NAME", help="Who changes them (audited)."),
    channels: str = typer.Option(
        None, metavar="LIST", help="Preferred order: sms,email ('' clears)."
    ),
    phone: str = typer.Option(None, metavar="E164", help="Phone in international format, +34…"),
    tz: str = typer.Option(None, "--tz", metavar="ZONE", help="IANA time zone: Europe/Madrid."),
    locale: str = typer.Option(None, metavar="TAG", help="Language: es, es-MX, en."),
    opt_out: list[str] = typer.Option([], metavar="CHANNEL", help="Stop using a channel."),
    opt_in: list[str] = typer.Option([], metavar="CHANNEL", help="Use a channel again."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Change how CUSTOMER is reached; new cases use it, and opt-outs reach running cases now.

    Example: dunning customer set cus_123 --channels email,sms --phone +34600111222
    --tz Europe/Madrid --locale es --by alice
    """
    from models.preferences import PreferenceError
    from starter.support.preferences import CasesNotTold, PreferencesChange, validated

    change = PreferencesChange(
        channels=channels, phone=phone, timezone=tz, locale=locale,
        opt_out=opt_out, opt_in=opt_in, by=by,
    )  # fmt: skip
    try:
        validated(change)
    except PreferenceError as err:
        fail(str(err), EXIT_REFUSED)
    with user_errors():
        settings = load_settings()
    try:
        with user_errors(settings.temporal_address):
            view = asyncio.run(_change(settings, customer, change))
    except CasesNotTold as err:
        fail(
            f"stored, but Temporal at {settings.temporal_address} is unreachable: running cases"
            f" {', '.join(err.invoices)} were not told; run the same command again"
        )
    _show(view, as_json)


async def _change(settings: object, customer: str, change: object) -> object:
    from models.settings import Settings
    from models.store import Ledger, make_engine
    from models.temporal import connect
    from starter.support.preferences import PreferencesChange, change_preferences

    assert isinstance(settings, Settings) and isinstance(change, PreferencesChange)
    ledger = Ledger(make_engine(settings.database_url))
    try:
        client = None
        if change.opt_out or change.opt_in:
            try:
                client = await asyncio.wait_for(connect(settings), 10)
            except Exception:  # unreachable: change_preferences says whether it mattered
                client = None
        return await change_preferences(ledger, client, customer, change)
    finally:
        ledger.engine.dispose()
