"""Entry point of the ``palavra`` console script: runs the typer app and turns palavra errors into exit code 2."""

from __future__ import annotations

import logging
import sys

import click
import typer

from models.errors import PalavraError
from services.cli import commands  # noqa: F401  (registers every command)
from services.cli.app import app
from services.cli.output import warn


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a :class:`PalavraError` prints one line naming what to fix and exits with code 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="palavra", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        warn("aborted")
        sys.exit(130)
    except PalavraError as exc:
        warn(f"error: {exc.detail}")
        sys.exit(2)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
