"""What every training run has: its config from TOML and ``section.key=value`` overrides (``config_io``), grids of
runs for comparisons (``grid``) and progress reports to whoever watches (``progress``)."""
