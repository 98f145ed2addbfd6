"""The served language model: next-word candidates, sampled text, and perplexity on new text.

Queries are normalised with the configuration the training corpus went through (``config.json``'s
``preprocessing``), unknown words become ``<unk>``, and every forward pass runs under :func:`torch.inference_mode`.
"""

from __future__ import annotations

import functools
import math
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from models import lm as lm_kind
from models.errors import InvalidInput
from models.registry import Artifact
from pipelines.lm.config import LM_NORMALIZE, MAX_NEW_TOKENS, MAX_SEED, MAX_TEMPERATURE
from pipelines.lm.data import contexts_of, documents, with_boundaries
from pipelines.text.normalize import NormalizeConfig, Normalizer, is_blank

#: distinct (context, k) answers of ``complete`` kept per model: autocomplete prefixes repeat, and a kept answer
#: skips the network and the top-k (about half of a served request's CPU; benchmarks/results/lm.md)
COMPLETE_CACHE = 4096
_NO_SPACE_BEFORE = frozenset(
    {",", ".", ";", ":", "!", "?", "…", "...", ")", "]", "}", "»", "%", "?!", "!?", "”", "’"}
)
_NO_SPACE_AFTER = frozenset({"(", "[", "{", "«", "“", "‘"})


def detokenize(tokens: list[str], *, capitalize_first: bool = True) -> str:
    """Readable text from model tokens: punctuation attached, sentences capitalised, ``<p>`` as a blank line."""
    out: list[str] = []
    cap = capitalize_first
    glue = True  # no space before the next piece
    for tok in tokens:
        if tok == lm_kind.EOS:
            cap = True
            continue
        if tok == lm_kind.PARAGRAPH:
            if out:
                out.append("\n\n")
            cap, glue = True, True
            continue
        word = "…" if tok == lm_kind.UNK else tok
        if cap and word[:1].isalpha():
            word = word[:1].upper() + word[1:]
            cap = False
        if not glue and tok not in _NO_SPACE_BEFORE:
            out.append(" ")
        out.append(word)
        glue = tok in _NO_SPACE_AFTER
    return "".join(out).strip()


def _top_words(
    loaded: lm_kind.LMArtifact, never: Sequence[int]
) -> Callable[[tuple[int, ...], int], tuple[tuple[str, float], ...]]:
    """The function ``complete`` caches: (context ids, k) -> the k most probable next words (never ``never``)."""
    scorer = lm_kind.NextTokens(loaded.net, never, ngram=loaded.ngram, network_weight=loaded.network_weight)

    def top(context: tuple[int, ...], k: int) -> tuple[tuple[str, float], ...]:
        return tuple((loaded.vocab[i], round(math.exp(logp), 6)) for i, logp in scorer.top(context, k))

    return top


#: tokens drawn between two questions to ``generate``'s ``stop`` (a few milliseconds of work)
STOP_CHECK_TOKENS = 16


class Abandoned(Exception):
    """Nobody wants the rest of the text (the client hung up): raised by :meth:`LanguageModel.generate`."""


@dataclass(frozen=True)
class Sampling:
    """How the next token is drawn: temperature 0 is greedy (the most probable token every step)."""

    max_tokens: int = 40
    temperature: float = 0.8
    top_k: int | None = 40
    top_p: float = 0.95
    seed: int | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.max_tokens <= MAX_NEW_TOKENS:
            raise InvalidInput(f"max_tokens must be between 1 and {MAX_NEW_TOKENS}, not {self.max_tokens}")
        if not (math.isfinite(self.temperature) and 0 <= self.temperature <= MAX_TEMPERATURE):
            raise InvalidInput(
                f"temperature must be from 0 (greedy) to {MAX_TEMPERATURE:g}, not {self.temperature}"
            )
        if self.top_k is not None and self.top_k < 1:
            raise InvalidInput(f"top_k must be at least 1, not {self.top_k}")
        if not (math.isfinite(self.top_p) and 0 < self.top_p <= 1):
            raise InvalidInput(f"top_p must be in (0, 1], not {self.top_p}")
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise InvalidInput(f"seed must be from 0 to {MAX_SEED} (2^32 - 1), not {self.seed}")


