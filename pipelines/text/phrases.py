"""Phrase detection ("são paulo" -> "são_paulo") as a corpus-level step after :func:`prepare_corpus`.

gensim's ``Phrases`` learns collocations from the prepared token file; palavra keeps only what applying them needs
(the phrases, their scores, the delimiter and the connector words) as plain JSON, never a pickle, and applies them
with the same greedy left-to-right rule as gensim's ``FrozenPhrases``, both to the corpus and to query text.
Portuguese connector words (``de``, ``da``, ``do`` ...) may sit inside a phrase: ``rio_de_janeiro``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from models.errors import InvalidConfig
from pipelines.runs.progress import Progress, ProgressCallback, ignore_progress
from pipelines.text.preprocess import PreparedCorpus

FORMAT = "palavra-phrases/1"
# articles, "e" and the prepositions (with their contractions) that sit inside Portuguese names and terms
PT_CONNECTOR_WORDS = (
    "a",
    "as",
    "o",
    "os",
    "e",
    "de",
    "da",
    "das",
    "do",
    "dos",
    "em",
    "na",
    "nas",
    "no",
    "nos",
)


class PhraseConfig(BaseModel):
    """How phrases are learned (gensim ``Phrases`` parameters)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_count: int = Field(default=5, ge=1, description="ignore words and phrases rarer than this.")
    threshold: float = Field(default=10.0, description="higher: fewer phrases (npmi: between -1 and 1).")
    scoring: Literal["default", "npmi"] = "default"
    delimiter: str = Field(default="_", min_length=1, pattern=r"^\S+$")
    connector_words: tuple[str, ...] = Field(default=PT_CONNECTOR_WORDS)
    passes: int = Field(default=1, ge=1, le=3, description="2 also joins phrases of phrases (4+ words).")


