"""Every CLI command, one module each; importing this package registers them all."""

from services.cli.commands import data_cmd, models_cmd, preprocess_cmd, serve_cmd  # noqa: F401
from services.cli.commands import jobs_cmd, worker_cmd  # noqa: F401
