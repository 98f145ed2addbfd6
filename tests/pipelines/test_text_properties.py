"""Property tests of the tokenizer and the normaliser on arbitrary Unicode (combining marks, compatibility
characters, control characters, every plane): no crash, tokens cover the text, normalisation is idempotent.

Lone surrogates are not Unicode text; they are refused where text enters palavra (API schemas, CLI arguments),
before any tokenizer sees them, so they are left out here."""

from __future__ import annotations

import hypothesis
import pytest
from hypothesis import HealthCheck
from hypothesis import strategies as st

from pipelines.text.normalize import NormalizeConfig, Normalizer
from pipelines.text.tokenize import Tokenizer

# any character (every category but surrogates), mixed with Portuguese text and what the tokenizer treats specially
_ANY = st.characters(codec="utf-8")
_PT = st.sampled_from(
    [*list("ãáàâçéêíóôõúü ÃÇÉ.,;:!?…'\"-–—()«»@#$%&/\\0123456789"), "http://x.pt/a", "a@b.pt", "d'água"]
)
TEXT = st.lists(st.one_of(_ANY, _PT, st.text(max_size=5)), max_size=40).map("".join)

SETTINGS = hypothesis.settings(
    max_examples=150, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
CONFIGS = {
    "default": NormalizeConfig(),
    "nfkc-folded": NormalizeConfig(unicode_form="NFKC", fold_accents=True, numbers="token"),
    "verbatim": NormalizeConfig(lowercase=False, numbers="keep", urls="keep", drop_punctuation=False),
}


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer()


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def normalizer(request: pytest.FixtureRequest) -> Normalizer:
    return Normalizer(CONFIGS[request.param])


def test_tokenizer_covers_any_text_without_crashing(tokenizer: Tokenizer) -> None:
    @SETTINGS
    @hypothesis.given(text=TEXT)
    def check(text: str) -> None:
        toks = tokenizer.tokens(text)
        assert all(t.text and not any(c.isspace() for c in t.text) for t in toks)
        assert "".join(t.text for t in toks) == "".join(text.split())
        assert [t.text for t in Tokenizer().tokens(text)] == [
            t.text for t in toks
        ]  # the cache changes nothing

    check()


def test_normalizer_word_is_idempotent(normalizer: Normalizer) -> None:
    @SETTINGS
    @hypothesis.given(text=TEXT)
    def check(text: str) -> None:
        once = normalizer.word(text)
        assert normalizer.word(once) == once

    check()


def test_normalizer_tokens_are_already_normal(normalizer: Normalizer) -> None:
    """Every token that comes out is a fixed point of the query-word normalisation, so a query typed as a token
    finds it."""

    @SETTINGS
    @hypothesis.given(text=TEXT)
    def check(text: str) -> None:
        for tok in normalizer.tokens(text):
            if tok != "\n":
                assert normalizer.word(tok) == tok

    check()


@pytest.mark.parametrize("text", ["0\u00a8", "\u00a8", "a\u00a8b", "\u00a8\u00a8x"])
def test_normalizer_symbols_that_nfkc_turns_into_spaces(text: str) -> None:
    """NFKC maps the diaeresis U+00A8 to a space and a combining mark; folding then leaves a bare space, which
    used to end up inside a token (``'0 '``) or in a query word that normalised differently twice."""
    norm = Normalizer(CONFIGS["nfkc-folded"])
    for tok in norm.tokens(text):
        assert tok.strip() == tok
        assert norm.word(tok) == tok
    once = norm.word(text)
    assert norm.word(once) == once
    assert once.strip() == once
