"""The `dunning` command line: `dunning --help`.

Each command module adds its commands to `app` when imported, so a new group of commands is
one import line at the bottom of this file. Heavy imports (temporalio, stripe, uvicorn) stay
inside the commands so that `dunning --help` is instant.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console

from starter.cli.help import PlainCommand, PlainGroup

if TYPE_CHECKING:
    from models.settings import Settings

app = typer.Typer(
    name="dunning",
    help="Durable dunning for Stripe Billing on Temporal.",
    no_args_is_help=True,
    add_completion=False,
    cls=PlainGroup,
    # Plain help pages (starter/cli/help.py): typer's rich pages show type placeholders.
    rich_markup_mode=None,
    # Locals of a crashing frame can hold API keys and webhook secrets: never print them.
    pretty_exceptions_show_locals=False,
)


def command(name: str | None = None, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """`app.command` with the plain help page; every command module registers through it."""
    return app.command(name, cls=PlainCommand, **kwargs)


console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


class UserError(Exception):
    """A mistake the user can fix (unreachable server, bad setting, bad file): one line."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear line and exit; usage errors use code 2 as click does."""
    err_console.print(f"[bold red]Error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


_CONNECT_REASONS = (
    ("refused", "connection refused"),
    ("lookup address", "unknown host"),
    ("dns", "unknown host"),
    ("timed out", "timed out"),
    ("deadline", "timed out"),
    ("tls", "TLS error"),
    ("invalid", "invalid address"),
)


def temporal_unreachable(err: BaseException, address: str) -> UserError | None:
    """The SDK reports a failed connection as RuntimeError("Failed client connect: ...")."""
    text = str(err)
    if not text.startswith("Failed client connect"):
        return None
    lowered = text.lower()
    # The underlying transport error is a long Rust debug string; name its gist only.
    reason = next(
        (label for needle, label in _CONNECT_REASONS if needle in lowered), "connection failed"
    )
    return UserError(
        f"cannot reach Temporal at {address} ({reason}); start it with `dunning dev`"
        " (or `temporal server start-dev`) or set TEMPORAL_ADDRESS"
    )


def load_settings() -> Settings:
    """Fresh settings: in-process callers (tests, `dunning dev`) may change the environment."""
    from pydantic import ValidationError

    from models.settings import get_settings

    get_settings.cache_clear()
    try:
        return get_settings()
    except ValidationError as err:
        first = err.errors()[0]
        name = "_".join(str(part) for part in first["loc"]).upper()
        raise UserError(f"setting {name} (environment or .env): {first['msg']}") from None


def redact(url: str) -> str:
    """A database URL fit for printing: the password replaced by ***."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL: keep only the scheme
        return url.split("://", 1)[0] + "://…"


@contextmanager
def user_errors(temporal_address: str | None = None) -> Iterator[None]:
    """Turn the errors a user can fix into one line and exit code 1; bugs keep tracebacks."""
    from models.settings import EncryptionConfigError
    from policies.loader import PolicyError

    try:
        yield
    except UserError as err:
        fail(str(err), err.code)
    except EncryptionConfigError as err:
        fail(str(err))
    except PolicyError as err:
        fail(f"bad policy file: {err}")
    except RuntimeError as err:
        mapped = temporal_unreachable(err, temporal_address or "TEMPORAL_ADDRESS")
        if mapped is None:
            raise
        fail(str(mapped))


@contextmanager
def ledger_errors(database_url: str) -> Iterator[None]:
    """A ledger that cannot be read, as one line naming it (without its password)."""
    try:
        yield
    except Exception as err:  # driver errors vary; the first line says enough
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise UserError(f"ledger {redact(database_url)}: {first}") from None


def main() -> NoReturn:
    """The `dunning` entry point: run the command, then exit with its code, always."""
    from models.temporal import exit_process

    try:
        app()
        code = 0
    except SystemExit as done:  # click ends every command (even a successful one) here
        code = _exit_code(done.code)
    except Exception:
        # A bug: keep the traceback (typer's hook hides locals, see `app` above).
        sys.excepthook(*sys.exc_info())
        code = 1
    # Not a normal interpreter exit: the Temporal SDK's runtime threads can abort it with
    # "Fatal Python error: PyGILState_Release" (exit 134) after the command has printed its
    # answer (https://github.com/temporalio/sdk-python/issues/300). Scripts rely on our codes.
    exit_process(code)


def _exit_code(code: object) -> int:
    """SystemExit's code as a process status, as the interpreter would turn it."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


# Command modules (each adds its commands to `app`): one name per module.
from starter.cli import (  # noqa: E402, F401
    customers,
    explain,
    ops,
    privacy,
    report,
    schedules,
    simulate,
    stack,
    support,
)
