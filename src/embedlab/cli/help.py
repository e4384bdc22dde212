"""The ``--help`` pages of every embedlab command: option names and defaults whole at any width, 80 columns included.

Typer's own rich layout puts names, negative names, short names, types and descriptions in seven table columns
that share the width; at 80 columns rich shrinks them all and cuts option names (``--target-laten…``) and
defaults (``all-MiniLM-L6-v…``). Typer 0.29 also labels every flag ``<bool>`` there, though a flag takes no value.

This layout has two columns, like click's: the names (with the value type, never for a flag) and the description.
Only descriptions wrap, at spaces, so a name, a type or a default is never split; a name longer than its column
gets a line of its own and its description starts on the next line. Rows come from each parameter's
``get_help_record`` (click's API, which typer fills with ``[default: ...]`` and ``[required]``), so the content is
typer's and only the layout is ours.

Commands and groups opt in with ``cls=HelpCommand`` / ``cls=HelpGroup``; a test checks that every command does.
"""

from __future__ import annotations

import inspect
import os
import re
from typing import Any

import typer
from rich.console import Console, Group
from rich.padding import Padding
from rich.panel import Panel
from rich.text import Text
from typer.core import TyperCommand, TyperGroup

GAP = 2  # spaces between the name column and the description column
NAME_SHARE = 0.4  # the name column takes at most this share of the panel's inner width
MIN_DESCRIPTION = 24  # below this many columns for descriptions, every description goes under its name
PANEL_EDGES = 4  # a panel's border and padding: two columns each side

STYLE_NAME = "bold cyan"
STYLE_TYPE = "yellow"
STYLE_EXTRA = "dim"
STYLE_REQUIRED = "bold red"


def _help_console() -> Console:
    """A console of the terminal's width: ``$COLUMNS`` (rich reads it), typer's ``$TERMINAL_WIDTH``, else 80 off-tty."""
    width = os.environ.get("TERMINAL_WIDTH")
    return Console(width=int(width) if width and width.isdigit() else None, highlight=False)


def _paragraphs(text: str) -> list[str]:
    """``text`` dedented and cut at ``\\f``, in paragraphs; single line breaks joined unless marked ``\\b``."""
    text = inspect.cleandoc(text).partition("\f")[0]
    paragraphs = []
    for block in text.split("\n\n"):
        if block.startswith("\b"):
            paragraphs.append(block.lstrip("\b\n"))
        elif block.strip():
            paragraphs.append(" ".join(line.strip() for line in block.splitlines()))
    return paragraphs


def _name_text(name: str, required: bool | None) -> Text:
    """An option's names and type: ``-d, --data <path>``, with a ``*`` column when ``required`` is not None."""
    text = Text()
    if required is not None:
        text.append("* " if required else "  ", style=STYLE_REQUIRED)
    text.append(name, style=STYLE_NAME)
    text.highlight_regex(r"<[^>]+>(\.\.\.)?", STYLE_TYPE)
    return text


def _description_text(help_text: str) -> tuple[Text, Text]:
    """A description split into its prose and its trailing ``[default: ...; required]`` (dimmed; may be empty)."""
    match = re.fullmatch(r"(?s)(.*?)\s*(\[[^\[\]]*\])", help_text)
    if match is None:
        return Text(help_text), Text()
    return Text(match[1]), Text(match[2], style=STYLE_EXTRA)


Row = tuple[Text, Text, Text]  # name, description, extra ("[default: ...]"; may be empty)


