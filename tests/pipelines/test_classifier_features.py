from __future__ import annotations

import numpy as np
import pytest

from pipelines.classifier.config import FeatureConfig, classifier_normalize_default
from pipelines.classifier.features import FeatureSpace
from pipelines.classifier.hashing import Bags, char_keys, char_ngrams, stable_hash
from pipelines.classifier.tokens import RegexTokenizer
from pipelines.classifier.vocab import fit_feature_space
from pipelines.text.normalize import NormalizeConfig

TEXTS = [
    "O produto chegou rápido, adorei!!!",
    "Péssimo atendimento @loja_x, nunca mais https://t.co/abc",
    "produto ótimo, chegou em 2 dias",
    "nunca mais compro, péssimo",
]


def loaded(fitted: FeatureSpace) -> FeatureSpace:
    """The space as a loaded model starts: the same rows, an empty token table."""
    return FeatureSpace(
        fitted.config,
        fitted.normalize_config,
        words=fitted.words,
        char_keys=fitted.char_keys,
        word_ngram_keys=fitted.word_ngram_keys,
        idf=fitted.idf,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Vou pôs-se d'água às 10h30!!!",
            [
                ("Vou", "word"),
                ("pôs-se", "word"),
                ("d'água", "word"),
                ("às", "word"),
                ("10h30", "word"),
                ("!!!", "punct"),
            ],
        ),
        (
            "@user_1 veja https://t.co/x… ou a.b@c.com.br",
            [
                ("@user_1", "mention"),
                ("veja", "word"),
                ("https://t.co/x", "url"),
                ("…", "punct"),
                ("ou", "word"),
                ("a.b@c.com.br", "email"),
            ],
        ),
        (
            "R$ 1.000,50 e 3,5 😂😂 🤦\u200d♂️",
            [
                ("R", "word"),
                ("$", "word"),
                ("1.000,50", "num"),
                ("e", "word"),
                ("3,5", "num"),
                ("😂😂", "word"),
                ("🤦♂", "word"),
            ],
        ),
    ],
)
def test_tokens_regex_tokenizer_cuts_and_labels_tokens(text: str, expected: list[tuple[str, str]]) -> None:
    tokens = RegexTokenizer().tokens(text)
    assert [(t.text, t.kind) for t in tokens] == expected
    for tok in tokens:  # a token tokenised again is itself: what lets the classifier cache per token
        assert [(t.text, t.kind) for t in RegexTokenizer().tokens(tok.text)] == [(tok.text, tok.kind)]


def test_tokens_decomposed_accents_stay_in_their_word() -> None:
    assert [t.text for t in RegexTokenizer().tokens("na\u0303o e\u0301")] == ["não", "é"]
    # a byte-order mark inside a text (files joined with cat) is invisible, as zero-width spaces are
    assert [t.text for t in RegexTokenizer().tokens("\ufeffnão \ufeff(é)")] == [
        t.text for t in RegexTokenizer().tokens("não (é)")
    ]


def test_features_space_encodes_words_ngrams_and_unseen_words() -> None:
    config = FeatureConfig(char_ngram_min=3, char_ngram_max=4, ngram_min_count=2)
    space, bags = fit_feature_space(TEXTS, config, classifier_normalize_default())
    assert len(bags) == len(TEXTS)
    assert {"produto", "péssimo", "<user>", "<url>", "!!!"} <= set(space.words)
    assert space.word_ngram_keys.size == 1  # only "nunca mais" is in two texts
    unseen = space.encode(["produtos pessimos"])  # no word row, but shared character n-grams
    ids = unseen.ids
    assert ids.size > 0
    assert ((ids >= space.char_offset) & (ids < space.ngram_offset)).all()
    empty = space.encode(["zzz"])
    assert empty.lengths.tolist() == [0]
    assert empty.unit_counts.tolist() == [0]


def test_features_weights_sum_to_one_per_text_and_units_cover_ids() -> None:
    _, bags = fit_feature_space(TEXTS, FeatureConfig(), classifier_normalize_default())
    ends = np.cumsum(bags.lengths)
    sums = np.add.reduceat(bags.weights, bags.offsets)
    np.testing.assert_allclose(sums, 1.0, rtol=1e-5)
    assert bags.unit_lengths.sum() == bags.ids.size == ends[-1]
    # units run text after text and never straddle two texts
    unit_ends = np.cumsum(bags.unit_lengths)
    text_unit_ends = unit_ends[np.cumsum(bags.unit_counts) - 1]
    np.testing.assert_array_equal(text_unit_ends, ends)


def test_features_take_reorders_texts_with_their_units() -> None:
    space, bags = fit_feature_space(TEXTS, FeatureConfig(), classifier_normalize_default())
    picked = bags.take(np.array([2, 0], dtype=np.int64))
    direct = space.encode([TEXTS[2], TEXTS[0]])
    for field in ("ids", "lengths", "weights", "unit_lengths", "unit_counts"):
        np.testing.assert_array_equal(getattr(picked, field), getattr(direct, field))
    assert isinstance(picked, Bags)


