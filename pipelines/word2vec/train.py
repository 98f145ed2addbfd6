"""Train word vectors from raw text and register them: corpus -> tokens (cached) -> gensim -> evaluation -> artifact.

gensim trains in ``corpus_file`` mode: the prepared token file is read by every worker thread without the GIL,
so both cores work (an iterable corpus would leave one idle). Progress is reported per epoch through a
:data:`~pipelines.runs.progress.ProgressCallback`; that is also what the batch-job workers call this with.

The artifact (written by :func:`models.vectors.save`) holds the vectors, the config (the whole :class:`Word2VecRun`),
the normalisation (what the HTTP layer normalises query words with), the learned phrases when phrases were joined,
and metadata: data hash, corpus statistics, training time, words/s, per-epoch loss, evaluation metrics.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.errors import EmptyCorpus
from models.registry import ModelVersion, Registry
from models.vectors import WordVectors
from models.vectors import save as save_vectors
from pipelines.evaluation.evaluate_embeddings import EvaluationSets, evaluate_sets, load_evaluation_sets
from pipelines.reading.corpus import CorpusLimits
from pipelines.reading.datasets import DataCatalog
from pipelines.runs.progress import DONE_STAGE, Progress, ProgressCallback, ignore_progress
from pipelines.text.normalize import Normalizer
from pipelines.text.phrases import PhraseModel, phrase_corpus
from pipelines.text.preprocess import PreparedCorpus, prepare_corpus
from pipelines.word2vec.config import Word2VecConfig, Word2VecRun
from pipelines.word2vec.convert import from_keyed_vectors, join
from pipelines.word2vec.postprocess import all_but_the_top

log = logging.getLogger(__name__)


@dataclass
class TrainedVectors:
    """The outcome of one gensim training run."""

    vectors: WordVectors
    seconds: float
    vocab_seconds: float
    corpus_words: int
    epochs: list[dict[str, Any]] = field(default_factory=list)
    postprocess: dict[str, Any] | None = None

    @property
    def words_per_second(self) -> float:
        """Corpus words processed per second of training (raw words, all epochs)."""
        done = self.corpus_words * len(self.epochs)
        return done / self.seconds if self.seconds > 0 else 0.0


def _effective_words(model: Any) -> float:
    """Words per epoch left after frequent-word downsampling (gensim's own estimate, per vocabulary word)."""
    counts = np.asarray(model.wv.expandos["count"], dtype=np.float64)
    keep = np.asarray(model.wv.expandos["sample_int"], dtype=np.float64) / 2**32
    return float(np.sum(counts * np.minimum(keep, 1.0)))


def _loss_tracking_word2vec() -> Any:
    """gensim ``Word2Vec`` whose loss accumulator adds up what every worker thread writes back.

    gensim's worker threads each start from ``running_training_loss`` and write their own total back at the end
    of their share, so the last thread's write wins; a property makes every read 0 and every write an addition.
    """
    from gensim.models import Word2Vec

    class LossTrackingWord2Vec(Word2Vec):  # type: ignore[misc]
        loss_total = 0.0
        _loss_lock = threading.Lock()

        @property
        def running_training_loss(self) -> float:
            return 0.0

        @running_training_loss.setter
        def running_training_loss(self, value: float) -> None:
            with self._loss_lock:
                self.loss_total += float(value)

        def get_latest_training_loss(self) -> float:
            return self.loss_total

    return LossTrackingWord2Vec


def _epoch_callback(
    config: Word2VecConfig,
    report: ProgressCallback,
    epochs: list[dict[str, Any]],
    *,
    total: int,
    model_label: str = "",
) -> Any:
    """Reports each finished epoch of ``config``'s model as one step of ``total`` (a joined model has two runs)."""
    from gensim.models.callbacks import CallbackAny2Vec

    track_loss = config.compute_loss and config.algorithm == "word2vec"

    class EpochReporter(CallbackAny2Vec):  # type: ignore[misc]
        """Reports each finished epoch, with the loss of that epoch alone."""

        def __init__(self) -> None:
            self.started = 0.0
            self.per_epoch_words = 0.0

        def on_train_begin(self, model: Any) -> None:
            self.per_epoch_words = _effective_words(model)

        def on_epoch_begin(self, model: Any) -> None:
            model.loss_total = 0.0
            self.started = time.perf_counter()

        def on_epoch_end(self, model: Any) -> None:
            seconds = time.perf_counter() - self.started
            loss = None
            if track_loss and self.per_epoch_words > 0:
                loss = float(model.get_latest_training_loss()) / self.per_epoch_words
            own = sum(1 for e in epochs if e.get("model", "") == model_label) + 1
            entry: dict[str, Any] = {"epoch": own, "seconds": round(seconds, 3), "loss": loss}
            if model_label:
                entry["model"] = model_label
            epochs.append(entry)
            label = f"{model_label} " if model_label else ""
            report(
                Progress(
                    stage="train",
                    fraction=len(epochs) / total,
                    epoch=len(epochs),
                    loss=loss,
                    message=f"{label}epoch {own}/{config.epochs} in {seconds:.1f} s"
                    + (f", loss {loss:.4f} per word" if loss is not None else ""),
                    extra={"epochs": total},
                    done=len(epochs),
                    total=total,
                    unit="epoch",
                )
            )

    return EpochReporter()


def _train_one(
    corpus_file: Path,
    config: Word2VecConfig,
    report: ProgressCallback,
    epochs: list[dict[str, Any]],
    *,
    total: int,
    model_label: str = "",
) -> tuple[Any, float, float]:
    """One gensim model on the token file: (model, vocabulary seconds, training seconds)."""
    from gensim.models import FastText

    cls = FastText if config.algorithm == "fasttext" else _loss_tracking_word2vec()
    started = time.perf_counter()
    model = cls(**config.gensim_kwargs())
    report(
        Progress(
            stage="vocabulary", message=f"counting words{' (' + model_label + ')' if model_label else ''}"
        )
    )
    model.build_vocab(corpus_file=str(corpus_file))
    if len(model.wv) == 0:
        raise EmptyCorpus(
            f"no word occurs at least min_count={config.min_count} times in the corpus; "
            "lower train.min_count or add text"
        )
    vocab_seconds = time.perf_counter() - started
    report(
        Progress(
            stage="train",
            fraction=len(epochs) / total,
            epoch=len(epochs),
            message=f"vocabulary: {len(model.wv):,} words",
            extra={"epochs": total},
            done=len(epochs),
            total=total,
            unit="epoch",
        )
    )
    started = time.perf_counter()
    model.train(
        corpus_file=str(corpus_file),
        total_words=model.corpus_total_words,
        total_examples=model.corpus_count,
        epochs=config.epochs,
        compute_loss=config.compute_loss and config.algorithm == "word2vec",
        callbacks=[_epoch_callback(config, report, epochs, total=total, model_label=model_label)],
    )
    return model, vocab_seconds, time.perf_counter() - started


def fit(
    corpus_file: Path, config: Word2VecConfig, *, progress: ProgressCallback | None = None
) -> TrainedVectors:
    """Train gensim Word2Vec / FastText on a token file (one sentence per line, tokens split by spaces).

    With ``config.joined`` a word-level model (``word_architecture``) is trained after FastText on the same file
    and the two are joined (:func:`pipelines.word2vec.convert.join`); epochs of both count in the progress and the
    metadata.

    Raises:
        EmptyCorpus: no word reaches ``min_count``.
    """
    report = progress or ignore_progress
    word_config = config.word_model_config() if config.joined else None
    total = config.epochs + (word_config.epochs if word_config is not None else 0)
    epochs: list[dict[str, Any]] = []
    label = "fasttext" if word_config is not None else ""
    model, vocab_seconds, seconds = _train_one(
        corpus_file, config, report, epochs, total=total, model_label=label
    )
    vectors = from_keyed_vectors(model)
    corpus_words = int(model.corpus_total_words)
    postprocess: dict[str, Any] | None = None
    if config.postprocess == "abtt":
        first_directions, word_directions = config.abtt_directions()
        vectors, postprocess = all_but_the_top(vectors, first_directions)
    if word_config is not None:
        del model  # the n-gram matrix is in ``vectors`` now; free gensim's copy before the second model
        word_model, word_vocab_seconds, word_seconds = _train_one(
            corpus_file, word_config, report, epochs, total=total, model_label="word2vec"
        )
        word_vectors = from_keyed_vectors(word_model)
        del word_model
        if config.postprocess == "abtt":  # the same post-processing for the word-level half
            word_vectors, word_post = all_but_the_top(word_vectors, word_directions)
            postprocess = {"fasttext": postprocess, "word2vec": word_post}
        counts = vectors.counts if vectors.counts is not None else np.ones(len(vectors))
        vectors = join(vectors, word_vectors, weight=config.word_weights(counts))
        vocab_seconds += word_vocab_seconds
        seconds += word_seconds
    return TrainedVectors(
        vectors=vectors,
        seconds=seconds,
        vocab_seconds=vocab_seconds,
        corpus_words=corpus_words,
        epochs=epochs,
        postprocess=postprocess,
    )


def _resolve_corpus(run: Word2VecRun, catalog: DataCatalog) -> list[Path]:
    return [path for spec in run.corpus for path in catalog.resolve(spec)]


def _corpus_metadata(prepared: PreparedCorpus) -> dict[str, Any]:
    return {
        "tokens": prepared.n_tokens,
        "sentences": prepared.n_sentences,
        "documents": prepared.n_docs,
        "skipped_documents": prepared.skipped,
        "prepare_seconds": round(prepared.seconds, 3),
        "cache_hit": prepared.cache_hit,
    }


def train_word2vec(
    run: Word2VecRun,
    *,
    registry: Registry,
    catalog: DataCatalog,
    cache_dir: Path,
    progress: ProgressCallback | None = None,
    limits: CorpusLimits | None = None,
) -> ModelVersion:
    """Prepare the corpus (cached), train, evaluate when ``run.evaluate``, and register a new version.

    Args:
        run: the whole recipe; saved in the artifact as its config.
        registry: where the version is registered (staged, then renamed into place).
        catalog: resolves catalogue names in ``run.corpus`` and the evaluation sets.
        cache_dir: prepared token files are kept under it and reused for the same files and normalisation.
        progress: receives ``preprocess``, ``train`` (per epoch: fraction, epoch, loss), ``evaluate`` and
            ``save`` reports.
        limits: bounds on reading the corpus and on the cache (see :class:`pipelines.reading.corpus.CorpusLimits`).

    Raises:
        CorpusError / EmptyCorpus: unreadable input, or nothing to train on.
        DatasetNotFound / DownloadError: a corpus or evaluation name that cannot be resolved.
    """
    report = progress or ignore_progress
    started = time.perf_counter()
    registry.check_kind(run.name, run.kind)  # before the work: the name may hold another kind of model
    # read the evaluation sets first: a missing or malformed one fails before hours of training, not after
    sets: EvaluationSets | None = None
    if run.evaluate:
        sets = load_evaluation_sets(catalog, analogies=run.evaluation.analogies, pairs=run.evaluation.pairs)
    prepared = prepare_corpus(
        _resolve_corpus(run, catalog),
        run.normalize,
        cache_dir=cache_dir,
        workers=run.train.workers,
        progress=report,
        text_field=run.text_field,
        limits=limits,
    )
    phrases: PhraseModel | None = None
    if run.phrases is not None:
        prepared, phrases = phrase_corpus(prepared, run.phrases, cache_dir=cache_dir, progress=report)
    trained = fit(prepared.path, run.train, progress=report)
    metrics: dict[str, Any] | None = None
    if sets is not None:
        report(Progress(stage="evaluate", message="analogies and word-pair similarity"))
        metrics = evaluate_sets(
            trained.vectors,
            sets,
            normalize=Normalizer(run.normalize).word,
            restrict_vocab=run.evaluation.restrict_vocab,
        )
    report(Progress(stage="save", message=f"registering {run.name}"))
    with registry.create(run.name, run.kind) as writer:
        save_vectors(
            writer,
            trained.vectors,
            normalize=run.normalize.model_dump(mode="json"),
            phrases=phrases.to_json() if phrases is not None else None,
            config=run.model_dump(mode="json"),
        )
        writer.metadata.update(
            data_hash=prepared.data_hash,
            corpus=_corpus_metadata(prepared),
            training={
                "algorithm": run.train.algorithm,
                "vocabulary": len(trained.vectors),
                "seconds": round(trained.seconds, 3),
                "vocab_seconds": round(trained.vocab_seconds, 3),
                "words_per_second": round(trained.words_per_second),
                "epochs": trained.epochs,
                "loss_note": loss_note(run.train.algorithm, joined=run.train.joined),
                "postprocess": trained.postprocess,
                "total_seconds": round(time.perf_counter() - started, 3),
            },
            phrases=len(phrases) if phrases is not None else None,
            metrics=metrics,
        )
    version: ModelVersion = writer.version  # type: ignore[attr-defined]
    seconds = time.perf_counter() - started
    log.info("registered %s (%d words) in %.1f s", version.ref, len(trained.vectors), seconds)
    report(
        Progress(
            stage=DONE_STAGE,
            fraction=1.0,
            message=finished_line(run.train, trained, version.ref, seconds=seconds),
            final=True,
        )
    )
    return version


def _weights(config: Word2VecConfig) -> str:
    if config.word_weight_rare is None or config.word_weight_rare == config.word_weight:
        return f"{config.word_weight}"
    return f"{config.word_weight_rare} (rare words) to {config.word_weight} (frequent words)"


def finished_line(config: Word2VecConfig, trained: TrainedVectors, ref: str, *, seconds: float) -> str:
    """The run's last line: why training stopped (every epoch done), what was registered, how long it took."""
    if config.joined:
        word = config.word_model_config()
        done = (
            f"all {config.epochs} FastText and {word.epochs} word-level epochs ({len(trained.epochs)} in all; word "
            f"vectors train a fixed number of epochs), joined with word weight {_weights(config)}"
        )
    else:
        done = (
            f"all {len(trained.epochs)}/{config.epochs} epochs (word vectors train a fixed number of epochs)"
        )
    return (
        f"training stopped after {done}; registered {ref}: {len(trained.vectors):,} words in {seconds:.0f} s"
    )


_LOSS_NOTE = {
    "word2vec": (
        "gensim's training loss per corpus word left after downsampling (summed over positive and negative "
        "examples); gensim sums it in float32 per worker and epoch, so on large corpora it is an underestimate: "
        "read it as a trend"
    ),
    "fasttext": "gensim's FastText does not compute a training loss",
}


def loss_note(algorithm: str, *, joined: bool) -> str:
    """What the epoch losses are; a joined model's come from its word-level half alone."""
    if not joined:
        return _LOSS_NOTE[algorithm]
    return f"{_LOSS_NOTE['fasttext']}; the losses are the word-level half's: {_LOSS_NOTE['word2vec']}"