def layout_rows(rows: list[Row], inner_width: int, console: Console) -> list[Text]:
    """Lay out (name, description, extra) rows in ``inner_width`` columns; no name or extra is wrapped or cut.

    The name column is as wide as the longest name that fits in ``NAME_SHARE`` of the width; a longer name takes a
    line of its own (folded only if it is wider than the whole panel) and its description starts below it.
    Descriptions wrap at spaces; the extra follows the description's last line, or takes the next line whole
    (starting left of the description column if it is wider than that column).

    Returns:
        the lines, each at most ``inner_width`` cells wide.
    """
    limit = max(1, int(inner_width * NAME_SHARE))
    name_width = max((name.cell_len for name, _, _ in rows if name.cell_len <= limit), default=0)
    indent = name_width + GAP
    if inner_width - indent < MIN_DESCRIPTION:  # too narrow for two columns: descriptions under the names
        name_width, indent = 0, min(4, inner_width // 4)
    lines: list[Text] = []
    width = inner_width - indent
    for name, description, extra in rows:
        wrapped = list(description.wrap(console, width)) if description.plain else []
        tail: list[Text] = []  # an extra wider than the description column: moved left until it fits whole
        if extra.plain:
            if wrapped and wrapped[-1].cell_len + GAP + extra.cell_len <= width:
                wrapped[-1] = Text.assemble(wrapped[-1], " " * GAP, extra)
            elif extra.cell_len <= width:
                wrapped.append(extra)
            else:
                start = max(0, inner_width - extra.cell_len)
                tail = [Text(" " * start) + line for line in extra.wrap(console, inner_width - start, overflow="fold")]
        if 0 < name.cell_len <= name_width:
            first = name.copy()
            if wrapped:
                first.append(" " * (indent - name.cell_len))
                first.append_text(wrapped.pop(0))
            lines.append(first)
        else:
            lines.extend(name.wrap(console, inner_width, overflow="fold"))
        lines.extend(Text(" " * indent) + line for line in wrapped)
        lines.extend(tail)
    return lines


def _panel(title: str, rows: list[Row], console: Console) -> Panel:
    inner = max(1, console.width - PANEL_EDGES)
    return Panel(Group(*layout_rows(rows, inner, console)), title=title, title_align="left", border_style="dim")


def _parameter_panels(command: TyperCommand | TyperGroup, ctx: Any, console: Console) -> list[Panel]:
    """One panel per help panel name (Arguments, Options, or a parameter's ``rich_help_panel``), in first-seen order."""
    grouped: dict[str, list[tuple[str, str, bool]]] = {}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        default_panel = "Arguments" if param.param_type_name == "argument" else "Options"
        panel = getattr(param, "rich_help_panel", None) or default_panel
        grouped.setdefault(panel, []).append((record[0], record[1], bool(param.required)))
    order = sorted(grouped, key=lambda title: {"Arguments": 0, "Options": 1}.get(title, 2))
    panels = []
    for title in order:
        entries = grouped[title]
        star = any(required for _, _, required in entries)
        rows: list[Row] = [
            (_name_text(name, required if star else None), *_description_text(text)) for name, text, required in entries
        ]
        panels.append(_panel(title, rows, console))
    return panels


def _command_panel(group: TyperGroup, ctx: Any, console: Console) -> Panel | None:
    rows = []
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        if sub is None or sub.hidden:
            continue
        summary = _paragraphs(sub.short_help or sub.help or "")
        rows.append((Text(name, style=STYLE_NAME), Text(summary[0] if summary else ""), Text()))
    return _panel("Commands", rows, console) if rows else None


def render_help(command: TyperCommand | TyperGroup, ctx: Any) -> str:
    """The help page of ``command`` (a click command or group) in ``ctx``, as the terminal should show it.

    ANSI styles are included when stdout is a terminal; click's ``echo`` strips them otherwise.
    """
    console = _help_console()
    with console.capture() as captured:
        console.print(Padding(Text(command.get_usage(ctx).rstrip(), style="bold"), 1))
        paragraphs = _paragraphs(command.help or "")
        if command.deprecated:
            paragraphs.insert(0, "(deprecated)")
        for i, paragraph in enumerate(paragraphs):
            console.print(Padding(Text(paragraph, style="bold" if i == 0 else ""), (0, 1, 1, 1)))
        for panel in _parameter_panels(command, ctx, console):
            console.print(panel)
        commands = _command_panel(command, ctx, console) if isinstance(command, TyperGroup) else None
        if commands is not None:
            console.print(commands)
        for paragraph in _paragraphs(command.epilog or ""):
            console.print(Padding(Text(paragraph), (1, 1, 0, 1)))
    return captured.get()


class HelpCommand(TyperCommand):
    """A typer command whose ``--help`` uses :func:`render_help`."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        formatter.write(render_help(self, ctx))


class HelpGroup(TyperGroup):
    """A typer group whose ``--help`` uses :func:`render_help`."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        formatter.write(render_help(self, ctx))

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """As typer's; a group run without arguments prints its help itself before typer's no-args error.

        Typer's rich error handler prints nothing for that error: typer's own layout prints the page as a side
        effect of rendering it, while :meth:`format_help` returns it, as click expects. Exit code 2 stays.
        """
        if not args and self.no_args_is_help and not ctx.resilient_parsing and self.rich_markup_mode is not None:
            typer.echo(ctx.get_help(), color=ctx.color)
        return super().parse_args(ctx, args)