def test_features_follow_the_normalisation_config() -> None:
    folded = NormalizeConfig(fold_accents=True, drop_punctuation=True)
    space, _ = fit_feature_space(TEXTS, FeatureConfig(), folded)
    assert "pessimo" in space.words
    assert "!!!" not in space.words
    assert space.tokens("PÉSSIMO!!!") == ["pessimo"]


def test_features_hashing_is_stable_and_ngrams_are_padded() -> None:
    assert stable_hash("ção") == 1944452944  # CRC-32: the same in every process and on every machine
    assert char_ngrams("ab", 2, 3) == ["<a", "ab", "b>", "<ab", "ab>"]


@pytest.mark.parametrize("word", ["ab", "chegouuuuu", "direção", "ÅNGSTRÖM", "😂😂", "x" * 60, "<url>"])
def test_features_char_keys_are_the_sorted_distinct_hashes_of_the_ngrams(word: str) -> None:
    expected = [] if word == "<url>" else sorted({stable_hash(g) for g in char_ngrams(word, 3, 5)})
    assert char_keys(word, 3, 5) == expected


@pytest.mark.parametrize(
    "chunk",
    ["palavra", "Direção", "A\u030a", "\u212bngstrom", "chegouuuu,", "@user", "kkkk😂", "10h30", "d'água"],
)
def test_tokens_chunks_cut_as_the_regex_does(chunk: str) -> None:
    tokenizer = RegexTokenizer()
    assert tokenizer.tokenize_chunks([chunk]) == [tuple(tokenizer.tokens(chunk))]


def test_tokens_every_letter_is_one_word_for_the_regex_too() -> None:
    """The fast path's premise, for every code point: a letter the regex would cut differently is a bug."""
    import sys
    import unicodedata

    from pipelines.text.tokenize import RawToken

    tokenizer = RegexTokenizer()
    letters = [chr(i) for i in range(sys.maxunicode + 1) if chr(i).isalpha()]
    assert len(letters) > 100_000
    odd = [
        c
        for c in letters
        if unicodedata.is_normalized("NFC", c) and tokenizer.tokens(c) != [RawToken(c, "word")]
    ]
    assert odd == []


def test_features_encoding_keeps_chunks_once_and_matches_the_normalizer() -> None:
    space, _ = fit_feature_space(TEXTS, FeatureConfig(), classifier_normalize_default())
    texts = ['Nunca mais!!! Péssimo... "sério". 😂 https://x.y/z', "ÓTIMO produto, chegou."]
    chunks = [c for t in texts for c in t.split()]
    assert space.normalizer.normalize_chunks(chunks) == [tuple(space.normalizer.tokens(c)) for c in chunks]
    probe = loaded(space)
    probe.encode(texts)
    assert not probe.normalizer._flat  # the token table is the only memory of these chunks
    assert set(chunks) <= set(probe._table.raw)


def test_features_bigrams_are_per_text() -> None:
    config = FeatureConfig(char_ngram_min=0, ngram_min_count=1)
    space, _ = fit_feature_space(["a b", "c d"], config, classifier_normalize_default())
    assert space.word_ngram_keys.size == 2  # "a b" and "c d", never "b c" across texts
    bags = space.encode(["a b", "b c"])
    assert bags.lengths.tolist() == [3, 2]  # a, b, "a b" | b, c


def test_features_warm_vocabulary_gives_the_same_bags() -> None:
    fitted, _ = fit_feature_space(TEXTS, FeatureConfig(ngram_min_count=1), classifier_normalize_default())

    cold, warmed = loaded(fitted), loaded(fitted)
    assert warmed.warm() == len(fitted.words)
    assert warmed.warm() == 0  # already there
    assert set(fitted.words) <= set(
        warmed._table.raw
    )  # each word is also a known chunk: no tokenising it again
    texts = [*TEXTS, "produtos pessimos chegaram", "zzz"]
    a, b = cold.encode(texts), warmed.encode(texts)
    for field in ("ids", "lengths", "weights", "unit_lengths", "unit_counts"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


def test_features_a_full_token_table_restarts_warm(monkeypatch: pytest.MonkeyPatch) -> None:
    import pipelines.classifier.features as features

    fitted, _ = fit_feature_space(TEXTS, FeatureConfig(ngram_min_count=1), classifier_normalize_default())
    monkeypatch.setattr(features, "TABLE_LIMIT", 3)
    space = loaded(fitted)
    space.warm()
    first = space._table
    assert not first.full  # the vocabulary does not count toward the limit
    space.encode([f"zzz{i} yyy{i}" for i in range(4)])  # fills it
    texts = ["www novo", TEXTS[0]]
    bags = space.encode(texts)
    assert space._table is not first  # full: this batch started a new table
    assert set(fitted.words) <= set(space._table.raw)  # ... warmed like the first
    expected = fitted.encode(texts)
    for field in ("ids", "lengths", "weights", "unit_lengths", "unit_counts"):
        np.testing.assert_array_equal(getattr(bags, field), getattr(expected, field))
