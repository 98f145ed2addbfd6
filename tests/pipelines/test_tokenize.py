"""The fast tokenizer gives exactly spaCy's ``spacy.blank("pt")`` tokens, including on the hard cases."""

from __future__ import annotations

import itertools
import json

import pytest

from pipelines.text import tokenize
from pipelines.text.tokenize import RawToken, Tokenizer
from tests.conftest import SHARED_DATA

HARD_CASES = [
    ("Ele pôs-se a andar.", ["Ele", "pôs-se", "a", "andar", "."]),
    ("Um copo d'água, por favor!", ["Um", "copo", "d'água", ",", "por", "favor", "!"]),
    ("O Sr. Silva e a Sra. Costa.", ["O", "Sr.", "Silva", "e", "a", "Sra.", "Costa", "."]),
    ("Chegou às 10h30.", ["Chegou", "às", "10h30", "."]),
    ("Custou R$ 1.994,20 no total", ["Custou", "R$", "1.994,20", "no", "total"]),
    ("Escreva para ana.silva@exemplo.com.br hoje", ["Escreva", "para", "ana.silva@exemplo.com.br", "hoje"]),
    ("Veja https://pt.wikipedia.org/wiki/Lisboa.", ["Veja", "https://pt.wikipedia.org/wiki/Lisboa", "."]),
    ("Que lindo 🤩🤩 rt @user", ["Que", "lindo", "🤩", "🤩", "rt", "@user"]),
    ("«Fim?» — disse ele…", ["«", "Fim", "?", "»", "—", "disse", "ele", "…"]),
    ("(casa), [rua]; {x}", ["(", "casa", ")", ",", "[", "rua", "]", ";", "{", "x", "}"]),
    ("linha\tcom\u00a0espaços\n  e\r\nquebras", ["linha", "com", "espaços", "e", "quebras"]),
]


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    return Tokenizer()


@pytest.mark.parametrize(("text", "expected"), HARD_CASES)
def test_tokens_hard_cases_match_spacy(tok: Tokenizer, text: str, expected: list[str]) -> None:
    got = tok.tokens(text)
    assert [t.text for t in got] == expected
    assert got == tok.spacy_tokens(text)


def test_tokens_kinds(tok: Tokenizer) -> None:
    kinds = {
        t.text: t.kind for t in tok.tokens("Mande 1.994,20 para ana@x.com.br ou @joao em https://x.pt , dois")
    }
    assert kinds == {
        "Mande": "word",
        "1.994,20": "num",
        "para": "word",
        "ana@x.com.br": "email",
        "ou": "word",
        "@joao": "mention",
        "em": "word",
        "https://x.pt": "url",
        ",": "punct",
        "dois": "num",  # spaCy's Portuguese like_num knows number words
    }


def test_pipe_equals_tokens_and_spacy(tok: Tokenizer) -> None:
    texts = [text for text, _ in HARD_CASES] * 2 + ["", "   "]
    piped = list(tok.pipe(texts, batch_size=3))
    assert piped == [tok.tokens(t) for t in texts]
    assert piped == [tok.spacy_tokens(t) for t in texts]
    assert piped[-1] == []


def test_tokens_stay_exact_when_cache_starts_over(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokenize, "MAX_CACHED_CHUNKS", 3)
    fresh = Tokenizer()
    texts = [text for text, _ in HARD_CASES]
    assert [fresh.tokens(t) for t in texts] == [fresh.spacy_tokens(t) for t in texts]
    assert len(fresh._cache) < 40


def test_raw_token_is_hashable_value() -> None:
    assert RawToken("casa", "word") == RawToken("casa", "word")
    assert len({RawToken("casa", "word"), RawToken("casa", "word")}) == 1


@pytest.mark.slow
def test_tokens_agree_with_spacy_on_real_corpus(tok: Tokenizer) -> None:
    corpus = SHARED_DATA / "corpus"
    with (corpus / "ptwiki-random-2016" / "ptwiki_random_2016.jsonl").open(encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in itertools.islice(fh, 300)]
    with (corpus / "machado-de-assis" / "romance" / "domCasmurro.txt").open(encoding="utf-8") as fh:
        texts += list(itertools.islice(fh, 3000))
    fast = list(tok.pipe(texts))
    reference = [tok.spacy_tokens(t) for t in texts]
    n_tokens = sum(map(len, reference))
    assert n_tokens > 50_000
    assert fast == reference


def test_chunks_are_tokenised_as_spacy_does_them_alone(tok: Tokenizer) -> None:
    # spaCy's own output for "(pt:) )" depends on the ")" after the space (its emoticon matcher looks across
    # spaces); palavra gives every chunk the tokens spaCy gives it when it stands alone, whatever follows
    assert [t.text for t in tok.tokens("(pt:) )")] == ["(", "pt", ":)", ")"]
    assert tok.tokens("(pt:)") == tok.spacy_tokens("(pt:)")
    assert [t.text for t in tok.tokenize_chunks(["(pt:)", ")"])[0]] == ["(", "pt", ":)"]


def test_python_fast_rules_equal_spacy(tok: Tokenizer) -> None:
    stems = [
        "casa",
        "Casa",
        "EUA",
        "A",
        "x",
        "São",
        "ação",
        "dois",
        "Sr",
        "etc",
        "pág",
        "XD",
        "pôs-se",
        "guarda-chuva",
    ]
    marks = ["", *',;:!?)]}"”».-', "...", "..", ").", "),", '",', "!...", "?!", "):", ":)", ":]", ".»", ")):"]
    openers = ["", "(", "«", '"', "“", "((", "'", "''", '("', "[", "{"]
    chunks = [o + s + m for o in openers for s in stems for m in marks]
    chunks += ["1990", "٣", "-se", "casa-", "a--b", "Ωμέγα.", "(Sr.)", "(etc.),", "''Amigos", "(pt:)", "(a):"]
    fast = {c: toks for c in chunks if (toks := tok._easy(c)) is not None}
    assert len(fast) > 1500
    assert list(fast.values()) == tok._hard(list(fast))


def test_a_long_run_of_marks_is_tokenised_in_pieces_in_linear_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """spaCy's affix peeling is quadratic in a chunk's length: 20,000 dashes in one request took 49 s of CPU.

    No whitespace-free stretch longer than ``_LONG_CHUNK`` reaches spaCy now; the tokens are the same.
    """
    tok = Tokenizer()
    # read from spaCy's tokenizer before it is wrapped below
    assert tok._specials
    assert tok._longest_special
    assert tok._num_words
    seen: list[int] = []
    real = tok.nlp.tokenizer

    def recording(text: str):  # type: ignore[no-untyped-def]
        seen.extend(len(chunk) for chunk in text.split())
        return real(text)

    monkeypatch.setattr(tok.nlp, "tokenizer", recording)
    run = "—" * 5_000
    assert [t.text for t in tok.tokens(f"antes {run} depois")] == ["antes", *run, "depois"]
    assert [t.text for t in tok.tokens("«" * 300 + "casa")] == ["«"] * 300 + ["casa"]
    assert max(seen) <= tokenize._LONG_CHUNK
    # chunks up to _LONG_CHUNK characters go to spaCy whole, and longer ones without a long run of marks too:
    # a long URL, word or number is still one token
    url = "https://www.exemplo.com.br/noticias/2023/" + "abcdefghij/" * 17 + "pagina.html"
    for text in ("(http://exemplo.pt/a?b=1)", url, f"({url}),", "a" * 210, "1" * 250):
        assert tok.tokens(text) == Tokenizer().spacy_tokens(text), text
    assert [t.kind for t in tok.tokens(url)] == ["url"]
