"""Every CLI command, one module each; importing this package registers them all."""

from services.cli.commands import models_cmd  # noqa: F401
