"""Configs of a classifier run: features, model, training, normalisation; all copied into the artifact.

Every config is a pydantic model with ``extra="forbid"`` (a misspelt key is an error, not a silent default) and
loads from TOML through :func:`load_run_config`. The defaults are the configuration the benchmarks measure.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from pipelines.runs.config_io import ModelName, load_toml_config
from pipelines.text.normalize import NormalizeConfig

# far above any rate that learns (such a rate diverges, and training says so), far below the float32 limit that
# torch's optimizers convert it to (an lr of 1e39 crashed inside torch); the same bound for the weight decay
MAX_LR = 1e6
MAX_EMBEDDING_LR_SCALE = 1e6  # times MAX_LR: 1e12, still a float32
MAX_HIDDEN = 8192  # units per hidden layer: one 8192 x 8192 layer is 268 MB of weights before Adam's state


def _hidden_sizes(sizes: list[int]) -> list[int]:
    if any(h < 1 or h > MAX_HIDDEN for h in sizes):
        raise ValueError(f"hidden layer sizes must be integers from 1 to {MAX_HIDDEN}")
    return sizes


OptimizerName = Literal["sgd", "momentum", "adagrad", "rmsprop", "adam"]
ActivationName = Literal["sigmoid", "tanh", "relu", "leaky_relu"]
PoolingName = Literal["mean", "max", "mean_max"]

OPTIMIZERS: tuple[OptimizerName, ...] = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
ACTIVATIONS: tuple[ActivationName, ...] = ("sigmoid", "tanh", "relu", "leaky_relu")

# learning rates that work out of the box for each optimizer on bag-of-features text classifiers
DEFAULT_LR: dict[str, float] = {
    "sgd": 0.1,
    "momentum": 0.01,
    "adagrad": 0.05,
    "rmsprop": 0.001,
    "adam": 0.001,
}


def classifier_normalize_default() -> NormalizeConfig:
    """Normalisation for classification: like word vectors, but punctuation runs and emoji stay ("!!!", "😂")."""
    return NormalizeConfig(drop_punctuation=False)


#: a label's readable name: text, never empty or only spaces (a label answered as "" reads as no answer)
LabelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class FeatureConfig(BaseModel):
    """What goes into each text's bag of features: words, word n-grams and character n-grams."""

    model_config = ConfigDict(extra="forbid")

    tokenizer: Literal["regex", "spacy"] = Field(
        default="regex", description="regex: fast (needed for >= 20k texts/s); spacy: spaCy's tokenizer."
    )
    word_ngrams: int = Field(default=2, ge=1, le=3, description="1 = words; 2 = + bigrams; 3 = + trigrams.")
    char_ngram_min: int = Field(default=3, ge=0, le=10, description="0 turns character n-grams off.")
    char_ngram_max: int = Field(default=5, ge=0, le=10)
    min_count: int = Field(default=1, ge=1, description="Texts a word must appear in to get its own row.")
    ngram_min_count: int = Field(
        default=2, ge=1, description="Texts a word or character n-gram must appear in to get a row."
    )
    max_rows: int = Field(default=2_000_000, ge=100, description="Cap on embedding rows (frequent first).")
    weighting: Literal["idf", "uniform"] = Field(
        default="idf",
        description="idf: rarer features weigh more in the mean (as TF-IDF); uniform: plain mean.",
    )

    @model_validator(mode="after")
    def _ngram_range(self) -> FeatureConfig:
        if self.char_ngram_min and self.char_ngram_max < self.char_ngram_min:
            raise ValueError("char_ngram_max must be >= char_ngram_min (or set char_ngram_min = 0)")
        return self

    @property
    def uses_chars(self) -> bool:
        return self.char_ngram_min > 0


class ModelConfig(BaseModel):
    """The network: embedding bag -> pooling -> MLP -> softmax."""

    model_config = ConfigDict(extra="forbid")

    embedding_dim: int = Field(default=64, ge=2, le=1024, description="Ignored when --embeddings is given.")
    freeze_embeddings: bool = Field(
        default=False, description="Keep pretrained word vectors fixed (n-gram rows are still trained)."
    )
    pooling: PoolingName = Field(
        default="mean_max", description="mean (idf-weighted), max (over token vectors), or both concatenated."
    )
    # checked by the field itself, so that a comparison grid's values are checked before anything trains
    hidden: Annotated[list[int], AfterValidator(_hidden_sizes)] = Field(
        default_factory=lambda: [64], max_length=16, description="Hidden layer sizes; [] = linear."
    )
    activation: ActivationName = "relu"
    leaky_slope: float = Field(default=0.01, ge=0.0, lt=1.0)
    dropout: float = Field(default=0.5, ge=0.0, lt=1.0)
    features: FeatureConfig = Field(default_factory=FeatureConfig)


