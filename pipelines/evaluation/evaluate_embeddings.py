"""Intrinsic evaluation of word vectors: word analogies (3CosAdd, 3CosMul) and word-pair similarity (Spearman).

Analogy files use the Mikolov ``questions-words`` format: ``: section`` lines, then ``a b c d`` lines meaning
*a is to b as c is to d*; the model is asked for ``d`` from ``b - a + c``. Word-pair files are TSV lines
``word1 word2 [POS ...] score``, with or without a header line.

Test words are normalised with the model's own :class:`~pipelines.text.normalize.Normalizer` (``word``), so the
capitalised proper nouns of the analogy sets meet a lowercased vocabulary.

Rules, chosen to match gensim's ``evaluate_word_analogies`` where it has one:

* Candidate answers are the ``restrict_vocab`` most frequent words (default 300,000, gensim's default),
  the three prompt words excluded.
* A question is *answered* when the model has vectors for the three prompt words (on FastText models from
  subword n-grams too, unless ``subwords=False``) and the expected answer is a candidate; otherwise it is
  *skipped*. ``accuracy`` is correct / answered; ``accuracy_all`` is correct / all questions, i.e. skipped
  questions count as wrong. Sections named ``gram*`` are syntactic, the others semantic.
* A word pair is used when both words have vectors (subwords count on FastText models); ``oov_ratio`` is the
  share of pairs left out.

:func:`orthographic_echo` measures how much of a model's neighbourhood is spelling rather than meaning: the share
of the exact top-10 neighbours of the 1,000 most frequent words that contain the query word or share its first
five letters (*casa*: casinha, casas, casarão are echoes; lar, moradia are not). Queries are words of at least
three letters with no digits or punctuation (a one- or two-letter word such as *a* or *de* is contained in most
words, so it would measure the alphabet, not the model). Subword models score high when n-grams dominate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.errors import DatasetError, PalavraError, UnknownWord
from models.vectors import FloatMatrix, WordVectors
from pipelines.reading.datasets import DataCatalog

DEFAULT_RESTRICT_VOCAB = 300_000
ECHO_QUERIES = 1000
ECHO_K = 10
ECHO_PREFIX = 5
ECHO_EXAMPLES = ("cidade", "casa", "feliz", "amor", "rei")
# scores held in memory at once while answering analogies (questions x candidates)
_SCORE_BUDGET = 8_000_000
WordFn = Callable[[str], str]


@dataclass(frozen=True)
class AnalogyQuestion:
    """One ``a b c d`` line of an analogy file and the section it sits in."""

    section: str
    words: tuple[str, str, str, str]


@dataclass(frozen=True)
class WordPair:
    """Two words and their human similarity score."""

    first: str
    second: str
    score: float


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise DatasetError(f"evaluation file {path} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"evaluation file {path} is not UTF-8 text (is it a binary file?)") from exc
    except OSError as exc:
        raise DatasetError(f"evaluation file {path} cannot be read: {exc.strerror}") from exc


def read_analogies(path: Path) -> list[AnalogyQuestion]:
    """Questions of a ``questions-words`` file.

    Raises:
        DatasetError: the file is missing, not text, has a line that is not four words, or holds no question.
    """
    section = "default"
    out: list[AnalogyQuestion] = []
    for lineno, raw in enumerate(_read_lines(path), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(":"):
            section = line[1:].strip() or "default"
            continue
        parts = line.split()
        if len(parts) != 4:
            raise DatasetError(
                f"{path}:{lineno}: an analogy line needs four words 'a b c d', got {len(parts)}: {line[:60]!r}"
            )
        out.append(AnalogyQuestion(section, (parts[0], parts[1], parts[2], parts[3])))
    if not out:
        raise DatasetError(f"{path} holds no analogy question (expected ': section' and 'a b c d' lines)")
    return out


def _parse_score(text: str) -> float | None:
    try:
        return float(text.replace(",", "."))
    except ValueError:
        return None


def read_word_pairs(path: Path) -> list[WordPair]:
    """Pairs of a similarity TSV (``word1 word2 [...] score``); a first line without a numeric score is a header.

    Raises:
        DatasetError: the file is missing, not text, has a malformed line, or holds no pair.
    """
    out: list[WordPair] = []
    for lineno, raw in enumerate(_read_lines(path), start=1):
        if not raw.strip() or raw.startswith("#"):
            continue
        parts = raw.rstrip("\n").split("\t") if "\t" in raw else raw.split()
        score = _parse_score(parts[-1].strip()) if len(parts) >= 3 else None
        if score is None:
            if lineno == 1:
                continue  # header
            raise DatasetError(
                f"{path}:{lineno}: expected 'word1<TAB>word2[<TAB>...]<TAB>score', got {raw[:60]!r}"
            )
        out.append(WordPair(parts[0].strip(), parts[1].strip(), score))
    if not out:
        raise DatasetError(f"{path} holds no word pair (expected 'word1<TAB>word2<TAB>...<TAB>score' lines)")
    return out


class _Lookup:
    """Unit vectors of test words: vocabulary rows, else subword compositions when allowed; cached per word."""

    def __init__(self, vectors: WordVectors, *, subwords: bool) -> None:
        self.vectors = vectors
        self.subwords = subwords and vectors.has_subwords
        self._cache: dict[str, FloatMatrix | None] = {}

    def unit(self, word: str) -> FloatMatrix | None:
        if word not in self._cache:
            self._cache[word] = self._compute(word)
        return self._cache[word]

    def _compute(self, word: str) -> FloatMatrix | None:
        i = self.vectors.index.get(word)
        if i is not None:
            return np.asarray(self.vectors.normed[i], dtype=np.float32)
        if not self.subwords:
            return None
        try:
            units = self.vectors.unit_matrix([word])
        except UnknownWord:
            return None
        row: FloatMatrix = units[0]
        return row


def candidate_rows(vectors: WordVectors, restrict_vocab: int) -> npt.NDArray[np.int64]:
    """Row numbers of the ``restrict_vocab`` most frequent words (row order when counts are unknown)."""
    n = min(restrict_vocab, len(vectors))
    if vectors.counts is None:
        return np.arange(n, dtype=np.int64)
    order = np.argsort(-np.asarray(vectors.counts), kind="stable")
    return np.asarray(order[:n], dtype=np.int64)


def _is_syntactic(section: str) -> bool:
    return section.startswith("gram")


def _score_batch(
    prompts: FloatMatrix, candidates: FloatMatrix, excluded: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Best candidate by 3CosAdd and by 3CosMul for ``m`` questions (prompts: m x 3 x d, rows a, b, c)."""
    m, _, dim = prompts.shape
    raw = (prompts.reshape(3 * m, dim) @ candidates.T).reshape(m, 3, -1)  # cosines to every candidate
    a, b, c = raw[:, 0], raw[:, 1], raw[:, 2]
    rows = np.arange(m)[:, None]
    add = b - a + c
    add[rows, excluded] = -np.inf
    # 3CosMul (Levy & Goldberg 2014): cosines shifted to [0, 1], epsilon 1e-3 as in WordVectors.analogy
    mul = (b + 1.0) * (c + 1.0) / (2.0 * (a + 1.0 + 2e-3))
    mul[rows, excluded] = -np.inf
    return np.argmax(add, axis=1), np.argmax(mul, axis=1)


