"""TEI XML (as in ELTeC) -> plain text: the ``<head>``, ``<p>`` and ``<l>`` elements of ``<text>``, one per line."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from models.errors import DownloadError

_BLOCKS = frozenset({"head", "p", "l"})


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def tei_to_text(source: Path, target: Path) -> int:
    """Write the text blocks of the TEI file ``source`` to ``target``, one per line; returns the lines written.

    Whitespace inside a block is collapsed to single spaces; a block nested in another (a ``<p>`` in a
    ``<note>`` in a ``<p>``) stays part of the outer block's line.

    Raises:
        DownloadError: the file is not well-formed XML.
    """
    lines = 0
    in_text = 0
    open_block: ET.Element | None = None
    try:
        with target.open("w", encoding="utf-8", newline="\n") as out:
            for event, elem in ET.iterparse(source, events=("start", "end")):  # noqa: S314
                name = _local(elem.tag)
                if name == "text":
                    in_text += 1 if event == "start" else -1
                elif in_text and name in _BLOCKS:
                    if event == "start" and open_block is None:
                        open_block = elem
                    elif event == "end" and open_block is not None and elem is open_block:
                        line = " ".join("".join(open_block.itertext()).split())
                        if line:
                            out.write(line + "\n")
                            lines += 1
                        open_block = None
                if event == "end" and open_block is None and name != "text":
                    elem.clear()
    except ET.ParseError as exc:
        raise DownloadError(
            f"{source}: not well-formed TEI XML ({exc}); the download may be truncated"
        ) from exc
    return lines
