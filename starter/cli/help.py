"""Plain `--help` pages: names and words, no type placeholders.

Typer's own help shows `<bool>` beside every flag, `<str>` beside arguments and `{INVOICE}` in
the usage line; support staff read these pages, so commands render through click's plain
formatter instead, with each option's metavar (`N`, `NAME`, `TEXT`) and commands grouped by
their panel (Run, Try it, Support, Reports).

Typer ships its own copy of click (typer._click), so the parameter classes are typer's.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

# Long enough for the first sentence of every command's docstring, on one line.
SHORT_HELP_LIMIT = 90


def _argument_label(argument: TyperArgument) -> str:
    name = argument.metavar or (argument.name or "").upper()
    return name if argument.required else f"[{name}]"


class PlainCommand(TyperCommand):
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        # Options are summed up by [OPTIONS]; arguments are named as their metavar says.
        pieces += [_argument_label(p) for p in self.get_params(ctx) if isinstance(p, TyperArgument)]
        return pieces

    def format_options(self, ctx: Any, formatter: Any) -> None:
        params = self.get_params(ctx)
        arguments = [
            (_argument_label(p), getattr(p, "help", None) or "")
            for p in params
            if isinstance(p, TyperArgument)
        ]
        options = [
            record
            for p in params
            if isinstance(p, TyperOption) and (record := p.get_help_record(ctx)) is not None
        ]
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        if options:
            with formatter.section("Options"):
                formatter.write_dl(options)


class PlainGroup(TyperGroup):
    def format_commands(self, ctx: Any, formatter: Any) -> None:
        panels: dict[str, list[tuple[str, str]]] = {}
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            panel = getattr(command, "rich_help_panel", None) or "Commands"
            short = command.get_short_help_str(limit=SHORT_HELP_LIMIT)
            panels.setdefault(panel, []).append((name, short))
        for panel, rows in panels.items():
            with formatter.section(panel):
                formatter.write_dl(rows)
