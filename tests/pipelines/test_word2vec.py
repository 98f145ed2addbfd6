"""Word2Vec / FastText training through the pipeline: config, artifacts, progress, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.errors import CorpusError, EmptyCorpus, InvalidConfig, InvalidInput
from models.registry import ModelVersion, Registry
from models.vectors import WordVectors
from pipelines.reading.datasets import DataCatalog
from pipelines.runs.progress import Progress
from pipelines.serving.served_vectors import load_served_vectors
from pipelines.word2vec.config import Word2VecConfig, Word2VecRun, load_run
from pipelines.word2vec.train import fit, train_word2vec

SMALL = {"vector_size": 12, "epochs": 3, "min_count": 2, "workers": 1, "bucket": 5000}


def _run(corpus: Path, **train: Any) -> Word2VecRun:
    return Word2VecRun(name="m", corpus=[str(corpus)], train={**SMALL, **train}, evaluate=False)


def test_config_defaults_are_fasttext_and_map_to_gensim() -> None:
    cfg = Word2VecConfig()
    kwargs = cfg.gensim_kwargs()
    assert cfg.algorithm == "fasttext"
    assert kwargs["bucket"] == cfg.bucket
    hs = Word2VecConfig(algorithm="word2vec", loss="hs", architecture="cbow").gensim_kwargs()
    assert (hs["hs"], hs["negative"], hs["sg"]) == (1, 0, 0)
    assert "bucket" not in hs


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ('name = "m"\ncorpus = ["x"]\n[train]\nepoch = 3\n', "train.epoch"),
        ('name = "m"\ncorpus = ["x"]\n[train]\nmin_n = 5\nmax_n = 3\n', "train"),
        ('name = "m"\ncorpus = ["x"]\n[train]\nalgorithm = "glove"\n', "train.algorithm"),
        ('corpus = ["x"]\n', "name"),
    ],
)
def test_config_toml_errors_name_the_field(tmp_path: Path, toml: str, field: str) -> None:
    path = tmp_path / "run.toml"
    path.write_text(toml, encoding="utf-8")
    with pytest.raises(InvalidConfig, match=f"field '{field}'"):
        load_run(path)


def test_config_command_line_overrides_toml(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text('name = "a"\ncorpus = ["x"]\n[train]\nepochs = 9\nwindow = 3\n', encoding="utf-8")
    run = load_run(path, overrides={"name": "b", "corpus": None}, train_overrides={"epochs": 2})
    assert (run.name, run.corpus, run.train.epochs, run.train.window) == ("b", ["x"], 2, 3)


def test_fit_reports_every_epoch_with_word2vec_loss(pt_corpus_file: Path, tmp_path: Path) -> None:
    from pipelines.text.normalize import NormalizeConfig
    from pipelines.text.preprocess import prepare_corpus

    prepared = prepare_corpus([pt_corpus_file], NormalizeConfig(), cache_dir=tmp_path, workers=1)
    seen: list[Progress] = []
    trained = fit(prepared.path, Word2VecConfig(algorithm="word2vec", **SMALL), progress=seen.append)
    epochs = [p for p in seen if p.stage == "train" and p.epoch]
    assert [p.epoch for p in epochs] == [1, 2, 3]
    assert epochs[-1].fraction == pytest.approx(1.0)
    assert [(p.done, p.total, p.unit) for p in epochs] == [(i, 3, "epoch") for i in (1, 2, 3)]
    # counting the vocabulary is announced before it starts (it was a silent pause after the corpus bar)
    assert seen[0].stage == "vocabulary"
    assert all(p.loss is not None and p.loss > 0 for p in epochs)
    assert len(trained.epochs) == 3
    assert trained.words_per_second > 0
    assert trained.corpus_words == prepared.n_tokens


def test_train_registers_vectors_config_normalize_and_metadata(
    w2v_model: ModelVersion, registry: Registry
) -> None:
    artifact = registry.open(w2v_model.ref, kind="word2vec")
    for rel in (
        "vocab.json",
        "vectors.npy",
        "vectors_norm.npy",
        "counts.npy",
        "config.json",
        "normalize.json",
    ):
        assert artifact.exists(rel), rel
    config = artifact.read_json("config.json")
    assert config["train"]["algorithm"] == "word2vec"
    assert artifact.read_json("normalize.json")["lowercase"] is True
    meta = w2v_model.metadata
    assert meta["corpus"]["tokens"] > 4000
    assert len(meta["data_hash"]) == 64
    assert meta["training"]["words_per_second"] > 0
    assert len(meta["training"]["epochs"]) == config["train"]["epochs"]
    vectors = WordVectors.load(artifact)
    assert "rei" in vectors  # lowercased, as the normaliser says
    assert "Rei" not in vectors
    counts = np.asarray(vectors.counts)
    assert np.all(np.diff(counts) <= 0)  # frequency order


def test_trained_word2vec_neighbours_reflect_the_corpus(w2v_model: ModelVersion, registry: Registry) -> None:
    emb = load_served_vectors(registry.open(w2v_model.ref))
    (found,) = emb.neighbors(["Verão"], k=3)
    assert "inverno" in [n.word for n in found.neighbors]


def test_fasttext_model_gives_unknown_words_subword_vectors(
    ft_model: ModelVersion, registry: Registry
) -> None:
    artifact = registry.open(ft_model.ref, kind="fasttext")
    vectors = WordVectors.load(artifact)
    assert vectors.has_subwords
    assert "reinos" not in vectors
    (found,) = load_served_vectors(artifact).neighbors(["reinos"], k=5)
    assert "reino" in [n.word for n in found.neighbors]


def test_fasttext_vectors_match_gensim_for_unknown_words(pt_corpus_file: Path, tmp_path: Path) -> None:
    from gensim.models import FastText

    from pipelines.word2vec.convert import from_keyed_vectors

    model = FastText(vector_size=8, min_count=2, epochs=1, workers=1, bucket=3000)
    model.build_vocab(corpus_file=str(pt_corpus_file))
    model.train(
        corpus_file=str(pt_corpus_file), total_words=model.corpus_total_words, epochs=1, total_examples=600
    )
    vectors = from_keyed_vectors(model)
    np.testing.assert_allclose(vectors.vector("castelos"), model.wv["castelos"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(vectors.vector("castelo"), model.wv["castelo"], rtol=1e-5, atol=1e-6)


def test_train_twice_reuses_the_prepared_corpus(
    pt_corpus_file: Path, registry: Registry, tmp_path: Path
) -> None:
    catalog = DataCatalog(None, tmp_path / "cache")
    first = train_word2vec(_run(pt_corpus_file), registry=registry, catalog=catalog, cache_dir=tmp_path / "c")
    second = train_word2vec(
        _run(pt_corpus_file), registry=registry, catalog=catalog, cache_dir=tmp_path / "c"
    )
    assert (first.version, second.version) == (1, 2)
    assert first.metadata["corpus"]["cache_hit"] is False
    assert second.metadata["corpus"]["cache_hit"] is True
    assert first.metadata["data_hash"] == second.metadata["data_hash"]


def test_train_ends_with_a_final_report_saying_why_it_stopped(
    pt_corpus_file: Path, registry: Registry, tmp_path: Path
) -> None:
    seen: list[Progress] = []
    catalog = DataCatalog(None, tmp_path / "cache")
    version = train_word2vec(
        _run(pt_corpus_file, word_weight=0.0),
        registry=registry,
        catalog=catalog,
        cache_dir=tmp_path / "c",
        progress=seen.append,
    )
    assert [p.stage for p in seen if p.final] == ["done"]
    assert seen[-1].final
    assert seen[-1].message is not None
    assert "training stopped after all 3/3 epochs" in seen[-1].message
    assert f"registered {version.ref}" in seen[-1].message
    preprocess = [p for p in seen if p.stage == "preprocess" and p.total is not None]
    assert preprocess[-1].done == preprocess[-1].total
    assert preprocess[-1].unit == "B"


def test_train_with_phrases_saves_them(tmp_path: Path, registry: Registry) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text(
        "\n".join(["ele mora em são paulo hoje", "ela viu são paulo ontem"] * 40), encoding="utf-8"
    )
    run = Word2VecRun(
        name="p",
        corpus=[str(corpus)],
        phrases={"min_count": 2, "threshold": 0.1},
        train={**SMALL, "algorithm": "word2vec"},
        evaluate=False,
    )
    mv = train_word2vec(run, registry=registry, catalog=DataCatalog(None, tmp_path), cache_dir=tmp_path / "c")
    artifact = registry.open(mv.ref)
    assert artifact.exists("phrases.json")
    emb = load_served_vectors(artifact)
    assert emb.token("São Paulo") == "são_paulo"
    assert "são_paulo" in emb.word_vectors


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        ("\n\n   \n", EmptyCorpus, "no tokens"),
        ("uma frase só\n", EmptyCorpus, "min_count"),
        (b"\x00\x01\x02binary", CorpusError, "binary"),
    ],
)
def test_train_bad_corpus_registers_nothing(
    tmp_path: Path, registry: Registry, content: str | bytes, error: type[Exception], message: str
) -> None:
    corpus = tmp_path / "bad.txt"
    if isinstance(content, bytes):
        corpus.write_bytes(content)
    else:
        corpus.write_text(content, encoding="utf-8")
    with pytest.raises(error, match=message):
        train_word2vec(
            _run(corpus, min_count=5),
            registry=registry,
            catalog=DataCatalog(None, tmp_path),
            cache_dir=tmp_path,
        )
    assert registry.list() == []
    staging = registry.root / ".staging"
    assert not staging.exists() or not any(staging.iterdir())


def test_train_evaluates_when_asked(pt_corpus_file: Path, registry: Registry, tmp_path: Path) -> None:
    analogies = tmp_path / "a.txt"
    analogies.write_text(
        ": family\nrei rainha príncipe princesa\nmédico médica rei rainha\n", encoding="utf-8"
    )
    pairs = tmp_path / "p.tsv"
    pairs.write_text("w1\tw2\tscore\nrei\trainha\t8\ngato\tcão\t6\nverão\tinverno\t5\nrei\tjantar\t1\n")
    run = Word2VecRun(
        name="e",
        corpus=[str(pt_corpus_file)],
        train={**SMALL, "algorithm": "word2vec"},
        evaluation={"analogies": [str(analogies)], "pairs": [str(pairs)]},
    )
    mv = train_word2vec(run, registry=registry, catalog=DataCatalog(None, tmp_path), cache_dir=tmp_path / "c")
    metrics = mv.metadata["metrics"]
    assert metrics["analogies"][str(analogies)]["questions"] == 2
    assert metrics["pairs"][str(pairs)]["used"] == 4


def test_all_but_the_top_centres_and_transforms_subwords_consistently() -> None:
    from pipelines.word2vec.postprocess import all_but_the_top, default_components

    rnd = np.random.default_rng(5)
    shared = rnd.normal(size=20) * 5
    words = [f"palavra{i}" for i in range(300)]
    vectors = (rnd.normal(size=(300, 20)) + shared).astype(np.float32)
    ngrams = (rnd.normal(size=(500, 20)) + shared).astype(np.float32)
    twin = WordVectors(["x"], vectors[:1], ngrams=ngrams).vector("desconhecida")
    vectors[-1] = twin  # "palavra299" has exactly the subword vector of the unknown "desconhecida"
    wv = WordVectors(words, vectors, counts=np.arange(300, 0, -1), ngrams=ngrams)
    out, info = all_but_the_top(wv, 2)
    assert info["components"] == 2
    assert np.abs(np.asarray(out.vectors).mean(axis=0)).max() < 1e-4
    # n-gram buckets go through the same affine map, so an unknown word lands where its twin does
    np.testing.assert_allclose(out.vector("desconhecida"), out.vector("palavra299"), atol=1e-5)
    assert not np.allclose(out.vector("palavra299"), wv.vector("palavra299"), atol=1e-2)
    # the paper's one per 100 dimensions; the FastText half of a joined model three per 200 (SimLex 0.295 ->
    # 0.308: results/word2vec.md, "Three directions from the FastText half")
    assert [default_components(d) for d in (2, 100, 200, 300)] == [1, 1, 2, 3]
    assert [default_components(d, subword=True) for d in (2, 50, 100, 200, 300)] == [1, 1, 2, 3, 5]


def test_quickstart_config_is_a_valid_run_of_catalogue_corpora() -> None:
    repo = Path(__file__).resolve().parents[2]
    run = load_run(repo / "configs" / "quickstart-word2vec.toml")
    catalog = DataCatalog(None, repo / ".no-cache")
    assert run.train.algorithm == "fasttext"
    # the n-gram matrix stays small: rows x dimensions x 4 bytes
    assert run.train.bucket * run.train.vector_size * 4 <= 100 * 2**20
    assert {catalog.get(name).kind for name in run.corpus} == {"corpus"}
    # the settings it was measured with, whatever the library's defaults (BENCHMARKS.md, "Quick start vectors")
    half = run.train.word_model_config()
    assert (half.architecture, half.window, half.epochs, half.sample, half.alpha, half.vector_size) == (
        "skipgram",
        5,
        5,
        1e-4,
        0.025,
        100,
    )
    assert (run.train.epochs, run.train.abtt_directions()) == (5, (1, 1))
    assert (run.train.min_n, run.train.max_n, run.train.bucket) == (3, 6, 200_000)


JOINED = {
    "word_weight": 0.5,
    "word_weight_rare": None,
    "word_vector_size": 6,
    "word_epochs": 2,
    "postprocess": "none",
}


def test_joined_fit_trains_fasttext_then_a_word_level_half(pt_corpus_file: Path, tmp_path: Path) -> None:
    from pipelines.text.normalize import NormalizeConfig
    from pipelines.text.preprocess import prepare_corpus

    prepared = prepare_corpus([pt_corpus_file], NormalizeConfig(), cache_dir=tmp_path, workers=1)
    seen: list[Progress] = []
    trained = fit(prepared.path, Word2VecConfig(**SMALL, **JOINED), progress=seen.append)
    epochs = [p for p in seen if p.stage == "train" and "epoch " in (p.message or "")]
    # one bar over both models: 3 FastText epochs then 2 word-level ones, out of 5
    assert [(p.done, p.total) for p in epochs] == [(i, 5) for i in range(1, 6)]
    assert [e["model"] for e in trained.epochs] == ["fasttext"] * 3 + ["word2vec"] * 2
    assert epochs[-1].message.startswith("word2vec epoch 2/2")
    wv = trained.vectors
    assert wv.dim == 18
    assert wv.ngrams is not None
    assert wv.ngrams.shape == (5000, 12)
    known = wv.vector("castelo")  # each unit half weighted 0.5
    assert np.linalg.norm(known[:12]) == pytest.approx(0.5, rel=1e-4)
    assert np.linalg.norm(known[12:]) == pytest.approx(0.5, rel=1e-4)
    # not in the corpus: its n-grams, and the word-level half they predict
    unknown = wv.vector("castelozinhos")
    assert "castelozinhos" not in wv
    assert np.any(unknown[:12])
    assert wv.subword_map is not None
    assert np.allclose(unknown[12:], unknown[:12] @ wv.subword_map, atol=1e-6)
    assert np.any(unknown[12:])
    assert wv.neighbors(["castelozinhos"], k=3)[0]


def test_join_weights_the_two_similarities() -> None:
    from pipelines.word2vec.convert import join

    rnd = np.random.default_rng(1)
    words = ["a", "b", "c"]
    sub = WordVectors(words, rnd.normal(size=(3, 4)), ngrams=rnd.normal(size=(50, 4)))
    word = WordVectors(["c", "b", "a", "extra"], rnd.normal(size=(4, 3)))
    for weight in (0.5, 0.8):
        joined = join(sub, word, weight=weight)
        cos_sub = float(sub.normed[0] @ sub.normed[1])
        cos_word = float(word.normed[2] @ word.normed[1])
        expected = ((1 - weight) ** 2 * cos_sub + weight**2 * cos_word) / ((1 - weight) ** 2 + weight**2)
        assert joined.similarity([("a", "b")])[0] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(InvalidInput, match=r"in \[0, 1\)"):
        join(sub, word, weight=1.0)
    with pytest.raises(InvalidInput, match="not all 0"):
        join(sub, word, weight=0.0)
    # one weight per word: "a" keeps only its subword half, "b" is mostly word-level
    per_word = join(sub, word, weight=np.array([0.0, 0.9, 0.5]))
    a, b = per_word.vector("a"), per_word.vector("b")
    assert not np.any(a[4:])
    assert np.linalg.norm(b[4:]) == pytest.approx(0.9, rel=1e-5)
    assert np.linalg.norm(b[:4]) == pytest.approx(0.1, rel=1e-4)
    with pytest.raises(InvalidInput, match="n-grams"):
        join(word, sub, weight=0.5)
    # the map from the n-gram half to the word-level half is fitted on the vocabulary: an exact linear relation
    # between the halves is recovered, so an unknown word's word-level half is what its n-grams imply
    left = rnd.normal(size=(200, 4))
    relation = rnd.normal(size=(4, 3))
    names = [f"w{i}" for i in range(200)]
    linear = join(
        WordVectors(names, left, ngrams=rnd.normal(size=(50, 4))),
        WordVectors(names, left @ relation),
        weight=0.5,
    )
    assert linear.subword_map is not None
    unknown = linear.vector("desconhecida")
    assert np.allclose(unknown[4:], unknown[:4] @ linear.subword_map)
    rows = linear.vectors[:, :4] @ linear.subword_map  # the known words' own halves, predicted
    assert np.corrcoef(rows.ravel(), linear.vectors[:, 4:].ravel())[0, 1] > 0.9
    with pytest.raises(InvalidInput, match="1 words of the subword model lack"):
        join(sub, WordVectors(["a", "b"], np.ones((2, 3))), weight=0.5)


def test_vectors_refuse_ngram_rows_wider_than_the_vectors() -> None:
    with pytest.raises(InvalidInput, match="do not fit"):
        WordVectors(["a"], np.ones((1, 4)), ngrams=np.ones((10, 5)))


def test_word_level_settings_are_for_fasttext_only() -> None:
    with pytest.raises(ValueError, match="only for algorithm"):
        Word2VecConfig(algorithm="word2vec", word_weight=0.5)
    # a config written to disk and read back (as jobs do) carries every key, and stays valid
    plain = Word2VecConfig(algorithm="word2vec")
    assert Word2VecConfig.model_validate(plain.model_dump()) == plain
    # all-but-the-top is the default of a joined model only
    assert (plain.postprocess, Word2VecConfig().postprocess, Word2VecConfig(word_weight=0).postprocess) == (
        "none",
        "abtt",
        "none",
    )
    cfg = Word2VecConfig(word_weight=0.3, word_epochs=3)
    assert cfg.joined
    assert not Word2VecConfig(algorithm="word2vec").joined
    ramp = Word2VecConfig(word_weight=0.8, word_weight_rare=0.4, word_weight_count=100)
    np.testing.assert_allclose(ramp.word_weights(np.array([0, 100, 10**9])), [0.4, 0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(
        cfg.word_weights(np.array([1, 10**6])), [0.3, 0.3]
    )  # default ramp capped at 0.3
    flat = Word2VecConfig(word_weight=0.5, word_weight_rare=None)
    np.testing.assert_allclose(flat.word_weights(np.array([1, 10**6])), [0.5, 0.5])
    with pytest.raises(ValueError, match="must not exceed word_weight"):
        Word2VecConfig(word_weight=0.3, word_weight_rare=0.5)
    half = cfg.word_model_config()
    assert (half.algorithm, half.epochs, half.vector_size, half.joined) == (
        "word2vec",
        3,
        cfg.vector_size,
        False,
    )
    assert "bucket" not in half.gensim_kwargs()
    # the word-level half downsamples frequent words more strongly than FastText unless told otherwise
    assert (half.sample, cfg.sample, half.gensim_kwargs()["sample"]) == (3e-5, 1e-4, 3e-5)
    assert Word2VecConfig(word_sample=None).word_model_config().sample == 1e-4
    assert Word2VecConfig(word_sample=1e-5).word_model_config().sample == 1e-5
    with pytest.raises(ValueError, match='word_sample: only for algorithm = "fasttext"'):
        Word2VecConfig(algorithm="word2vec", word_sample=1e-5)
    # the word-level half's own window (the semantic section rose with a wider one: results/word2vec.md)
    assert (Word2VecConfig().window, Word2VecConfig().word_model_config().window) == (5, 10)
    assert Word2VecConfig(word_window=None).word_model_config().window == 5
    wide = Word2VecConfig(word_window=15)
    assert (
        wide.window,
        wide.word_model_config().window,
        wide.word_model_config().gensim_kwargs()["window"],
    ) == (
        5,
        15,
        15,
    )
    with pytest.raises(ValueError, match='word_window: only for algorithm = "fasttext"'):
        Word2VecConfig(algorithm="word2vec", word_window=15)
    with pytest.raises(ValueError, match='word_abtt_components: only for algorithm = "fasttext"'):
        Word2VecConfig(algorithm="word2vec", word_abtt_components=3)
    # the word-level half's own architecture, and its learning rate: CBOW's is doubled unless given
    cbow = Word2VecConfig(word_architecture="cbow").word_model_config()
    assert (cbow.architecture, cbow.alpha, cbow.gensim_kwargs()["sg"], cbow.gensim_kwargs()["alpha"]) == (
        "cbow",
        0.05,
        0,
        0.05,
    )
    assert Word2VecConfig(word_architecture="cbow", word_alpha=0.03).word_model_config().alpha == 0.03
    assert Word2VecConfig(word_architecture="skipgram").word_model_config().alpha == 0.025
    both = Word2VecConfig(architecture="cbow", alpha=0.04).word_model_config()
    assert (both.architecture, both.alpha) == ("cbow", 0.04)  # CBOW throughout: alpha as given
    with pytest.raises(ValueError, match="word_alpha, word_architecture: only for algorithm"):
        Word2VecConfig(algorithm="word2vec", word_architecture="skipgram", word_alpha=0.05)
    with pytest.raises(ValueError, match=r"min_alpha \(0.01\) must not exceed word_alpha \(0.005\)"):
        Word2VecConfig(min_alpha=0.01, word_alpha=0.005)


def test_the_default_word_level_half_is_a_window_10_cbow() -> None:
    # results/word2vec.md, "A CBOW word-level half": FastText 8 epochs, CBOW window 10, 10 epochs, rate 0.05
    cfg = Word2VecConfig()
    half = cfg.word_model_config()
    assert (cfg.epochs, cfg.architecture, cfg.alpha) == (8, "skipgram", 0.025)
    assert (half.architecture, half.window, half.epochs, half.alpha, half.sample) == (
        "cbow",
        10,
        10,
        0.05,
        3e-5,
    )


def test_the_default_takes_n_grams_3_to_5_in_500k_buckets_and_weighs_rare_words_0_38() -> None:
    # results/word2vec.md, "Character n-grams 3-5 in 500k buckets": 11% less FastText training than 3-6, analogies
    # as good, and the n-gram rows half the size of 1M buckets'; rare words lean a little more on the CBOW half
    cfg = Word2VecConfig()
    assert (cfg.min_n, cfg.max_n, cfg.bucket) == (3, 5, 500_000)
    assert (cfg.word_weight_rare, cfg.word_weight, cfg.word_weight_count) == (0.38, 0.70, 300)
    assert cfg.word_weights(np.array([0, 300, 10**9])) == pytest.approx([0.38, 0.54, 0.70])
    assert (cfg.gensim_kwargs()["max_n"], cfg.gensim_kwargs()["bucket"]) == (5, 500_000)
    # the word-level half has no n-grams whatever the FastText half takes
    assert "bucket" not in cfg.word_model_config().gensim_kwargs()


def test_a_stored_joined_config_from_before_word_architecture_keeps_its_skip_gram_half() -> None:
    """A joined job queued before word_architecture existed was stored with every key of its release but that one;
    run now, its word-level half is still a skip-gram at its own rate, not today's CBOW default."""
    from services.jobs.kinds import job_kind

    train = Word2VecConfig(
        epochs=6, word_window=None, word_epochs=8, word_architecture="skipgram"
    ).model_dump()
    del train["word_architecture"], train["word_alpha"]
    old = {"name": "v", "corpus": ["x.txt"], "train": train}
    half = job_kind("word2vec").validate(old, stored=True).train.word_model_config()  # type: ignore[attr-defined]
    assert (half.architecture, half.window, half.epochs, half.alpha) == ("skipgram", 5, 8, 0.025)
    # a new submission without the key takes today's default
    fresh = job_kind("word2vec").validate(old).train.word_model_config()  # type: ignore[attr-defined]
    assert (fresh.architecture, fresh.alpha) == ("cbow", 0.05)


