"""Normalisation: every config option, sentence splitting, and the per-chunk cache giving the same answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pipelines.text import normalize
from pipelines.text.normalize import NormalizeConfig, Normalizer, fold_accents
from pipelines.text.tokenize import RawToken, Tokenizer

TEXT = "O Sr. Silva pôs-se a beber d'água às 10h30. Pagou R$ 1.994,20! Escreva a ana@x.com.br, @joao ou https://x.pt."


def norm(text: str, **cfg: Any) -> list[str]:
    return Normalizer(NormalizeConfig(**cfg)).tokens(text)


def test_tokens_default_config() -> None:
    assert norm(TEXT) == [
        "o", "sr.", "silva", "pôs-se", "a", "beber", "d'água", "às", "00h00",
        "pagou", "r$", "0.000,00", "escreva", "a", "<email>", "<user>", "ou", "<url>",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("cfg", "text", "expected"),
    [
        ({"lowercase": False}, "Lisboa e PORTO", ["Lisboa", "e", "PORTO"]),
        ({"fold_accents": True}, "Ação não é coração", ["acao", "nao", "e", "coracao"]),
        ({"numbers": "keep"}, "às 10h30 custa 1.994,20", ["às", "10h30", "custa", "1.994,20"]),
        ({"numbers": "zero"}, "às 10h30 custa 1.994,20", ["às", "00h00", "custa", "0.000,00"]),
        ({"numbers": "token"}, "custa 1.994,20 ou dois", ["custa", "<num>", "ou", "<num>"]),
        ({"urls": "drop"}, "veja https://x.pt agora", ["veja", "agora"]),
        ({"urls": "keep"}, "veja https://x.pt agora", ["veja", "https://x.pt", "agora"]),
        ({"emails": "keep"}, "mande a ana@x.com", ["mande", "a", "ana@x.com"]),
        ({"mentions": "drop"}, "rt @user bom dia", ["rt", "bom", "dia"]),
        ({"drop_punctuation": False}, "Sim, claro!", ["sim", ",", "claro", "!"]),
        ({"remove_stopwords": True}, "O rei e a rainha", ["rei", "rainha"]),
        ({"min_token_chars": 3}, "o rei e a rainha", ["rei", "rainha"]),
        ({"unicode_form": "NFKC", "lowercase": False}, "ﬁm x\u00a8y", ["fim", "x\u0308y"]),
    ],
)
def test_tokens_config_options(cfg: dict[str, Any], text: str, expected: list[str]) -> None:
    assert norm(text, **cfg) == expected


def test_lemmatize_lowercases_and_user_overrides_win() -> None:
    n = Normalizer(NormalizeConfig(lemmatize=True, lemma_overrides={"Melhores": "melhor"}))
    assert n.tokens("Ele FOI e disse melhores") == ["ele", "ser", "e", "dizer", "melhor"]
    assert n.word("Disse") == "dizer"


def test_nfc_composes_decomposed_accents() -> None:
    decomposed = "nao\u0303 a\u0300s"  # 'õ' and 'à' written as letter + combining mark
    assert norm(decomposed) == ["naõ", "às"]


def test_word_matches_training_normalisation() -> None:
    n = Normalizer(NormalizeConfig(fold_accents=True))
    assert n.word("  Ação ") == "acao"
    assert n.word("Ano2020") == "ano0000"
    assert fold_accents("Pôs-se à toa") == "Pos-se a toa"


def test_placeholder_is_what_training_text_put_where_the_word_stood() -> None:
    tokens = Normalizer(NormalizeConfig(numbers="token"))
    assert [
        tokens.placeholder(w) for w in ["1857", "1.857", "três", "http://exemplo.com", "www.ufrj.br"]
    ] == [
        "<num>",
        "<num>",
        "<num>",
        "<url>",
        "<url>",
    ]
    assert [
        tokens.placeholder(w) for w in ["ana@exemplo.com", "@fulano", "Casa", "1857,", "rio de janeiro"]
    ] == [
        "<email>",
        "<user>",
        None,
        None,  # two tokens: no single placeholder
        None,
    ]
    kept = Normalizer(NormalizeConfig(urls="keep", mentions="drop", numbers="keep"))
    assert [kept.placeholder(w) for w in ["HTTP://Exemplo.com", "@Fulano", "1857"]] == [None, None, None]
    assert Normalizer().placeholder("1857") is None  # numbers="zero": 1857 was 0000, as word() gives it
    assert Normalizer().word("1857") == "0000"


def test_sentences_split_on_end_marks_not_abbreviations() -> None:
    n = Normalizer()
    text = "O Sr. Silva chegou. Ela disse: «Fim?» E ele saiu! Mas… voltou"
    assert n.sentences(text) == [
        ["o", "sr.", "silva", "chegou"],
        ["ela", "disse", "fim"],
        ["e", "ele", "saiu"],
        ["mas"],
        ["voltou"],
    ]


def test_sentences_keep_closing_quote_with_its_sentence() -> None:
    n = Normalizer(NormalizeConfig(drop_punctuation=False))
    assert n.sentences("Ele disse «sim.» Depois saiu.") == [
        ["ele", "disse", "«", "sim", ".", "»"],
        ["depois", "saiu", "."],
    ]


def test_pipe_sentences_flatten_to_tokens() -> None:
    n = Normalizer()
    texts = [TEXT, "", "Só uma frase sem ponto", "Sr. Dr. ... !!"]
    for text, sentences in zip(texts, n.pipe_sentences(texts, batch_size=2), strict=True):
        assert [t for s in sentences for t in s] == n.tokens(text)
    assert list(n.pipe(texts)) == [n.tokens(t) for t in texts]


def test_cache_gives_same_answers_and_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(normalize, "MAX_CACHED_CHUNKS", 5)
    n = Normalizer()
    first = [n.tokens(TEXT), n.sentences(TEXT)]
    assert [n.tokens(TEXT), n.sentences(TEXT)] == first
    assert len(n._flat) <= 5 + len(TEXT.split())


class UpperTokenizer(Tokenizer):
    """A user tokenizer: every whitespace chunk is one word token."""

    def tokens(self, text: str) -> list[RawToken]:
        return [RawToken(c, "word") for c in text.split()]

    def pipe(self, texts: Any, *, batch_size: int = 1000) -> Any:  # noqa: ARG002
        for text in texts:
            yield self.tokens(text)


def test_normalizer_uses_the_given_tokenizer() -> None:
    n = Normalizer(NormalizeConfig(drop_punctuation=False), tokenizer=UpperTokenizer())
    assert n.tokens("Olá, mundo.") == ["olá,", "mundo."]


def test_pipe_yields_its_first_texts_before_reading_a_whole_batch() -> None:
    """Progress shows from the start: a cold 1,000-text batch is not tokenised before the first text comes out."""
    pulled = 0

    def texts() -> Iterator[str]:
        nonlocal pulled
        for i in range(3000):
            pulled += 1
            yield f"O menino {i} foi para a escola."

    normalizer = Normalizer(NormalizeConfig())
    stream = normalizer.marked_pipe(texts())
    next(stream)
    assert pulled <= 16
    rest = list(stream)
    assert len(rest) == 2999
    assert rest == list(normalizer.marked_pipe(f"O menino {i} foi para a escola." for i in range(1, 3000)))


@pytest.mark.parametrize(
    "text", ["o rei", "«o rei»", "(casa)", "@joao oi", "http://x.com/a b", "Fim. Outro frase.", "a casa"]
)
def test_a_byte_order_mark_inside_text_is_not_part_of_a_word(text: str) -> None:
    """Files joined with `cat` carry a BOM at the start of each one: 'o' and '\ufeffo' were two words, and the
    tokenizer's prefix, URL and sentence rules saw the mark (a hostile probe, then a review)."""
    n = Normalizer(NormalizeConfig())
    marked = "\ufeff" + text.replace(" ", " \ufeff", 1)
    assert n.tokens(marked) == n.tokens(text)
    assert list(n.marked_pipe([marked])) == list(n.marked_pipe([text]))
    assert n.word("\ufeffrei") == "rei"
