"""Running palavra's CLI in-process in tests: the exit code, stdout and stderr of one command."""

from __future__ import annotations

import pytest

from services.cli.main import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    return int(info.value.code or 0), out, err
