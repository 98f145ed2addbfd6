"""Training, completion, generation and evaluation of a tiny neural language model on the fixtures' sentences."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.errors import InvalidConfig, InvalidInput
from models.lm import EOS, PARAGRAPH, UNK, NextTokens
from models.registry import Registry
from pipelines.lm.config import make_run
from pipelines.lm.data import Vocabulary, contexts_of, documents, split_holdout, with_boundaries
from pipelines.lm.predictor import LanguageModel, Sampling, detokenize
from pipelines.lm.train import token_log_probs
from pipelines.reading.datasets import DataCatalog
from tests.conftest import _VERBS
from tests.lm_helpers import TINY, train_tiny_lm


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, pt_corpus_file: Path) -> tuple[Registry, LanguageModel]:
    home = tmp_path_factory.mktemp("lm")
    registry = Registry(home)
    version = train_tiny_lm(registry, pt_corpus_file, home / "cache")
    return registry, LanguageModel.from_artifact(registry.open(version.ref, kind="lm"))


def test_boundaries_are_tokens() -> None:
    assert with_boundaries(["o", "rei", "chegou", ".", "a", "rainha", "saiu"]) == [
        "o", "rei", "chegou", ".", EOS, "a", "rainha", "saiu", EOS, PARAGRAPH,
    ]  # fmt: skip
    assert with_boundaries(["oi", "!"], paragraph=False) == ["oi", "!", EOS]


# a page of a PDF extraction, tokenised: lines break mid-sentence; a dialogue line opens a paragraph
WRAPPED = [
    "o doutor chegou a itaguaí , e entregou-se de corpo e",
    "alma ao estudo da ciência , alternando as curas com as",
    "leituras .",
    "— a ciência , disse ele , é o meu emprego único ;",
    "itaguaí é o meu universo . »",
    "dito isso , meteu-se em casa e não",
    "— saiu mais",
]


def test_hard_wrapped_lines_are_joined_into_paragraphs_and_others_kept() -> None:
    docs, wrapped = documents(WRAPPED)
    assert wrapped
    assert docs == [
        "o doutor chegou a itaguaí , e entregou-se de corpo e alma ao estudo da ciência , alternando as curas "
        "com as leituras .",
        "— a ciência , disse ele , é o meu emprego único ; itaguaí é o meu universo . »",
        "dito isso , meteu-se em casa e não",
        "— saiu mais",
    ]
    one_per_line = ["o rei chegou .", "a rainha saiu !", "capítulo i", "o povo ( todo ) aplaudiu . )"]
    assert documents(one_per_line) == (one_per_line, False)
    # short documents without final punctuation (tweets, titles) do not fill a width: they are not joined
    tweets = [
        "que jogo", "bom dia a todos vocês que acordaram cedo hoje", "kkkk", "alguém viu o gol de ontem ?",
        "isso é um absurdo mesmo", "vou dormir", "nossa que calor insuportável nesta cidade hoje",
    ]  # fmt: skip
    assert documents(tweets * 10) == (tweets * 10, False)
    # nor are JSON lines or CSV rows, whatever they hold
    assert documents(WRAPPED, plain_text=False) == (WRAPPED, False)


def test_training_reads_a_catalogue_entry_part_by_part_and_joins_a_wrapped_one(tmp_path: Path) -> None:
    from pipelines.lm.train import load_lines
    from pipelines.runs.progress import ignore_progress

    wrapped = tmp_path / "wrapped.txt"
    wrapped.write_text(
        "\n".join(["O doutor chegou a Itaguaí e", "entregou-se ao estudo da", "ciência."] * 40) + "\n",
        encoding="utf-8",
    )
    lines = tmp_path / "lines.txt"
    lines.write_text(
        "\n".join(f"O rei chegou {'muitas ' * i}vezes." for i in range(200)) + "\n", encoding="utf-8"
    )
    catalog = DataCatalog(None, tmp_path)
    run = make_run({"name": "m", "corpus": [str(wrapped), str(lines)], **TINY, "holdout": 0.01})
    train, held, facts = load_lines(
        run, catalog=catalog, cache_dir=tmp_path, report=ignore_progress, limits=None
    )
    assert [(s["wrapped"], s["lines"], s["documents"], s["held_out"]) for s in facts["sources"]] == [
        (True, 120, 40, 1), (False, 200, 200, 2),
    ]  # fmt: skip
    assert held[0] == "o doutor chegou a itaguaí e entregou-se ao estudo da ciência ."
    assert held[1:] == [f"o rei chegou {'muitas ' * i}vezes ." for i in (198, 199)]
    assert len(train) == 39 + 198
    # corpus-all is its three parts: each is prepared, joined and held out on its own
    assert catalog.sources("corpus-all") == ["corpus-machado", "corpus-eltec", "corpus-ptwiki"]
    assert catalog.sources(str(lines)) == [str(lines)]


def test_holdout_is_the_last_lines_and_never_trained_on() -> None:
    lines = [f"linha {i}" for i in range(200)]
    train, held = split_holdout(lines, 0.01)
    assert held == ["linha 198", "linha 199"]
    assert train == lines[:198]
    assert split_holdout(["só uma"], 0.01) == (["só uma"], [])


def test_vocabulary_is_in_frequency_order_with_unknown_words_counted() -> None:
    vocab = Vocabulary.build(["a b a c .", "a b d"], max_size=5, min_count=1)
    assert vocab.counts == sorted(vocab.counts, reverse=True)
    assert {EOS, PARAGRAPH, UNK} <= set(vocab.tokens)
    assert len(vocab.tokens) == 5
    ids = vocab.encode(["a z"])
    assert vocab.tokens[ids[1]] == UNK
    ctx = contexts_of(np.array([7, 8, 9]), 2, pad=0)
    assert ctx.tolist() == [[0, 0], [0, 7], [7, 8]]


def test_training_registers_a_model_that_learned_the_corpus(tiny: tuple[Registry, LanguageModel]) -> None:
    registry, model = tiny
    mv = registry.get("tiny-lm")
    training = mv.metadata["training"]
    history = training["history"]
    assert mv.kind == "lm"
    assert (mv.path / "history.png").stat().st_size > 1000
    assert training["held_out_tokens"] > 0
    assert mv.metadata["corpus"]["sources"][0]["held_out"] == 30
    # the corpus is a handful of templates: far below the vocabulary size (a model that learned nothing)
    assert history[-1]["val_perplexity"] < history[0]["val_perplexity"]
    assert training["val_perplexity"] < training["vocabulary"] / 4
    assert model.lm.shape.context == 3


def test_complete_proposes_the_corpus_verbs(tiny: tuple[Registry, LanguageModel]) -> None:
    _, model = tiny
    result = model.complete("O menino", k=3)
    assert result["tokens"] == ["o", "menino"]
    assert result["candidates"][0]["word"] in _VERBS
    probs = [c["probability"] for c in result["candidates"]]
    assert probs == sorted(probs, reverse=True)
    assert 0 < sum(probs) <= 1
    assert model.complete("o dinossauro", k=1)["unknown"] == ["dinossauro"]


def test_completion_after_a_known_context_does_not_run_the_network_again(
    tiny: tuple[Registry, LanguageModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    runs: list[int] = []
    top = NextTokens.top
    monkeypatch.setattr(NextTokens, "top", lambda self, ctx, k: (runs.append(1), top(self, ctx, k))[1])
    model = LanguageModel(tiny[1].lm)  # a fresh cache
    net = model.lm.net
    first = model.complete("o rei governa o", k=3)
    assert model.complete("o rei governa o", k=3) == first
    # the model sees the last 3 tokens: a longer text ending in them gets the same words
    longer = model.complete("a rainha disse que o rei governa o", k=3)
    assert longer["candidates"] == first["candidates"]
    assert longer["tokens"][:2] == ["a", "rainha"]
    assert runs == [1]
    assert len(model.complete("o rei governa o", k=4)["candidates"]) == 4  # another k: computed again
    assert runs == [1, 1]
    # the kept answer is the network's own top k
    logp = net.log_probs(torch.tensor([[model.lm.index[t] for t in ("rei", "governa", "o")]]))[0]
    logp[[model.unk, model.pad]] = -float("inf")
    values, rows = torch.topk(logp, 3)
    assert [c["word"] for c in first["candidates"]] == [model.lm.vocab[int(r)] for r in rows]
    assert [c["probability"] for c in first["candidates"]] == pytest.approx(values.exp().tolist(), abs=1e-6)


def test_same_seed_same_text_and_temperature_zero_is_greedy(tiny: tuple[Registry, LanguageModel]) -> None:
    _, model = tiny
    sampled = Sampling(max_tokens=15, temperature=1.0, top_k=None, top_p=1.0, seed=7)
    first = model.generate("a rainha", sampled)
    assert model.generate("a rainha", sampled) == first
    assert first["text"].startswith("A rainha ")
    assert len(first["tokens"]) == 15  # a paragraph end is written as one, not an early stop
    assert PARAGRAPH in first["tokens"]
    assert "\n\n" in first["text"]
    greedy = [
        model.generate("o gato", Sampling(max_tokens=6, temperature=0, seed=s))["tokens"] for s in (1, 2)
    ]
    assert greedy[0] == greedy[1]
    expected, prompt = [], "o gato"
    for _ in range(6):
        word = model.complete(prompt, k=1)["candidates"][0]["word"]
        if word == EOS:  # complete never proposes <p>; generation stops there
            break
        expected.append(word)
        prompt += " " + word
    assert greedy[0][: len(expected)] == expected


def test_inference_builds_no_autograd_graph(tiny: tuple[Registry, LanguageModel]) -> None:
    _, model = tiny
    with torch.enable_grad():
        model.complete("o rei", k=2)
        logp = model.lm.net.log_probs(torch.zeros((1, 3), dtype=torch.long))
    assert not logp.requires_grad


@pytest.mark.parametrize(
    "bad",
    [
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"temperature": -0.1},
        {"temperature": 100.5},
        {"temperature": 3.4028235677973366e38},
        {"max_tokens": 0},
        {"top_k": 0},
        {"seed": -1},
        {"seed": 2**32},  # torch keeps 32 bits of a seed: 2^32 would give seed 0's text
    ],
)
def test_bad_sampling_parameters_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(InvalidInput):
        Sampling(**bad)  # type: ignore[arg-type]


def test_empty_prompt_and_bad_k_are_refused(tiny: tuple[Registry, LanguageModel]) -> None:
    _, model = tiny
    with pytest.raises(InvalidInput, match="empty"):
        model.generate("   ", Sampling(seed=1))
    with pytest.raises(InvalidInput, match="empty"):  # zero-width only: was read as one unknown token
        model.complete("\u200b\u2060", k=3)
    with pytest.raises(InvalidInput):
        model.complete("o rei", k=0)


def test_bad_training_options_name_the_field() -> None:
    with pytest.raises(InvalidConfig, match="context"):
        make_run({"name": "x", "corpus": ["c"], "context": 0})
    with pytest.raises(InvalidConfig, match="optimizer"):
        make_run({"name": "x", "corpus": ["c"], "optimizer": "lbfgs"})


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            {"hidden": [0]},
            "field 'hidden.0': Input should be greater than or equal to 1",
        ),  # was trained, useless
        ({"hidden": [64, -5]}, "field 'hidden.1': Input should be greater than or equal to 1"),  # a traceback
        ({"seed": -1}, "field 'seed': Input should be greater than or equal to 0"),  # a traceback
        (
            {"lr": float("nan")},
            "field 'lr': Input should be a finite number",
        ),  # was "less than or equal to 10"
        ({"name": "bad name"}, "invalid model name"),  # was refused only after training, when registering
        # froze nothing, silently, and the config recorded it as frozen
        (
            {"freeze_embeddings": True},
            "field 'freeze_embeddings': there are no embeddings to freeze",
        ),
    ],
)
def test_training_options_no_run_accepts_are_refused_before_training(
    option: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidConfig) as info:
        make_run({"name": "x", "corpus": ["c"], **option})
    assert message in info.value.detail


def test_detokenize_reads_as_portuguese() -> None:
    tokens = [
        "o",
        "menino",
        ",",
        "feliz",
        ",",
        "chegou",
        ".",
        EOS,
        "a",
        "menina",
        "(",
        "também",
        ")",
        "saiu",
        PARAGRAPH,
    ]
    assert detokenize(tokens) == "O menino, feliz, chegou. A menina (também) saiu"
    assert (
        detokenize(["disse", "“", "olá", "”", "e", "‘", "adeus", "’"]) == "Disse “olá” e ‘adeus’"
    )  # was “ olá ”


def test_evaluate_reports_perplexity_and_oov(tiny: tuple[Registry, LanguageModel]) -> None:
    _, model = tiny
    seen = model.evaluate(["O rei governa o reino no inverno."])
    unseen = model.evaluate(["O astronauta pilota o foguete."])
    assert seen["oov_rate"] == 0
    assert unseen["oov_rate"] == pytest.approx(3 / 6)
    assert seen["perplexity"] < unseen["perplexity"]
    with pytest.raises(InvalidInput):
        model.evaluate(["", "  "])
    assert seen["wrapped"] is False
    # hard-wrapped text is joined as training joins it: one document, not three
    wrapped = model.evaluate(["O rei governa o reino", "no inverno e a rainha", "governa o reino."])
    assert wrapped["wrapped"] is True
    assert (
        wrapped["tokens"] == 14 + 2
    )  # o rei governa o reino no inverno e a rainha governa o reino . </s> <p>
    assert wrapped["documents"] == 1


def test_embeddings_from_word_vectors_stay_frozen(
    registry: Registry, w2v_model: object, pt_corpus_file: Path, tmp_path: Path
) -> None:
    from models.vectors import WordVectors

    mv = train_tiny_lm(
        registry, pt_corpus_file, tmp_path / "cache", name="lm-w2v", embeddings="tiny-word2vec",
        freeze_embeddings=True, epochs=1,
    )  # fmt: skip
    model = LanguageModel.from_artifact(registry.open(mv.ref))
    vectors = WordVectors.load(registry.open("tiny-word2vec"))
    assert model.lm.shape.dim == vectors.dim
    assert mv.metadata["training"]["pretrained"]["coverage"] > 0.5
    row = model.lm.net.embedding.weight[model.lm.index["rei"]].numpy()
    ref = vectors.vectors[vectors.index["rei"]]
    cos = float(row @ ref / (np.linalg.norm(row) * np.linalg.norm(ref)))
    assert cos == pytest.approx(1.0, abs=1e-5)


def test_patience_zero_turns_early_stopping_off_as_for_the_classifier(
    registry: Registry, pt_corpus_file: Path, tmp_path: Path
) -> None:
    """``--patience 0`` was refused ("greater than or equal to 1") with no hint that none turns it off; the
    classifier reads 0 as off."""
    mv = train_tiny_lm(
        registry, pt_corpus_file, tmp_path / "cache", name="lm-all", epochs=6, patience=0, lr=0.05
    )
    training = mv.metadata["training"]
    assert training["epochs_run"] == 6  # the same rate with patience 1 stops early (the test below)
    assert not training["stopped_early"]


def test_early_stopping_keeps_the_best_epoch(
    registry: Registry, pt_corpus_file: Path, tmp_path: Path
) -> None:
    # a learning rate this high overfits the templates within a few epochs: validation perplexity turns up
    mv = train_tiny_lm(
        registry, pt_corpus_file, tmp_path / "cache", name="lm-stop", epochs=40, patience=1, lr=0.05
    )
    training = mv.metadata["training"]
    history = training["history"]
    assert training["stopped_early"]
    assert training["epochs_run"] == training["best_epoch"] + 1 < 40
    best = min(history, key=lambda row: row["val_loss"])
    assert best["epoch"] == training["best_epoch"]
    assert training["val_perplexity_network"] == best["val_perplexity"]
    # the model's perplexity mixes in its n-gram, with the weight the held-out slice prefers (1.0 among them)
    assert training["val_perplexity"] <= training["val_perplexity_network"]
    model = LanguageModel.from_artifact(registry.open(mv.ref))
    held = (pt_corpus_file.read_text(encoding="utf-8").splitlines())[-30:]
    assert model.evaluate(held)["perplexity"] == pytest.approx(training["val_perplexity"], rel=1e-3)


def test_token_budget_cuts_the_epochs_of_a_large_corpus_only(
    tiny: tuple[Registry, LanguageModel], pt_corpus_file: Path, tmp_path: Path
) -> None:
    registry, _ = tiny
    per_epoch = registry.get("tiny-lm").metadata["training"]["tokens"]
    runs = {
        budget: train_tiny_lm(
            registry, pt_corpus_file, tmp_path / "cache", name=f"lm-budget-{i}", epochs=4, patience=None,
            max_tokens_trained=budget,
        ).metadata["training"]
        for i, budget in enumerate((int(2.5 * per_epoch), 1, 4 * per_epoch))
    }  # fmt: skip
    epochs_run = {budget: t["epochs_run"] for budget, t in runs.items()}
    assert epochs_run == {int(2.5 * per_epoch): 2, 1: 1, 4 * per_epoch: 4}  # the first epoch always runs
    assert all(t["tokens"] == per_epoch for t in runs.values())


def test_training_that_diverges_is_refused_not_registered(tmp_path: Path, pt_corpus_file: Path) -> None:
    registry = Registry(tmp_path / "home")
    with pytest.raises(InvalidInput, match="diverged at epoch 1") as info:
        train_tiny_lm(
            registry, pt_corpus_file, tmp_path / "cache", name="wild", optimizer="sgd", lr=10.0, epochs=2
        )
    assert len(info.value.extra["history"]) == 1
    assert registry.list() == []


@pytest.mark.parametrize("temperature", [1e-95, 5e-324, 1e-30])
def test_a_tiny_temperature_samples_the_greedy_text(
    tiny: tuple[Registry, LanguageModel], temperature: float
) -> None:
    """A temperature that is 0 in float32 once made every probability NaN (a 500 over HTTP)."""
    _, model = tiny
    greedy = model.generate("o gato", Sampling(max_tokens=6, temperature=0))["tokens"]
    sampled = model.generate("o gato", Sampling(max_tokens=6, temperature=temperature, top_p=1.0, seed=3))
    assert sampled["tokens"] == greedy


def test_training_reports_progress_inside_each_epoch(
    tmp_path: Path, pt_corpus_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipelines.lm import train as lm_train
    from pipelines.runs.progress import Progress

    monkeypatch.setattr(lm_train, "IN_EPOCH_REPORT_S", 0.0)  # every batch, instead of once a second
    seen: list[Progress] = []
    run = make_run({"name": "m", "corpus": [str(pt_corpus_file)], **TINY, "batch_size": 16, "patience": None})
    registry = Registry(tmp_path / "home")
    lm_train.train_lm(
        run, registry=registry, catalog=DataCatalog(None, tmp_path), cache_dir=tmp_path, progress=seen.append
    )
    counted = [p for p in seen if p.stage == "train" and p.unit == "batch"]
    inside = [p for p in counted if p.message is None]
    ends = [p for p in counted if p.message and p.message.startswith("epoch ")]
    total = counted[0].total
    assert total is not None
    batches = int(total) // TINY["epochs"]
    assert batches > 2
    # every batch but the last of each epoch reports inside it, with no log line; the counts only grow
    assert len(inside) >= TINY["epochs"] * (batches - 1)
    assert [p.done for p in ends] == [e * batches for e in range(1, TINY["epochs"] + 1)]
    dones = [p.done for p in counted if p.done is not None]
    assert dones == sorted(dones)
    assert all(p.loss is not None and p.fraction is not None and 0 < p.fraction <= 1 for p in inside)


def test_a_model_with_its_ngram_mixed_in_completes_generates_and_evaluates_with_the_mixture(
    tiny: tuple[Registry, LanguageModel],
) -> None:
    _, trained = tiny
    assert trained.lm.ngram is not None  # the default trains one (this corpus's held-out slice gave it λ = 1)
    model = LanguageModel(dataclasses.replace(trained.lm, network_weight=0.4))
    ngram = model.lm.ngram
    ids = [model.lm.index[t] for t in ("o", "rei", "governa", "o")]
    context = model._context_ids(ids)
    with torch.inference_mode():
        network = model.lm.net.log_probs(torch.tensor([context]))[0].double().numpy()
    want = np.log(0.4 * np.exp(network) + 0.6 * ngram.distribution(context))
    want[[model.unk, model.pad]] = -np.inf
    got = model.complete("o rei governa o", k=4)["candidates"]
    best = np.argsort(-want)[:4]
    assert [c["word"] for c in got] == [model.lm.vocab[i] for i in best]
    assert [c["probability"] for c in got] == pytest.approx(np.exp(want[best]).tolist(), abs=1e-6)
    # greedy generation follows the mixture's best word, as complete proposes it
    greedy = model.generate("o rei governa o", Sampling(max_tokens=1, temperature=0))["tokens"]
    assert greedy == [got[0]["word"]]
    # evaluate scores every token with the mixture
    toks = with_boundaries(["o", "rei", "governa", "o", "reino", "."])
    tok_ids = np.array([model.lm.id_of(t) for t in toks])
    ctx = contexts_of(tok_ids, model.context, model.pad)
    mixed = np.log(
        0.4 * np.exp(token_log_probs(model.lm.net, ctx, tok_ids))
        + 0.6 * np.exp(ngram.log_probs(ctx, tok_ids))
    )
    assert model.evaluate(["O rei governa o reino."])["perplexity"] == pytest.approx(
        float(np.exp(-mixed.mean())), rel=1e-3
    )
    assert (
        model.evaluate(["O rei governa o reino."])["perplexity"]
        != trained.evaluate(["O rei governa o reino."])["perplexity"]
    )


def test_ngram_zero_trains_the_network_alone(
    registry: Registry, pt_corpus_file: Path, tmp_path: Path
) -> None:
    mv = train_tiny_lm(registry, pt_corpus_file, tmp_path / "cache", name="lm-alone", epochs=1, ngram=0)
    training = mv.metadata["training"]
    assert training["ngram"] is None
    assert training["val_perplexity"] == training["val_perplexity_network"]
    assert not (mv.path / "ngram.safetensors").exists()
    assert LanguageModel.from_artifact(registry.open(mv.ref)).lm.ngram is None
    # the order is at most context + 1: the n-gram sees what the network sees
    mv = train_tiny_lm(registry, pt_corpus_file, tmp_path / "cache", name="lm-short", epochs=1, context=2)
    assert mv.metadata["training"]["ngram"]["order"] == 3


def test_a_corpus_with_nothing_held_out_mixes_at_an_unfitted_weight(
    registry: Registry, tmp_path: Path
) -> None:
    # one document: nothing is left to hold out, so λ cannot be fitted and the record says so
    corpus = tmp_path / "um.txt"
    corpus.write_text("O rei governa o reino e a rainha governa o reino no inverno.\n", encoding="utf-8")
    mv = train_tiny_lm(registry, corpus, tmp_path / "cache", name="lm-one", epochs=1)
    facts = mv.metadata["training"]["ngram"]
    assert facts["network_weight"] == 0.5
    assert facts["weight_fitted_on"] is None
    model = LanguageModel.from_artifact(registry.open(mv.ref))
    assert model.lm.network_weight == 0.5
    assert model.complete("o rei governa o", k=1)["candidates"][0]["word"] == "reino"


def test_top_k_sampling_draws_among_the_k_best_of_the_mixture_in_their_proportions(
    tiny: tuple[Registry, LanguageModel], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Greedy and top-k generation score the next token as complete does: they never build the whole
    distribution (the network's every cluster and the n-gram's every token), yet draw as if they had."""
    _, trained = tiny
    model = LanguageModel(dataclasses.replace(trained.lm, network_weight=0.4))
    context = model._context_ids([model.lm.index[t] for t in ("o", "rei", "governa", "o")])
    with torch.inference_mode():
        network = model.lm.net.log_probs(torch.tensor([context]))[0].double().numpy()
    assert model.lm.ngram is not None
    want = np.log(0.4 * np.exp(network) + 0.6 * model.lm.ngram.distribution(context))
    want[model.unk] = -np.inf  # <unk> is never written; <p> may be
    best = np.argsort(-want)[:3]
    p = np.exp(want[best] - want[best].max())
    p /= p.sum()

    def whole_distribution(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("top-k generation built the whole distribution")

    monkeypatch.setattr(model.lm.net, "log_probs", whole_distribution)
    monkeypatch.setattr(model.lm, "mix_distribution", whole_distribution)
    greedy = model.generate("o rei governa o", Sampling(max_tokens=1, temperature=0))["tokens"]
    assert greedy == [model.lm.vocab[best[0]]]
    draws = 3000
    for top_p, kept in ((1.0, 3), (float(p[0] + p[1] / 2), 2)):  # top-p then keeps the two best of the three
        sampling = [
            Sampling(max_tokens=1, temperature=1.0, top_k=3, top_p=top_p, seed=s) for s in range(draws)
        ]
        drawn = [model.generate("o rei governa o", s)["tokens"][0] for s in sampling]
        words = [model.lm.vocab[i] for i in best[:kept]]
        assert set(drawn) <= set(words)
        expected = p[:kept] / p[:kept].sum()
        for word, share in zip(words, expected, strict=True):
            spread = 4 * np.sqrt(share * (1 - share) / draws)
            assert drawn.count(word) / draws == pytest.approx(share, abs=spread), (word, top_p)
    with pytest.raises(AssertionError, match="whole distribution"):  # without top-k every token may be drawn
        model.generate("o rei governa o", Sampling(max_tokens=1, temperature=1.0, top_k=None, seed=1))