def test_a_stored_plain_word2vec_config_from_other_defaults_still_runs() -> None:
    """A job's config is stored written out: a plain Word2Vec job queued under another release's defaults for the
    word-level half carries those values, and must still run after the defaults moved; a new submission with them
    is refused, as any word-level key on plain Word2Vec is."""
    from services.jobs.kinds import job_kind

    old = {
        "name": "w2v",
        "corpus": ["x.txt"],
        "train": {"algorithm": "word2vec", "word_epochs": 7, "word_window": 15},
    }
    run = job_kind("word2vec").validate(old, stored=True)
    assert run.train.algorithm == "word2vec"  # type: ignore[attr-defined]
    with pytest.raises(InvalidConfig, match='word_epochs, word_window: only for algorithm = "fasttext"'):
        job_kind("word2vec").validate(old)


def test_joined_model_round_trips_through_the_registry(pt_corpus_file: Path, registry: Registry) -> None:
    # the default weights and post-processing, with the word-level half's own count of directions
    run = _run(pt_corpus_file, word_vector_size=6, word_epochs=2, word_abtt_components=2)
    seen: list[Progress] = []
    version = train_word2vec(
        run,
        registry=registry,
        catalog=DataCatalog(None, registry.home / "ds"),
        cache_dir=registry.home / "c",
        progress=seen.append,
    )
    assert version.kind == "fasttext"
    emb = load_served_vectors(registry.open(version.ref))
    assert emb.word_vectors.dim == 18
    (found,) = emb.neighbors(["reinos"], k=5)  # unknown: answered from the n-gram half
    assert "reino" in [n.word for n in found.neighbors]
    assert "all 3 FastText and 2 word-level epochs" in seen[-1].message
    assert "joined with word weight 0.38 (rare words) to 0.7 (frequent words)" in seen[-1].message
    post = version.metadata["training"]["postprocess"]  # both halves
    assert (post["fasttext"]["components"], post["word2vec"]["components"]) == (1, 2)
    # its epoch losses are the word-level half's (the note said only that FastText computes none)
    assert "the losses are the word-level half's" in version.metadata["training"]["loss_note"]
