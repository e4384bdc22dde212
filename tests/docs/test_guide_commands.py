"""Every ``embedlab ...`` command line in the guides' code blocks parses with the real CLI, so they cannot drift.

The pages: docs/guide.md, and docs/guide.zh-CN.md and docs/integrations.md when they exist. In each fenced
shell block (```bash, ```sh, ```shell, ```console; a ```text block holds output, whose lines may start
with ``embedlab`` too), a line that starts with ``embedlab `` (after indentation) is a command; a trailing
backslash joins the next line to it, and a ``#`` comment is dropped as the shell drops it. Each command is split
with :func:`shlex.split` and resolved level by level (``embedlab`` → ``eval`` → ``sts``) with click's own
``make_context``: an unknown command or option, a value of the wrong type or a missing required option
fails as it would in the shell. Nothing is run.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from typer.core import TyperGroup
from typer.exceptions import Exit, TyperException
from typer.main import get_command

from embedlab.cli import app

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = ("guide.md", "guide.zh-CN.md", "integrations.md")
FENCE = re.compile(r"^\s*(```|~~~)\s*(\w*)")
SHELL_BLOCKS = frozenset({"bash", "sh", "shell", "console"})


def code_block_commands(markdown: str) -> list[str]:
    """The ``embedlab`` command lines inside the fenced shell blocks of ``markdown``, continuations joined."""
    commands: list[str] = []
    block: str | None = None  # the open block's language ("" for none); None outside any block
    pending: str | None = None
    for line in markdown.splitlines():
        fence = FENCE.match(line)
        if fence:
            block, pending = (fence[2].lower() if block is None else None), None
            continue
        if block not in SHELL_BLOCKS:
            continue
        text = line.strip()
        if pending is None and not text.startswith("embedlab "):
            continue
        joined = text if pending is None else f"{pending} {text}"
        if joined.endswith("\\"):
            pending = joined[:-1].rstrip()
        else:
            commands.append(joined)
            pending = None
    return commands


class CommandLineError(Exception):
    """A command line the CLI would refuse (the shell would print a usage error and exit 2)."""


def parse_command_line(line: str) -> Any:
    """Resolve ``line`` (``embedlab ...``) down to the command it names, parsing every option; run nothing.

    Returns the innermost (typer-vendored click) context: its ``command_path`` and parsed ``params``; None
    for a ``--help`` line (it stops parsing as it does in the shell).

    Raises:
        CommandLineError: an unknown command or option, a bad value, a missing required option or subcommand.
    """
    argv = shlex.split(line, comments=True)
    if not argv or argv[0] != "embedlab":
        raise CommandLineError(f"not an embedlab command: {line!r}")
    command = get_command(app)
    try:
        context = command.make_context("embedlab", argv[1:], resilient_parsing=False)
        while isinstance(command, TyperGroup):
            rest = [*context._protected_args, *context.args]  # what the group's own invoke reads
            if not rest:
                if not command.invoke_without_command:
                    raise CommandLineError(f"{context.command_path} needs a subcommand")
                return context
            name, sub, rest = command.resolve_command(context, rest)
            assert name is not None and sub is not None
            command, context = sub, sub.make_context(name, rest, parent=context)
    except Exit as exit_:  # --help exits 0 before the rest is parsed: valid
        if exit_.exit_code != 0:
            raise CommandLineError(f"{line!r} exits with code {exit_.exit_code}") from exit_
        return None
    except TyperException as exc:  # click's UsageError and its kin: what the shell would print
        raise CommandLineError(f"{line!r}: {exc.format_message()}") from exc
    return context


def guide_commands() -> list[tuple[str, str]]:
    """(page, command line) for every command of every page that exists."""
    found = []
    for page in PAGES:
        path = DOCS / page
        if path.exists():
            found.extend((page, command) for command in code_block_commands(path.read_text(encoding="utf-8")))
    return found


COMMANDS = guide_commands()


def test_the_guide_exists_and_shows_commands_of_every_kind() -> None:
    commands = [command for page, command in COMMANDS if page == "guide.md"]
    assert len(commands) >= 15
    names = {shlex.split(command)[1] for command in commands}
    assert {"inspect", "plan", "bench", "eval", "compare"} <= names


@pytest.mark.parametrize(("page", "line"), COMMANDS, ids=[f"{page}: {line[:70]}" for page, line in COMMANDS])
def test_every_command_in_the_guides_parses(page: str, line: str) -> None:
    parse_command_line(line)


def test_a_parsed_command_holds_the_values_given() -> None:
    context = parse_command_line(
        'embedlab eval sts --data $DATA/stsbenchmark/sts-test.csv --compare "dimensions=384;dimensions=96"'
    )
    assert context.command_path == "embedlab eval sts"
    assert str(context.params["data"]) == "$DATA/stsbenchmark/sts-test.csv"
    assert context.params["compare"] == ["dimensions=384;dimensions=96"]
    assert parse_command_line("embedlab bench --batch 1,8 --seq 16  # a comment").params["batch"] == "1,8"
    assert parse_command_line("embedlab bench compare a.json b.json").command_path == "embedlab bench compare"
    assert parse_command_line("embedlab eval sts --help") is None


@pytest.mark.parametrize(
    "line",
    [
        "embedlab bench --batchsize 8",  # unknown option
        "embedlab inspect --batch eight",  # not an int
        "embedlab bench --repeat 0",  # below the option's minimum
        "embedlab eval sts --limit 5",  # --data is required
        "embedlab plan --text-field text",  # --data is required
        "embedlab evaluate sts --data x.csv",  # unknown command
        "embedlab eval",  # a group without its subcommand
        "embedlab inspect extra-argument",  # an argument the command does not take
        "python -m embedlab inspect",  # not an embedlab command line
    ],
)
def test_a_command_the_cli_refuses_fails(line: str) -> None:
    with pytest.raises(CommandLineError):
        parse_command_line(line)


def test_commands_are_read_from_shell_blocks_only_with_continuations_joined() -> None:
    markdown = "\n".join(
        [
            "Run embedlab inspect in prose: not a command.",
            "```bash",
            "embedlab plan --data $DATA/corpus.jsonl --text-field text \\",
            "    --sample 128   # keep it short",
            "python benchmarks/serve_load.py --rounds 1",
            "  embedlab inspect -b 8",
            "```",
            "embedlab eval sts outside any block",
            "```text",
            "embedlab plan: sentence-transformers/all-MiniLM-L6-v2 on corpus.jsonl",
            "```",
            "```console",
            "embedlab bench --seq 16",
            "```",
        ]
    )
    assert code_block_commands(markdown) == [
        "embedlab plan --data $DATA/corpus.jsonl --text-field text --sample 128   # keep it short",
        "embedlab inspect -b 8",
        "embedlab bench --seq 16",
    ]
