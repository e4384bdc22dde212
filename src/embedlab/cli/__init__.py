"""The ``embedlab`` command line. Each command lives in its own module and only parses arguments.

Errors embedlab raises on purpose are printed as one clear line (no traceback) with exit code 2;
Ctrl-C exits with 130.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from embedlab.cli.help import HelpGroup
from embedlab.errors import EmbedlabError

app = typer.Typer(
    name="embedlab",
    cls=HelpGroup,
    help="Measure, plan and run text-embedding models on your own hardware.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Measure, plan and run text-embedding models on your own hardware."""


# Each module registers its commands on ``app`` with a ``register(app)`` function.
COMMAND_MODULES: tuple[str, ...] = ("embed", "eval", "inspect", "compare", "bench", "serve", "plan")

for _name in COMMAND_MODULES:
    importlib.import_module(f"embedlab.cli.{_name}").register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``embedlab`` script."""
    err = Console(stderr=True)
    try:
        app(args=argv, prog_name="embedlab")
    except EmbedlabError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