class TrainingConfig(BaseModel):
    """Optimisation, stopping and decision rules."""

    model_config = ConfigDict(extra="forbid")

    optimizer: OptimizerName = "adam"
    lr: float | None = Field(
        default=None,
        gt=0,
        le=MAX_LR,
        allow_inf_nan=False,
        description="Default depends on the optimizer (adam 0.001).",
    )
    momentum: float = Field(
        default=0.9, ge=0.0, lt=1.0, description="Coefficient for the momentum optimizer."
    )
    embedding_lr_scale: float | None = Field(
        default=None,
        gt=0,
        le=MAX_EMBEDDING_LR_SCALE,
        allow_inf_nan=False,
        description="The embedding's learning rate is lr times this; default 1 for adagrad, rmsprop and adam, "
        "and the mean number of ids per text for sgd and momentum (see optim.py).",
    )
    weight_decay: float = Field(
        default=0.0, ge=0.0, le=MAX_LR, allow_inf_nan=False, description="L2 penalty on the dense layers."
    )
    epochs: int = Field(default=20, ge=1, le=10_000, description="Maximum number of epochs.")
    batch_size: Annotated[int, Field(ge=1, le=65_536)] | Literal["full"] = Field(
        default=32,
        description="Examples per step; 1 = stochastic, 'full' = the whole training set (full-batch).",
    )
    target_error: float | None = Field(
        default=None, ge=0.0, lt=1.0, description="Stop once the validation error rate falls to this."
    )
    patience: int | None = Field(
        default=2,
        ge=0,
        description="Early stopping: epochs without a better validation loss; 0 or null = off.",
    )
    validation_fraction: float = Field(
        default=0.1, ge=0.0, lt=0.5, description="Held out of train when no validation file is given."
    )
    label_smoothing: float = Field(
        default=0.1,
        ge=0.0,
        lt=1.0,
        description="Soft targets: robust to noisy labels (0 = plain cross-entropy).",
    )
    class_weights: Literal["none", "balanced"] | dict[str, float] = Field(
        default="none", description="'balanced' weighs classes by inverse frequency; or {label: weight}."
    )
    tune_thresholds: bool = Field(default=True, description="Tune decision biases on validation (macro-F1).")
    refit: Literal["off", "replace", "average"] = Field(
        default="average",
        description="With a holdout (no validation file), train again on train + holdout for the epochs chosen, "
        "then ship that network (replace) or average its probabilities with the holdout-chosen one (average).",
    )
    seed: int = Field(default=7, ge=0, le=2**32 - 1, description="Same seed, same model.")
    threads: int = Field(
        default=1,
        ge=1,
        le=256,
        description="torch threads while training. One by default: each step's work is small, and on shared "
        "cores extra threads spin (an epoch took 10x longer with 2 threads on a busy 2-core machine).",
    )

    @model_validator(mode="after")
    def _weights(self) -> TrainingConfig:
        if isinstance(self.class_weights, dict):
            bad = [k for k, w in self.class_weights.items() if not (math.isfinite(w) and w > 0)]
            if bad:
                raise ValueError(
                    f"class weights must be positive numbers; not so for {', '.join(map(repr, bad))}"
                )
        return self

    def batch_length(self, n: int) -> int:
        """Examples per optimisation step on ``n`` training texts."""
        return max(n, 1) if self.batch_size == "full" else self.batch_size

    @property
    def effective_lr(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.optimizer]


class ClassifierRun(BaseModel):
    """Everything one training run needs; saved (resolved) in the artifact as ``config.json``."""

    model_config = ConfigDict(extra="forbid")

    name: ModelName = Field(
        description="Registry name: letters, digits, '_', '-', '.', starting alphanumeric."
    )
    train: str = Field(min_length=1, description="A CSV / JSONL path or a dataset catalogue name.")
    validation: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    embeddings: str | None = Field(default=None, description="A registered word2vec/fasttext model ref.")
    label_names: dict[str, LabelName] = Field(
        default_factory=dict,
        description="Readable names the model answers with, by label as text ({'0': 'nao_toxico'}); default: "
        "the catalogue's names for known data sets, else the labels themselves.",
    )
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    normalize: NormalizeConfig = Field(default_factory=classifier_normalize_default)
    baseline: bool = Field(default=False, description="Also train TF-IDF + LogisticRegression and report it.")
    strict: bool = Field(
        default=False,
        description="Refuse rows with an empty text (naming their lines) instead of skipping and counting them.",
    )


class RunFile(BaseModel):
    """The TOML file form: any field of :class:`ClassifierRun`, all optional (the CLI fills the rest)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    train: str | None = None
    validation: str | None = None
    text_column: str | None = None
    label_column: str | None = None
    embeddings: str | None = None
    label_names: dict[str, LabelName] | None = None
    model: ModelConfig | None = None
    training: TrainingConfig | None = None
    normalize: NormalizeConfig | None = None
    baseline: bool | None = None
    strict: bool | None = None


def load_run_file(path: Path) -> dict[str, Any]:
    """The fields a TOML config file sets (validated), ready to merge with command-line options.

    Raises:
        InvalidConfig: unreadable TOML or a field that does not validate (named with the file).
    """
    loaded = load_toml_config(path, RunFile)
    return loaded.model_dump(exclude_none=True, exclude_unset=True)
