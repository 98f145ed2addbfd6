"""Entry point of the ``palavra`` console script: runs the typer app and turns palavra errors into exit code 2.

Everything this module needs is imported inside :func:`main`, under its Ctrl-C handler: an interrupt while the
CLI is still importing (its first half second) prints ``interrupted`` and exits 130 like one a moment later, not
a traceback from inside an import.
"""

from __future__ import annotations

import sys


def _usage_message(exc: BaseException) -> str:
    """A usage error in one line (click's own display is a usage block, a hint line and the message): the message,
    then where the command's options are listed."""
    fmt = getattr(exc, "format_message", None)
    message = " ".join((fmt() if callable(fmt) else str(exc)).split())
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None)
    return f"{message} (see '{path} --help')" if path else message


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; a :class:`PalavraError` prints one line naming what to fix and exits with code 2, Ctrl-C
    ``interrupted`` and 130."""
    try:
        _main(argv)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        sys.exit(130)


def _main(argv: list[str] | None) -> None:
    import logging

    import click
    import typer

    from models.errors import DiskFull, PalavraError
    from services.cli.app import app
    from services.cli.commands import load_commands
    from services.cli.output import warn

    # typer >= 0.22 carries its own copy of click (typer._click) with its own exception classes; older typer raises
    # click's. Both are caught so that usage errors exit with code 2 and a one-line message either way.
    exits: tuple[type[BaseException], ...] = (click.exceptions.Exit, typer.Exit)
    aborts: tuple[type[BaseException], ...] = (click.exceptions.Abort, typer.Abort)
    usage: tuple[type[BaseException], ...] = (
        click.ClickException,
        *([typer.exceptions.TyperException] if hasattr(typer.exceptions, "TyperException") else []),
    )
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    load_commands(sys.argv[1:] if argv is None else argv)
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="palavra", standalone_mode=False)
    except exits as exc:
        sys.exit(getattr(exc, "exit_code", 0))
    except usage as exc:
        show = getattr(exc, "show", None)
        if type(exc).__name__ == "NoArgsIsHelpError" and callable(show):
            show()  # a group with no command (`palavra models`): its help is the answer, not an error line
        else:
            warn(f"error: {_usage_message(exc)}")
        sys.exit(getattr(exc, "exit_code", 2))
    except aborts:
        warn("aborted")
        sys.exit(130)
    except PalavraError as exc:
        warn(f"error: {exc.detail}")
        sys.exit(2)
    except OSError as exc:  # the system refused a read or a write: one line naming it, never a traceback
        full = DiskFull.from_os_error(exc)
        where = f": {exc.filename}" if exc.filename else ""
        warn(f"error: {full.detail}" if full is not None else f"error: {exc.strerror or exc}{where}")
        sys.exit(2)
    if result == 130:  # typer turns Ctrl-C into exit code 130; only a run that finished registers a model
        warn("interrupted")
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    main()
