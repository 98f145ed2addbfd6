"""Configuration of a word-vector training run: what to read, how to normalise it, how gensim trains on it.

:class:`Word2VecRun` is the whole recipe (saved as the artifact's ``config.json``); :class:`Word2VecConfig` is its
``[train]`` table. Both forbid unknown keys, so a misspelt TOML key is an error rather than a silent default.

The defaults were chosen by measurement on the 15M-token Portuguese corpus of ../shared/data (docs/word2vec.md,
benchmarks/results/word2vec.md): FastText skip-gram (subword n-grams 3-5 in 500k buckets, 200 dimensions, window 5,
sample 1e-4, 8 epochs) joined with a word-level CBOW (200 dimensions, window 10, 10 epochs, sample 3e-5, learning
rate 0.05), each half post-processed by all-but-the-top (three directions from the FastText half, two from the
word-level half), a word's weight on the word-level half rising from 0.38 (rare words) to 0.70 (frequent words),
halfway at a count of 300. FastText alone (an earlier default) answers analogies well but its neighbours are
spellings: 44% of the top-10 neighbours of the 1,000 most frequent words echo the query's spelling (cidade:
cidadela, cidadezinha). The word-level half was a skip-gram of window 5 and 8 epochs until 2026-12-04: a CBOW half
trains in about 110 s instead of 260 s on one machine, and that time pays for two more FastText epochs. The n-grams
were 3-6 in 1M buckets until 2026-12-05: 3-5 trains FastText in 11% less time with analogies as good, and 500k
buckets halve the n-gram rows. On one machine, end to end from raw text, the default scored 3CosAdd 30.5%, 3CosMul
29.4%, semantic 8.9%, syntactic 53.2% (all LX-4WAnalogiesBr-dev questions), LX-SimLex-999 0.294 and an echo of
20.4% in 680 s (704 MiB on disk), against fastText C++'s 25.8%, 27.8%, 3.3%, 49.4%, 0.305 and 54.5% in 714 s of
training alone in the next run (benchmarks/results/word2vec.md, "Character n-grams 3-5 in 500k buckets"). On a
machine half as fast it took 1,370 s against fastText's 1,348 s in the same run ("A narrower FastText half").
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from models.errors import InvalidConfig
from models.references import VECTOR_KINDS
from models.registry import NAME_RE
from pipelines.runs.config_io import read_toml, validation_message
from pipelines.text.normalize import NormalizeConfig
from pipelines.text.phrases import PhraseConfig
from pipelines.word2vec.postprocess import default_components

ALGORITHMS = VECTOR_KINDS  # each training algorithm registers the vector kind of its name


class Word2VecConfig(BaseModel):
    """How gensim trains: architecture, objective, sizes and schedule (gensim's names where it has one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: Literal["word2vec", "fasttext"] = Field(
        default="fasttext",
        description="fasttext also learns character n-gram vectors, so unknown words still get vectors.",
    )
    architecture: Literal["cbow", "skipgram"] = "skipgram"
    loss: Literal["negative", "hs"] = Field(
        default="negative", description="negative sampling or hierarchical softmax."
    )
    negative: int = Field(default=5, ge=1, le=50, description="noise words per example (loss=negative).")
    vector_size: int = Field(default=200, ge=2, le=2000)
    window: int = Field(default=5, ge=1, le=50)
    min_count: int = Field(default=5, ge=1)
    sample: float = Field(default=1e-4, ge=0.0, lt=1.0, description="downsampling of frequent words.")
    epochs: int = Field(default=8, ge=1, le=200)
    alpha: float = Field(default=0.025, gt=0.0, le=1.0, description="initial learning rate.")
    min_alpha: float = Field(default=0.0001, ge=0.0, le=1.0)
    workers: int = Field(default=2, ge=1, le=64)
    seed: int = Field(default=1, ge=0, le=2**32 - 1)  # numpy's seeds, which gensim passes on
    max_vocab: int | None = Field(
        default=None, ge=1, description="keep at most this many words (raises min_count as needed)."
    )
    min_n: int = Field(default=3, ge=1, le=20, description="fasttext: shortest character n-gram.")
    max_n: int = Field(
        default=5,
        ge=1,
        le=20,
        description="fasttext: longest character n-gram (5: 11% less training than 6, analogies as good).",
    )
    bucket: int = Field(
        default=500_000,
        ge=1000,
        description="fasttext: n-gram hash buckets (500k x 200d: 400 MB of n-gram rows on disk and in memory).",
    )
    word_weight: float = Field(
        default=0.70,
        ge=0.0,
        lt=1.0,
        description="fasttext: also train a word-level model and join it to the FastText vectors with this "
        "weight for frequent words (0 = FastText alone); neighbours then read as meaning rather than spelling.",
    )
    word_weight_rare: float | None = Field(
        default=0.38,
        ge=0.0,
        lt=1.0,
        description="fasttext with word_weight: the word-level weight of the rarest words (None: word_weight); "
        "a word seen c times gets rare + (word_weight - rare) * c / (c + word_weight_count).",
    )
    word_weight_count: int = Field(
        default=300,
        ge=1,
        description="fasttext with word_weight_rare: the count at which a word's weight is halfway between.",
    )
    word_vector_size: int | None = Field(
        default=None, ge=2, le=2000, description="fasttext with word_weight: size of the word-level half."
    )
    word_epochs: int | None = Field(
        default=10,
        ge=1,
        le=200,
        description="fasttext with word_weight: epochs of the word-level model (None: epochs).",
    )
    word_window: int | None = Field(
        default=10,
        ge=1,
        le=50,
        description="fasttext with word_weight: context window of the word-level model (None: window); a wider one "
        "raises the semantic analogy sections, at little cost to CBOW and much to skip-gram (benchmarks/results/"
        "word2vec.md).",
    )
    word_architecture: Literal["cbow", "skipgram"] | None = Field(
        default="cbow",
        description="fasttext with word_weight: architecture of the word-level model (None: architecture); CBOW "
        "trains in under half of skip-gram's time here and scored higher on analogies (benchmarks/results/"
        "word2vec.md).",
    )
    word_alpha: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        description="fasttext with word_weight: initial learning rate of the word-level model (None: alpha, "
        "doubled when the word-level model is CBOW and the FastText one skip-gram, as word2vec's C tool does).",
    )
    word_sample: float | None = Field(
        default=3e-5,
        ge=0.0,
        lt=1.0,
        description="fasttext with word_weight: downsampling of frequent words in the word-level model (None: "
        "sample); a stronger one than FastText's makes its epochs cheaper and its neighbours less spelling-bound.",
    )
    compute_loss: bool = Field(default=True, description="word2vec: track the training loss per epoch.")
    postprocess: Literal["none", "abtt"] = Field(
        default="abtt",  # when left out: "abtt" for a joined model, else "none" (see _default_postprocess)
        description="abtt: remove the mean and top principal directions (Mu & Viswanath 2018) after training.",
    )
    abtt_components: int | None = Field(
        default=None,
        ge=1,
        description="directions abtt removes, from both halves of a joined model unless word_abtt_components is "
        "set (default: 1 per 100 dimensions; the FastText half of a joined model 3 per 200).",
    )
    word_abtt_components: int | None = Field(
        default=None,
        ge=1,
        description="fasttext with word_weight: directions abtt removes from the word-level half (None: "
        "abtt_components, else 1 per 100 dimensions).",
    )

    @model_validator(mode="before")
    @classmethod
    def _stored_word_architecture(cls, data: Any, info: ValidationInfo) -> Any:
        """A config stored before word_architecture existed trained its word-level half with ``architecture``;
        read again to run (a queued job), it keeps doing so rather than taking today's default (CBOW)."""
        if info.context and info.context.get("stored") and isinstance(data, dict):
            data = {"word_architecture": None, **data}
        return data

    @model_validator(mode="before")
    @classmethod
    def _default_postprocess(cls, data: Any) -> Any:
        """all-but-the-top by default for a joined model only (it helps the join, not plain Word2Vec)."""
        if isinstance(data, dict) and "postprocess" not in data:
            weight = data.get("word_weight", cls.model_fields["word_weight"].default)
            if isinstance(weight, int | float):  # anything else fails validation with its own message
                joined = data.get("algorithm", "fasttext") == "fasttext" and weight > 0
                data = {**data, "postprocess": "abtt" if joined else "none"}
        return data

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> Word2VecConfig:
        if self.min_n > self.max_n:
            raise ValueError(f"min_n ({self.min_n}) must not exceed max_n ({self.max_n})")
        if self.min_alpha > self.alpha:
            raise ValueError(f"min_alpha ({self.min_alpha}) must not exceed alpha ({self.alpha})")
        if self.word_alpha is not None and self.min_alpha > self.word_alpha:
            raise ValueError(f"min_alpha ({self.min_alpha}) must not exceed word_alpha ({self.word_alpha})")
        word_keys = {
            "word_weight",
            "word_weight_rare",
            "word_weight_count",
            "word_vector_size",
            "word_epochs",
            "word_window",
            "word_architecture",
            "word_alpha",
            "word_sample",
            "word_abtt_components",
        } & self.model_fields_set
        # a dumped and re-read config carries every key: only values other than the defaults are a mistake; one
        # stored at an earlier submit (a queued job) was accepted then, under that release's defaults
        word_keys = {k for k in word_keys if getattr(self, k) != type(self).model_fields[k].default}
        if info.context and info.context.get("stored"):
            word_keys = set()
        rare_set = "word_weight_rare" in self.model_fields_set
        if (
            self.joined
            and rare_set
            and self.word_weight_rare is not None
            and self.word_weight_rare > self.word_weight
        ):
            raise ValueError(
                f"word_weight_rare ({self.word_weight_rare}) must not exceed word_weight ({self.word_weight})"
            )
        if self.algorithm == "word2vec" and word_keys:
            raise ValueError(f'{", ".join(sorted(word_keys))}: only for algorithm = "fasttext"')
        return self

    @property
    def joined(self) -> bool:
        """A word-level model is trained too and joined to the FastText vectors."""
        return self.algorithm == "fasttext" and self.word_weight > 0

    def word_weights(self, counts: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        """Each word's weight of the word-level half, from its corpus count (rare words lean on n-grams)."""
        rare = self.word_weight if self.word_weight_rare is None else self.word_weight_rare
        if "word_weight_rare" not in self.model_fields_set:  # the default ramp never rises above word_weight
            rare = min(rare, self.word_weight)
        c = np.asarray(counts, dtype=np.float64)
        weights: npt.NDArray[np.float64] = rare + (self.word_weight - rare) * c / (c + self.word_weight_count)
        return weights

    def abtt_directions(self) -> tuple[int, int]:
        """Directions all-but-the-top removes from the (first) trained model and from a joined model's word-level
        half: the given counts, else 1 per 100 dimensions, but 3 per 200 from the FastText half of a joined model."""
        first = self.abtt_components or default_components(self.vector_size, subword=self.joined)
        word = (
            self.word_abtt_components
            or self.abtt_components
            or default_components(self.word_vector_size or self.vector_size)
        )
        return first, word

    def word_model_config(self) -> Word2VecConfig:
        """The word-level half of a joined model: this config as plain Word2Vec, with its word_* keys."""
        architecture = self.word_architecture or self.architecture
        alpha = self.word_alpha
        if alpha is None:
            doubled = architecture == "cbow" and self.architecture == "skipgram"
            alpha = min(1.0, 2 * self.alpha) if doubled else self.alpha
        return self.model_copy(
            update={
                "algorithm": "word2vec",
                "vector_size": self.word_vector_size or self.vector_size,
                "epochs": self.word_epochs or self.epochs,
                "window": self.word_window or self.window,
                "architecture": architecture,
                "alpha": alpha,
                "sample": self.sample if self.word_sample is None else self.word_sample,
                "word_weight": 0.0,
                "word_weight_rare": None,
            }
        )

    def gensim_kwargs(self) -> dict[str, Any]:
        """Constructor arguments for ``gensim.models.Word2Vec`` / ``FastText``."""
        kwargs: dict[str, Any] = {
            "vector_size": self.vector_size,
            "window": self.window,
            "min_count": self.min_count,
            "sample": self.sample,
            "epochs": self.epochs,
            "alpha": self.alpha,
            "min_alpha": self.min_alpha,
            "workers": self.workers,
            "seed": self.seed,
            "sg": int(self.architecture == "skipgram"),
            "hs": int(self.loss == "hs"),
            "negative": self.negative if self.loss == "negative" else 0,
            "max_final_vocab": self.max_vocab,
        }
        if self.algorithm == "fasttext":
            kwargs.update(min_n=self.min_n, max_n=self.max_n, bucket=self.bucket)
        return kwargs


class EvaluationConfig(BaseModel):
    """What ``evaluate = true`` measures after training (catalogue names or paths).

    Left out, each list means the defaults (LX-4WAnalogiesBr dev sample from a mirror, else the full set;
    LX-SimLex-999), skipped with a note when they cannot be had; named sets must resolve before training starts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    analogies: list[str] | None = None
    pairs: list[str] | None = None
    restrict_vocab: int = Field(default=300_000, ge=1, description="candidate answers: most frequent words.")


class Word2VecRun(BaseModel):
    """A whole training run: corpus, normalisation, optional phrases, training and evaluation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_RE.pattern, description="registry name of the model.")
    corpus: list[str] = Field(min_length=1, description="files, folders or catalogue names.")
    text_field: str = Field(default="text", description="JSON field / CSV column holding the text.")
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    phrases: PhraseConfig | None = Field(
        default=None, description="join collocations ('são paulo' -> 'são_paulo') before training."
    )
    train: Word2VecConfig = Field(default_factory=Word2VecConfig)
    evaluate: bool = True
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)

    @property
    def kind(self) -> str:
        """The registry kind of the model this run produces."""
        return self.train.algorithm


def build_run(data: dict[str, Any], *, source: str = "configuration") -> Word2VecRun:
    """Validate a run from plain data (a TOML document merged with command-line overrides).

    Raises:
        InvalidConfig: naming ``source`` and every offending field.
    """
    from pydantic import ValidationError

    try:
        return Word2VecRun.model_validate(data)
    except ValidationError as exc:
        raise InvalidConfig(validation_message(exc, source=source)) from exc


def load_run(
    path: Any | None,
    *,
    overrides: dict[str, Any] | None = None,
    train_overrides: dict[str, Any] | None = None,
) -> Word2VecRun:
    """A run from an optional TOML file, with top-level and ``[train]`` values replaced by ``overrides``.

    Raises:
        InvalidConfig: the file cannot be read or a value does not validate.
    """
    data: dict[str, Any] = dict(read_toml(path)) if path is not None else {}
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    train = dict(data.get("train") or {})
    if not isinstance(data.get("train", {}), dict):
        raise InvalidConfig(f"{path}: 'train' must be a table, e.g. [train]")
    train.update({k: v for k, v in (train_overrides or {}).items() if v is not None})
    if train:
        data["train"] = train
    return build_run(data, source=str(path) if path is not None else "command line")