def _tally(
    questions: Sequence[AnalogyQuestion], answered: Sequence[int], correct: dict[str, npt.NDArray[np.bool_]]
) -> dict[str, Any]:
    groups: dict[str, list[int]] = {}
    kinds: dict[str, list[int]] = {"semantic": [], "syntactic": []}
    for qi, q in enumerate(questions):
        groups.setdefault(q.section, []).append(qi)
        kinds["syntactic" if _is_syntactic(q.section) else "semantic"].append(qi)
    position = {qi: pos for pos, qi in enumerate(answered)}

    def score(indices: Sequence[int]) -> dict[str, Any]:
        hits = [position[qi] for qi in indices if qi in position]
        out: dict[str, Any] = {"questions": len(indices), "answered": len(hits)}
        for method, ok in correct.items():
            right = int(ok[hits].sum()) if hits else 0
            out[method] = {
                "correct": right,
                "accuracy": right / len(hits) if hits else 0.0,
                "accuracy_all": right / len(indices) if indices else 0.0,
            }
        return out

    total = score(range(len(questions)))
    total["skipped"] = total["questions"] - total["answered"]
    total["semantic"] = score(kinds["semantic"])
    total["syntactic"] = score(kinds["syntactic"])
    total["sections"] = {name: score(indices) for name, indices in groups.items()}
    return total


