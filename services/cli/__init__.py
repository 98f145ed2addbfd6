"""The ``palavra`` command line: one command per module, each a thin layer over an importable function."""