class LanguageModel:
    """A registered ``lm`` version ready to answer ``complete``, ``generate`` and ``evaluate``."""

    def __init__(self, loaded: lm_kind.LMArtifact, *, ref: str = "") -> None:
        self.lm = loaded
        self.ref = ref
        raw = loaded.preprocessing.get("normalize")
        self.normalize = NormalizeConfig.model_validate(raw) if raw is not None else LM_NORMALIZE
        self.normalizer = Normalizer(self.normalize)
        self.context = loaded.shape.context
        self.pad = loaded.index[lm_kind.PARAGRAPH]
        self.unk = loaded.index[lm_kind.UNK]
        never = (self.unk, self.pad)  # never proposed: <unk>, and <p> as a "next word"
        # generation's candidates: <unk> is never written, <p> starts a new paragraph
        self._candidates = lm_kind.NextTokens(
            loaded.net, (self.unk,), ngram=loaded.ngram, network_weight=loaded.network_weight
        )
        # a closure over the artifact, not a method: the cache holds no reference back to this object
        self._top = functools.lru_cache(maxsize=COMPLETE_CACHE)(_top_words(loaded, never))

    @classmethod
    def from_artifact(cls, artifact: Artifact) -> LanguageModel:
        return cls(lm_kind.load(artifact), ref=artifact.version.ref)

    # -- text -> ids -------------------------------------------------------------------------------------------
    def tokens(self, text: str, *, what: str = "text") -> list[str]:
        """The prompt's tokens with sentence boundaries; InvalidInput when nothing is left of it."""
        if is_blank(text):  # whitespace, zero-width or control characters only, as the HTTP routes refuse
            raise InvalidInput(f"the {what} is empty; give some words to continue")
        return with_boundaries(self.normalizer.tokens(text), paragraph=False)

    def _context_ids(self, ids: list[int]) -> tuple[int, ...]:
        """The last ``context`` ids, padded on the left with ``<p>`` (a text's start reads as a paragraph's)."""
        tail = ids[-self.context :]
        return (self.pad,) * (self.context - len(tail)) + tuple(tail)

    def _ids(self, tokens: list[str]) -> list[int]:
        return [self.lm.id_of(t) for t in tokens]

    # -- operations --------------------------------------------------------------------------------------------
    def complete(self, text: str, k: int = 5) -> dict[str, Any]:
        """The ``k`` most probable next words after ``text`` with their probabilities.

        Answers are kept per (last ``context`` token ids, k), :data:`COMPLETE_CACHE` of them: texts that end in
        the same words get the same candidates without running the network again.
        """
        if k < 1:
            raise InvalidInput(f"k must be at least 1, not {k}")
        toks = self.tokens(text)
        context = self._context_ids(self._ids(toks))
        return {
            "tokens": toks,
            "unknown": [t for t in toks if t not in self.lm.index],
            "candidates": [{"word": word, "probability": prob} for word, prob in self._top(context, k)],
        }

    @staticmethod
    def _draw(logp: torch.Tensor, sampling: Sampling, gen: torch.Generator) -> int:
        """The index in ``logp`` (the candidates' log-probabilities) of the token drawn at ``sampling``'s
        temperature and top-p; top-k is the caller's."""
        # in float64 (a float32 temperature of 1e-95 is 0), shifted so the best token's logit is 0: a tiny
        # temperature sends the others to -inf, never all of them
        logp64 = logp.double()
        probs = torch.softmax((logp64 - logp64.max()) / sampling.temperature, dim=0)
        if sampling.top_p < 1:
            sorted_p, order = torch.sort(probs, descending=True)
            keep = torch.cumsum(sorted_p, 0) - sorted_p < sampling.top_p  # the smallest set reaching top_p
            mask = torch.zeros_like(probs, dtype=torch.bool)
            mask[order[keep]] = True
            probs = probs.masked_fill(~mask, 0.0)
        return int(torch.multinomial(probs, 1, generator=gen))

    def _next(self, context: tuple[int, ...], sampling: Sampling, gen: torch.Generator) -> int:
        """The next token's id after ``context``, drawn as ``sampling`` says.

        Greedy and top-k sampling draw among the k best tokens alone, found as ``complete`` finds them (the
        clusters of the adaptive softmax that cannot hold one are not scored): with the default top-k of 40 on the
        full corpus's model, a median of 1,190 tokens/s against 266 when each step built the whole distribution
        (benchmarks/results/lm.md). Without top-k every token may be drawn: the whole distribution is built.
        """
        k = 1 if sampling.temperature == 0 else sampling.top_k
        if k is not None:
            best = self._candidates.top(context, k)
            if sampling.temperature == 0:
                return best[0][0]
            drawn = self._draw(torch.tensor([lp for _, lp in best], dtype=torch.float64), sampling, gen)
            return best[drawn][0]
        network = self.lm.net.log_probs(torch.tensor([context]))[0]
        if self.lm.ngram is not None:
            every = torch.from_numpy(self.lm.mix_distribution(network.double().numpy(), context))
        else:
            every = network
        every[self.unk] = -math.inf  # <unk> is never written; <p> starts a new paragraph
        return self._draw(every, sampling, gen)

    @torch.inference_mode()
    def stream(self, prompt: str, sampling: Sampling) -> Iterator[str]:
        """The generated tokens one at a time, ``max_tokens`` of them (``<p>`` is written as a paragraph break)."""
        ids = self._ids(self.tokens(prompt, what="prompt"))
        gen = torch.Generator()
        gen.manual_seed(sampling.seed if sampling.seed is not None else secrets.randbits(32))
        for _ in range(sampling.max_tokens):
            nxt = self._next(self._context_ids(ids), sampling, gen)
            ids.append(nxt)
            yield self.lm.vocab[nxt]

    def generate(
        self, prompt: str, sampling: Sampling, *, stop: Callable[[], bool] | None = None
    ) -> dict[str, Any]:
        """The prompt continued: the new tokens, and prompt + continuation as readable text.

        ``stop`` is asked every :data:`STOP_CHECK_TOKENS` tokens whether anyone still wants the text (an HTTP
        client that hung up); when it says so, :class:`Abandoned` is raised instead of drawing the rest.
        """
        prompt_tokens = self.tokens(prompt, what="prompt")
        new: list[str] = []
        for token in self.stream(prompt, sampling):
            new.append(token)
            if stop is not None and len(new) % STOP_CHECK_TOKENS == 0 and stop():
                raise Abandoned(f"generation abandoned after {len(new)} of {sampling.max_tokens} tokens")
        return {
            "tokens": new,
            "completion": detokenize(new, capitalize_first=False),
            "text": detokenize(prompt_tokens + new),
        }

    def evaluate(self, lines: list[str], *, plain_text: bool = True) -> dict[str, Any]:
        """Perplexity and OOV rate on ``lines`` (one document a line, or hard-wrapped lines, joined as training
        joins them), as the held-out slice is measured. ``plain_text``: the lines come from a text file, whose
        hard-wrapped lines are joined (never JSON lines' or CSV rows' texts, each a document)."""
        from pipelines.lm.train import perplexity, token_log_probs

        tokenised: list[str] = [
            " ".join(t) for t in (self.normalizer.tokens(line) for line in lines if line.strip()) if t
        ]
        docs, wrapped = documents(tokenised, plain_text=plain_text)
        toks: list[str] = []
        for doc in docs:
            toks += with_boundaries(doc.split(" "))
        if not toks:
            raise InvalidInput("the text has no tokens to evaluate")
        ids = np.array(self._ids(toks), dtype=np.int64)
        words = [t for t in toks if t not in lm_kind.SPECIALS]
        contexts = contexts_of(ids, self.context, self.pad)
        nll = -float(self.lm.mix(token_log_probs(self.lm.net, contexts, ids), contexts, ids).mean())
        return {
            "model": self.ref,
            "tokens": len(toks),
            "documents": len(docs),
            "wrapped": wrapped,  # the lines broke mid-sentence and were joined into paragraphs, as training does
            "perplexity": perplexity(nll),
            "cross_entropy": round(nll, 5),
            "oov_rate": round(sum(t not in self.lm.index for t in words) / max(len(words), 1), 5),
        }