def evaluate_analogies(
    vectors: WordVectors,
    questions: Sequence[AnalogyQuestion],
    *,
    normalize: WordFn | None = None,
    restrict_vocab: int = DEFAULT_RESTRICT_VOCAB,
    subwords: bool = True,
) -> dict[str, Any]:
    """Analogy accuracy by 3CosAdd and 3CosMul, overall, per section and for semantic / syntactic sections.

    Args:
        vectors: the model.
        questions: from :func:`read_analogies`.
        normalize: maps a test word to the model's spelling (the model's ``Normalizer.word``).
        restrict_vocab: candidate answers are this many most frequent words.
        subwords: let FastText models build vectors for unknown prompt words from subword n-grams.
    """
    norm = normalize or (lambda w: w)
    rows = candidate_rows(vectors, restrict_vocab)
    cand_pos = {vectors.words[int(r)]: pos for pos, r in enumerate(rows)}
    # one extra zero row: the column that prompt words outside the candidates "exclude"
    pad = len(rows)
    candidates = np.zeros((pad + 1, vectors.dim), dtype=np.float32)
    candidates[:pad] = vectors.normed[rows]
    lookup = _Lookup(vectors, subwords=subwords)
    answered: list[int] = []
    prompts: list[FloatMatrix] = []
    excluded: list[list[int]] = []
    expected: list[int] = []
    for qi, q in enumerate(questions):
        a, b, c, d = (norm(w) for w in q.words)
        units = [lookup.unit(w) for w in (a, b, c)]
        if d not in cand_pos or any(u is None for u in units):
            continue
        answered.append(qi)
        prompts.append(np.stack(units))  # type: ignore[arg-type]
        excluded.append([cand_pos.get(w, pad) for w in (a, b, c)])
        expected.append(cand_pos[d])
    correct = {"3cosadd": np.zeros(len(answered), bool), "3cosmul": np.zeros(len(answered), bool)}
    step = max(1, _SCORE_BUDGET // max(1, len(rows)))
    for start in range(0, len(answered), step):
        stop = min(start + step, len(answered))
        excl = np.array(excluded[start:stop], dtype=np.int64)
        best_add, best_mul = _score_batch(np.stack(prompts[start:stop]), candidates, excl)
        target = np.array(expected[start:stop])
        correct["3cosadd"][start:stop] = best_add == target
        correct["3cosmul"][start:stop] = best_mul == target
    result = _tally(questions, answered, correct)
    result.update(restrict_vocab=len(rows), subwords=lookup.subwords)
    return result


def evaluate_word_pairs(
    vectors: WordVectors,
    pairs: Sequence[WordPair],
    *,
    normalize: WordFn | None = None,
    subwords: bool = True,
) -> dict[str, Any]:
    """Spearman (and Pearson) correlation between cosine similarity and human scores over the known pairs."""
    from scipy.stats import pearsonr, spearmanr

    norm = normalize or (lambda w: w)
    lookup = _Lookup(vectors, subwords=subwords)
    model_scores: list[float] = []
    human: list[float] = []
    unknown: set[str] = set()
    for pair in pairs:
        first, second = norm(pair.first), norm(pair.second)
        u, v = lookup.unit(first), lookup.unit(second)
        if u is None or v is None:
            unknown.update(w for w, vec in ((first, u), (second, v)) if vec is None)
            continue
        model_scores.append(float(np.dot(u, v)))
        human.append(pair.score)
    used = len(model_scores)
    enough = used >= 3 and len(set(human)) > 1
    return {
        "pairs": len(pairs),
        "used": used,
        "oov_ratio": 1.0 - used / len(pairs),
        "oov_words": sorted(unknown)[:50],
        "spearman": float(spearmanr(model_scores, human).statistic) if enough else None,
        "pearson": float(pearsonr(model_scores, human).statistic) if enough else None,
        "subwords": lookup.subwords,
    }


#: Used when a run names no evaluation sets: the first of each group that can be had (mirror, then download).
DEFAULT_ANALOGIES = ("analogies-lx-br-dev", "analogies-lx-br")
DEFAULT_PAIRS = ("simlex-lx-999",)


@dataclass
class EvaluationSets:
    """Evaluation data read into memory, by the name it was asked for; ``skipped`` says why a default is absent."""

    analogies: dict[str, list[AnalogyQuestion]] = field(default_factory=dict)
    pairs: dict[str, list[WordPair]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _echo_query(word: str) -> bool:
    return len(word) >= 3 and all(c.isalpha() or c == "-" for c in word) and any(c.isalpha() for c in word)


def is_echo(query: str, neighbour: str, *, prefix: int = ECHO_PREFIX) -> bool:
    """``neighbour`` contains ``query`` or shares its first ``prefix`` letters."""
    return query in neighbour or (len(query) >= prefix and neighbour[:prefix] == query[:prefix])


def orthographic_echo(
    vectors: WordVectors,
    *,
    queries: int = ECHO_QUERIES,
    k: int = ECHO_K,
    examples: Sequence[str] = ECHO_EXAMPLES,
    batch: int = 256,
) -> dict[str, Any]:
    """Share of exact top-``k`` neighbours that echo the spelling of the ``queries`` most frequent words.

    Returns ``{"echo", "queries", "k", "examples": {word: [neighbours]}}``; examples are listed for the words
    of ``examples`` that are in the vocabulary (the neighbours shown are the same exact top-``k``).
    """
    order = np.argsort(-np.asarray(vectors.counts), kind="stable") if vectors.counts is not None else None
    rows = [int(i) for i in (order if order is not None else range(len(vectors)))]
    chosen = [i for i in rows if _echo_query(vectors.words[i])][:queries]
    wanted = [vectors.index[w] for w in examples if w in vectors.index]
    chosen_set = set(chosen)
    everything = chosen + [i for i in wanted if i not in chosen_set]
    normed = vectors.normed
    take = min(k, len(vectors) - 1)
    echoes = 0
    shown: dict[str, list[str]] = {}
    for start in range(0, len(everything), batch):
        ids = np.asarray(everything[start : start + batch], dtype=np.int64)
        scores = np.asarray(normed[ids] @ np.asarray(normed).T, dtype=np.float32)
        scores[np.arange(len(ids)), ids] = -np.inf
        if take <= 0:
            break
        top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
        for row, query in enumerate(ids.tolist()):
            best = top[row][np.argsort(-scores[row, top[row]], kind="stable")]
            words = [vectors.words[int(j)] for j in best]
            word = vectors.words[query]
            if query in chosen_set:
                echoes += sum(is_echo(word, n) for n in words)
            if word in examples:
                shown[word] = words
    total = len(chosen) * max(take, 0)
    return {
        "echo": echoes / total if total else None,
        "queries": len(chosen),
        "k": take,
        "examples": {w: shown[w] for w in examples if w in shown},
    }


def _read_all(paths: Sequence[Path], reader: Callable[[Path], list[Any]]) -> list[Any]:
    return [item for path in paths for item in reader(path)]


def _first_available(
    catalog: DataCatalog, names: Sequence[str], reader: Callable[[Path], list[Any]], skipped: dict[str, str]
) -> tuple[str, list[Any]] | None:
    for name in names:
        try:
            return name, _read_all(catalog.resolve(name), reader)
        except PalavraError as exc:
            skipped[name] = exc.detail
    return None


def load_evaluation_sets(
    catalog: DataCatalog, *, analogies: Sequence[str] | None, pairs: Sequence[str] | None
) -> EvaluationSets:
    """Read the named sets (catalogue names or paths); ``None`` means the defaults, skipped when unavailable.

    Raises:
        DatasetNotFound / DownloadError: an explicitly named set cannot be resolved.
        DatasetError: a file that is not in the expected format.
    """
    sets = EvaluationSets()
    for names, reader, target, defaults in (
        (analogies, read_analogies, sets.analogies, DEFAULT_ANALOGIES),
        (pairs, read_word_pairs, sets.pairs, DEFAULT_PAIRS),
    ):
        if names is None:
            found = _first_available(catalog, defaults, reader, sets.skipped)
            if found is not None:
                target[found[0]] = found[1]
                sets.skipped.pop(found[0], None)
            continue
        for name in names:
            target[name] = _read_all(catalog.resolve(name), reader)
    return sets


def evaluate_sets(
    vectors: WordVectors,
    sets: EvaluationSets,
    *,
    normalize: WordFn | None = None,
    restrict_vocab: int = DEFAULT_RESTRICT_VOCAB,
    subwords: bool = True,
) -> dict[str, Any]:
    """Results per set: ``{"analogies": {name: ...}, "pairs": {name: ...}, "skipped": {name: reason}}``, and
    ``"neighbours"``: the model's :func:`orthographic_echo` (it needs no data set)."""
    return {
        "analogies": {
            name: evaluate_analogies(
                vectors, questions, normalize=normalize, restrict_vocab=restrict_vocab, subwords=subwords
            )
            for name, questions in sets.analogies.items()
        },
        "pairs": {
            name: evaluate_word_pairs(vectors, word_pairs, normalize=normalize, subwords=subwords)
            for name, word_pairs in sets.pairs.items()
        },
        "skipped": dict(sets.skipped),
        "neighbours": orthographic_echo(vectors),
    }


def evaluate_embeddings(
    vectors: WordVectors,
    catalog: DataCatalog,
    *,
    analogies: Sequence[str] | None = None,
    pairs: Sequence[str] | None = None,
    normalize: WordFn | None = None,
    restrict_vocab: int = DEFAULT_RESTRICT_VOCAB,
    subwords: bool = True,
) -> dict[str, Any]:
    """Load the named sets (``None``: the defaults, as available) and evaluate ``vectors`` on them.

    Raises:
        DatasetNotFound / DownloadError: an explicitly named set cannot be resolved.
        DatasetError: a file that is not in the expected format.
    """
    sets = load_evaluation_sets(catalog, analogies=analogies, pairs=pairs)
    return evaluate_sets(vectors, sets, normalize=normalize, restrict_vocab=restrict_vocab, subwords=subwords)
