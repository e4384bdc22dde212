"""Every command's ``--help`` at 80 columns (and narrower) shows every option name, type and default whole."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import pytest
from rich.cells import cell_len
from typer.main import get_command
from typer.testing import CliRunner

from embedlab.cli import app
from embedlab.cli.help import HelpCommand, HelpGroup


def _walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        found.extend(_walk(sub, (*path, name)))
    return found


COMMANDS = _walk(get_command(app))


def test_the_walk_finds_every_command() -> None:
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "embed", "plan", "serve", "inspect", "bench", "bench compare", "eval", "eval sts"} <= paths
    assert "eval retrieval" in paths


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "embedlab" for p, _ in COMMANDS])
def test_every_command_uses_the_whole_name_layout(path: tuple[str, ...], command: Any) -> None:
    assert isinstance(command, HelpGroup if hasattr(command, "commands") else HelpCommand)


def check_help(text: str, command: Any, columns: int) -> None:
    """Assert that ``text``, the help of ``command`` rendered at ``columns``, shows every parameter whole."""
    lines = text.splitlines()
    too_wide = [line for line in lines if cell_len(line) > columns]
    assert too_wide == [], f"lines wider than {columns} columns"
    assert "<bool>" not in text and "…" not in text
    words = set(text.split())
    ctx = command.make_context("embedlab", [], resilient_parsing=True)
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        names, description = record
        for opt in (*param.opts, *param.secondary_opts):
            if opt.startswith("-"):
                assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", text), f"{opt} is not whole"
        assert any(names in line for line in lines), f"{names!r} is not on one line"
        extra = re.search(r"\[[^\[\]]*\]$", description)
        if extra:  # [default: ...; required]
            assert any(extra[0] in line for line in lines), f"{extra[0]!r} of {names} is not on one line"
            description = description[: extra.start()]
        cut = [word for word in description.split() if word not in words]
        assert cut == [], f"words of the help of {names} are cut"
    for name, sub in getattr(command, "commands", {}).items():
        if not sub.hidden:
            assert re.search(rf"│ {re.escape(name)} ", text), f"command {name} is missing"


@pytest.mark.parametrize("columns", [80, 60, 120])
@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) or "embedlab" for p, _ in COMMANDS])
def test_help_shows_every_option_whole(path: tuple[str, ...], command: Any, columns: int) -> None:
    result = CliRunner().invoke(
        app, [*path, "--help"], prog_name="embedlab", env={"COLUMNS": str(columns), "TERMINAL_WIDTH": None}
    )
    assert result.exit_code == 0, result.output
    assert result.output.lstrip().startswith(f"Usage: embedlab {' '.join(path)}".rstrip())
    check_help(result.output, command, columns)


def test_plan_help_through_a_pipe_at_80_columns() -> None:
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("TERMINAL_WIDTH", None)
    done = subprocess.run(
        [sys.executable, "-m", "embedlab", "plan", "--help"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b[" not in done.stdout  # no colour codes into a pipe
    check_help(done.stdout, dict(COMMANDS)[("plan",)], 80)
    for name in ("--target-latency", "--chunk-threshold", "--max-quality-loss", "all-MiniLM-L6-v2)"):
        assert name in done.stdout.split()


@pytest.mark.parametrize("path", [(), ("eval",)], ids=["embedlab", "eval"])
def test_a_group_run_without_arguments_prints_its_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, list(path), prog_name="embedlab", env={"COLUMNS": "80", "TERMINAL_WIDTH": None})
    assert result.exit_code == 2  # typer's: no command given
    assert result.output.count("Usage: embedlab") == 1 and "─ Commands ─" in result.output
    check_help(result.output, dict(COMMANDS)[path], 80)