@dataclass(frozen=True)
class PhraseModel:
    """Learned phrases, ready to apply: ``phrasegrams`` maps ``"são_paulo"`` to its score, one dict per pass."""

    passes: tuple[dict[str, float], ...]
    delimiter: str
    connector_words: frozenset[str]

    def __len__(self) -> int:
        return sum(len(p) for p in self.passes)

    def apply(self, tokens: Sequence[str]) -> list[str]:
        """The tokens with every learned phrase joined by the delimiter."""
        out = list(tokens)
        for phrasegrams in self.passes:
            out = list(self._join(out, phrasegrams))
        return out

    def _join(self, sentence: Iterable[str], phrasegrams: dict[str, float]) -> Iterator[str]:
        # gensim's _PhrasesTransformation.analyze_sentence, with FrozenPhrases.score_candidate inlined
        connectors, delimiter = self.connector_words, self.delimiter
        start: str | None = None
        between: list[str] = []
        for word in sentence:
            if word in connectors:
                if start:
                    between.append(word)
                else:
                    yield word
                continue
            if start:
                phrase = delimiter.join([start, *between, word])
                if phrase in phrasegrams:
                    yield phrase
                    start, between = None, []
                    continue
                yield start
                yield from between
            start, between = word, []
        if start:
            yield start
            yield from between

    def apply_file(self, source: Path, target: Path) -> int:
        """Apply to a prepared token file (one sentence per line); returns the tokens written."""
        n_tokens = 0
        with (
            source.open(encoding="utf-8") as src,
            target.open("w", encoding="utf-8", newline="\n", buffering=1 << 20) as out,
        ):
            for line in src:
                joined = self.apply(line.split())
                n_tokens += len(joined)
                out.write(" ".join(joined) + "\n")
        return n_tokens

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: ``{"format", "delimiter", "connector_words", "passes": [[[words, score], ...], ...]}``."""
        return {
            "format": FORMAT,
            "delimiter": self.delimiter,
            "connector_words": sorted(self.connector_words),
            "passes": [
                [[phrase.split(self.delimiter), round(score, 6)] for phrase, score in sorted(p.items())]
                for p in self.passes
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PhraseModel:
        """Rebuild from :meth:`to_json` output.

        Raises:
            InvalidConfig: the data is not a palavra phrases document.
        """
        try:
            if data["format"] != FORMAT:
                raise InvalidConfig(f"phrases: unknown format {data['format']!r} (expected {FORMAT})")
            delimiter = str(data["delimiter"])
            passes = tuple(
                {delimiter.join(words): float(score) for words, score in entries}
                for entries in data["passes"]
            )
            return cls(passes, delimiter, frozenset(data["connector_words"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidConfig(f"phrases: not a palavra phrases document ({exc!r})") from exc


class _LineSentences:
    """Re-iterable sentences of a token file, optionally through earlier phrase passes."""

    def __init__(self, path: Path, model: PhraseModel | None) -> None:
        self.path, self.model = path, model

    def __iter__(self) -> Iterator[list[str]]:
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                tokens = line.split()
                yield self.model.apply(tokens) if self.model else tokens


def learn_phrases(
    corpus_path: Path, config: PhraseConfig, *, progress: ProgressCallback | None = None
) -> PhraseModel:
    """Learn phrases from a prepared token file (one sentence per line, tokens separated by spaces)."""
    from gensim.models.phrases import Phrases

    report = progress or ignore_progress
    connectors = frozenset(config.connector_words)
    passes: list[dict[str, float]] = []
    for i in range(config.passes):
        report(Progress(stage="phrases", fraction=i / config.passes, message=f"phrase pass {i + 1}"))
        so_far = PhraseModel(tuple(passes), config.delimiter, connectors) if passes else None
        phrases = Phrases(
            _LineSentences(corpus_path, so_far),
            min_count=config.min_count,
            threshold=config.threshold,
            scoring=config.scoring,
            delimiter=config.delimiter,
            connector_words=connectors,
        )
        passes.append({str(k): float(v) for k, v in phrases.export_phrases().items()})
    report(Progress(stage="phrases", fraction=1.0, message=f"{sum(map(len, passes))} phrases"))
    return PhraseModel(tuple(passes), config.delimiter, connectors)


def phrase_corpus(
    prepared: PreparedCorpus,
    config: PhraseConfig,
    *,
    cache_dir: Path,
    progress: ProgressCallback | None = None,
) -> tuple[PreparedCorpus, PhraseModel]:
    """Learn phrases on a prepared corpus and apply them; cached by the corpus's data hash and ``config``.

    Returns the phrase-joined corpus (``data_hash`` of its bytes) and the model to save beside the vectors.
    """
    started = time.perf_counter()
    key_blob = json.dumps([prepared.data_hash, config.model_dump(mode="json")], sort_keys=True)
    key = hashlib.sha256(key_blob.encode("utf-8")).hexdigest()[:32]
    store = cache_dir / "phrases"
    data_path, meta_path = store / f"{key}.txt", store / f"{key}.json"
    if data_path.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        corpus = _with(prepared, data_path, meta, cache_hit=True, started=started)
        return corpus, PhraseModel.from_json(meta["model"])
    model = learn_phrases(prepared.path, config, progress=progress)
    store.mkdir(parents=True, exist_ok=True)
    tag = f".tmp-{os.getpid()}-{time.time_ns()}"
    tmp_data, tmp_meta = store / f"{key}.txt{tag}", store / f"{key}.json{tag}"
    try:
        n_tokens = model.apply_file(prepared.path, tmp_data)
        digest = hashlib.sha256()
        with tmp_data.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        meta = {"n_tokens": n_tokens, "data_hash": digest.hexdigest(), "model": model.to_json()}
        os.replace(tmp_data, data_path)
        tmp_meta.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp_meta, meta_path)
    finally:
        tmp_data.unlink(missing_ok=True)
        tmp_meta.unlink(missing_ok=True)
    return _with(prepared, data_path, meta, cache_hit=False, started=started), model


def _with(
    prepared: PreparedCorpus, path: Path, meta: dict[str, Any], *, cache_hit: bool, started: float
) -> PreparedCorpus:
    return PreparedCorpus(
        path=path,
        n_tokens=int(meta["n_tokens"]),
        n_sentences=prepared.n_sentences,
        n_docs=prepared.n_docs,
        skipped=prepared.skipped,
        data_hash=str(meta["data_hash"]),
        cache_hit=cache_hit,
        seconds=time.perf_counter() - started,
        skipped_files=prepared.skipped_files,
    )
