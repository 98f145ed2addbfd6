"""Token streams for a language model: prepared corpus lines -> documents -> boundary tokens -> vocabulary ids.

A prepared line is one document (the LM's normalisation keeps punctuation and does not split sentences), so:

    "o menino chegou . a menina saiu ."  ->  o menino chegou . </s> a menina saiu . </s> <p>

A plain-text source whose lines break mid-sentence (text extracted from PDF pages, hard-wrapped files) is first
joined back into paragraphs (:func:`paragraphs`), so that ``</s>`` and ``<p>`` mark sentences and paragraphs, not
the width of a page. Hard-wrapped means both: fewer than half of its lines end a sentence, and most of the lines
that do not fill the page's width (:func:`is_wrapped`). Short documents without final punctuation (tweets,
titles) fail the second test; a JSON line or a CSV row is a document whatever it holds.

The last ``holdout`` fraction of each source's documents is never trained on: it measures validation perplexity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.errors import EmptyCorpus
from models.lm import EOS, PARAGRAPH, SPECIALS, UNK

SENTENCE_END = frozenset({".", "!", "?", "…", "...", "?!", "!?"})
# marks that may follow a sentence's end on its line: «... disse ele.» / (... fim.)
CLOSERS = frozenset({'"', "»", "”", "’", "'", ")", "]"})
# a line that starts with a dash opens a new paragraph (dialogue), even after a line that ends mid-sentence
DIALOGUE = frozenset({"—", "–", "-", "―"})
# a source is hard-wrapped when fewer of its lines than this end a sentence (corpus-machado: 28%; corpus-eltec,
# one paragraph a line: 87%; corpus-ptwiki: 80%; but ToLD-Br's tweets 16% and ASSIN 2's sentences 0%) ...
WRAPPED_BELOW = 0.5
# ... and at least this share of the lines that do not end one are at least 3/4 as long as the 90th percentile of
# their lengths: they fill a page's width (corpus-machado 79%, its novels 92%, its poems 56%; ToLD-Br 17%,
# ASSIN 2 29%, B2W 17%)
FULL_WIDTH = 0.75
FILLED_AT_LEAST = 0.6
# a joined paragraph is cut after this many tokens (a hard-wrapped text without punctuation is not one document)
MAX_PARAGRAPH_TOKENS = 2000
IdArray = npt.NDArray[np.int64]


def with_boundaries(tokens: Sequence[str], *, paragraph: bool = True) -> list[str]:
    """``tokens`` of one document with ``</s>`` after each sentence end and ``<p>`` at its end."""
    out: list[str] = []
    for tok in tokens:
        out.append(tok)
        if tok in SENTENCE_END:
            out.append(EOS)
    if paragraph and out:
        if out[-1] != EOS:
            out.append(EOS)
        out.append(PARAGRAPH)
    return out


def ends_sentence(line: str) -> bool:
    """Whether a line of space-separated tokens ends a sentence (closing quotes and brackets after it allowed)."""
    tokens = line.rstrip(" ").split(" ")
    while len(tokens) > 1 and tokens[-1] in CLOSERS:
        tokens.pop()
    return tokens[-1] in SENTENCE_END


def paragraphs(lines: Sequence[str]) -> list[str]:
    """Hard-wrapped lines joined into paragraphs: a paragraph ends at a line that ends a sentence, before a line
    that opens with a dash, or after :data:`MAX_PARAGRAPH_TOKENS` tokens."""
    out: list[str] = []
    current: list[str] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if current:
            out.append(" ".join(current))
            current.clear()
            size = 0

    for line in lines:
        if current and line.split(" ", 1)[0] in DIALOGUE:
            flush()
        current.append(line)
        size += line.count(" ") + 1
        if size >= MAX_PARAGRAPH_TOKENS or ends_sentence(line):
            flush()
    flush()
    return out


def is_wrapped(lines: Sequence[str]) -> bool:
    """Whether ``lines`` are hard-wrapped: most end mid-sentence, and most of those fill the same width."""
    open_ended = [len(line) for line in lines if not ends_sentence(line)]
    if not lines or len(open_ended) <= (1 - WRAPPED_BELOW) * len(lines):
        return False
    width = float(np.percentile(open_ended, 90))
    filled = sum(n >= FULL_WIDTH * width for n in open_ended)
    return filled >= FILLED_AT_LEAST * len(open_ended)


def documents(lines: list[str], *, plain_text: bool = True) -> tuple[list[str], bool]:
    """(the LM's documents, whether the lines were hard-wrapped): ``lines`` joined into :func:`paragraphs` when
    they come from plain text (not JSON lines or CSV rows, each a document) and :func:`is_wrapped`, else as
    they are."""
    if not plain_text or not is_wrapped(lines):
        return lines, False
    return paragraphs(lines), True


def read_lines(path: Path) -> list[str]:
    """The non-empty lines of a prepared token file."""
    with path.open(encoding="utf-8") as fh:
        return [line for line in (raw.rstrip("\n") for raw in fh) if line]


def split_holdout(lines: list[str], fraction: float) -> tuple[list[str], list[str]]:
    """(train, held out): the last ``fraction`` of the lines, at least one when there are two or more."""
    if len(lines) < 2:
        return lines, []
    n = max(1, round(len(lines) * fraction))
    return lines[:-n], lines[-n:]


def token_stream(lines: Iterable[str]) -> Iterator[str]:
    for line in lines:
        yield from with_boundaries(line.split(" "))


@dataclass(frozen=True)
class Vocabulary:
    """Tokens most frequent first (specials lead), with their training counts."""

    tokens: list[str]
    counts: list[int]

    @classmethod
    def build(cls, lines: Iterable[str], *, max_size: int, min_count: int) -> Vocabulary:
        counter = Counter(token_stream(lines))
        specials = {t: counter.pop(t, 0) for t in SPECIALS}
        words = [(w, c) for w, c in counter.most_common() if c >= min_count][
            : max(0, max_size - len(SPECIALS))
        ]
        unk = specials[UNK] + sum(counter.values()) - sum(c for _, c in words)
        special_counts = {**specials, UNK: unk}
        ordered = sorted(special_counts.items(), key=lambda kv: -kv[1]) + words
        ordered.sort(key=lambda kv: -kv[1])  # the adaptive softmax wants frequency order
        if not words:
            raise EmptyCorpus(
                f"no word occurs at least min_count={min_count} times; lower --min-count or add text"
            )
        return cls([w for w, _ in ordered], [c for _, c in ordered])

    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.tokens)}

    def encode(self, lines: Iterable[str]) -> IdArray:
        index = self.index()
        unk = index[UNK]
        return np.fromiter((index.get(t, unk) for t in token_stream(lines)), dtype=np.int64)


def contexts_of(ids: IdArray, context: int, pad: int) -> npt.NDArray[np.int64]:
    """A view (n x context) whose row i holds the ``context`` ids before ``ids[i]`` (padded with ``pad``)."""
    padded = np.concatenate([np.full(context, pad, dtype=np.int64), ids])
    return np.lib.stride_tricks.sliding_window_view(padded, context)[: len(ids)]


def restart_at_boundaries(
    contexts: npt.NDArray[np.int64], ids: IdArray, boundary: int
) -> npt.NDArray[np.int64]:
    """``contexts`` (from :func:`contexts_of` with ``pad=boundary``) with every token before the last ``boundary``
    preceding each position replaced by ``boundary``: each document is read as if it came first.

    The model is trained on one running stream; scoring with this restart makes its context end at a document's
    start, as an n-gram model's does at ``<s>``.
    """
    n, width = contexts.shape
    positions = np.arange(len(ids))
    marks = np.where(ids == boundary, positions, -1)
    # the position of the last boundary strictly before each token (-1: none)
    last = np.concatenate([[-1], np.maximum.accumulate(marks)[:-1]])[:n]
    window = positions[:n, None] - width + np.arange(width)[None, :]  # each context slot's position
    out = np.array(contexts, copy=True)
    out[window < last[:, None]] = boundary
    return out
