"""`palavra X` imports only the command modules that register X: the table that says which must be whole."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import typer

from services.cli.app import app
from services.cli.commands import MODULES, load_commands
from tests.services.jobs_helpers import REPO_ROOT


def _modules(command: Any) -> set[str]:
    if hasattr(command, "commands"):  # a group: the modules of all its subcommands
        return set().union(*(_modules(sub) for sub in command.commands.values()))
    return {command.callback.__module__.rsplit(".", 1)[1]}


def test_cli_each_command_names_every_module_that_registers_it() -> None:
    load_commands()
    registered = {name: _modules(command) for name, command in typer.main.get_command(app).commands.items()}
    assert registered == {name: set(modules) for name, modules in MODULES.items()}


def test_cli_a_command_imports_only_what_it_needs() -> None:
    """`palavra models list` starts without scipy, torch or the served word vectors (`palavra --help` has all)."""
    probe = (
        "import sys\n"
        "from services.cli.main import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ['scipy.stats', 'torch', 'pipelines.serving.served_vectors', 'services.cli.commands.analogy_cmd']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )

    def imported(*argv: str) -> str:
        run = subprocess.run(
            [sys.executable, "-c", probe, *argv], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
        return run.stdout.strip().splitlines()[-1]

    assert imported("models", "--help") == "[]"
    assert "services.cli.commands.analogy_cmd" in imported("--help")


def test_cli_ctrl_c_while_still_importing_is_one_line_and_exit_130() -> None:
    """Ctrl-C in a command's first half second (its modules still importing) printed a KeyboardInterrupt
    traceback from inside an import; a moment later it printed `interrupted` (a hostile probe)."""
    probe = (
        "import sys\n"
        "class Interrupt:\n"  # Ctrl-C arriving while the command's module is imported, every time
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'services.cli.commands.models_cmd':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())\n"
        "from services.cli.main import main\n"
        "main(['models', 'list'])\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert (run.returncode, run.stderr) == (130, "interrupted\n")
