"""The recipe of a language-model run (saved with the artifact, so a model says how it was made)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from models.errors import InvalidConfig
from models.ngram import MAX_ORDER as MAX_NGRAM_ORDER
from pipelines.runs.config_io import ModelName, validation_message
from pipelines.text.normalize import NormalizeConfig

# past this every next token is about equally likely; far past it the division overflows float32 (NaN)
MAX_TEMPERATURE = 100.0
MAX_NEW_TOKENS = 2000
# torch's CPU generator keeps the low 32 bits of a seed: a larger one would repeat a smaller one's text
MAX_SEED = 2**32 - 1

LMOptimizer = Literal["sgd", "momentum", "adagrad", "rmsprop", "adam"]
LMActivation = Literal["sigmoid", "tanh", "relu", "leaky_relu"]

# punctuation is kept (generated text reads as Portuguese, and "." / "?" help predict what follows) and a line is a
# document: sentence ends become </s> and line ends <p> (pipelines/lm/data.py), so both boundaries are tokens
LM_NORMALIZE = NormalizeConfig(drop_punctuation=False, split_sentences=False)


#: the run's keys grouped as comparisons (``--grid``) and ``--set`` name them: ``model.context``, ``training.lr``
MODEL_KEYS = ("context", "dim", "hidden", "activation", "dropout", "max_vocab", "min_count")
TRAINING_KEYS = ("optimizer", "lr", "epochs", "batch_size", "patience", "seed")
#: ``model.context`` -> ``context``, ...: the grouped names of the run's own (flat) keys
SECTIONED_KEYS = {f"model.{k}": k for k in MODEL_KEYS} | {f"training.{k}": k for k in TRAINING_KEYS}


DEFAULT_NGRAM_ORDER = 4


class LMRun(BaseModel):
    """A language model: corpus, vocabulary, network and training settings."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: ModelName = Field(min_length=1, max_length=64)
    corpus: list[str] = Field(min_length=1, description="Files, folders or catalogue names.")
    text_field: str = "text"
    normalize: NormalizeConfig = Field(default_factory=lambda: LM_NORMALIZE)
    context: int = Field(default=5, ge=1, le=32, description="Previous tokens the model sees.")
    max_vocab: int = Field(default=30_000, ge=10, le=1_000_000, description="Most frequent words kept.")
    min_count: int = Field(default=2, ge=1, description="Occurrences a word needs to get its own row.")
    dim: int = Field(default=64, ge=2, le=1024, description="Embedding width (ignored with --embeddings).")
    embeddings: str | None = Field(default=None, description="A registered word2vec/fasttext model.")
    freeze_embeddings: bool = False
    hidden: list[Annotated[int, Field(ge=1, le=65_536)]] = Field(default_factory=lambda: [256], max_length=8)
    activation: LMActivation = "tanh"
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    # Bengio et al. (2003) mix their network with an n-gram. On corpus-all's held-out slice the mixture with an
    # order-4 n-gram is 27.6% below IRSTLM's modified Kneser-Ney 5-gram (order 5: 29.0%, 1.8x the tables' size;
    # order 3: 23.6%) where the network alone is 7.6% below it (benchmarks/results/lm.md, "The n-gram component")
    ngram: int | None = Field(
        default=None,
        ge=0,
        le=MAX_NGRAM_ORDER,
        description=f"Order of the Kneser-Ney n-gram mixed with the network, at most context + 1 (0: none; default "
        f"{DEFAULT_NGRAM_ORDER}, or context + 1 when that is less).",
    )
    optimizer: LMOptimizer = "adam"
    # batch 2048 at lr 0.004: 1.47x the tokens/s of batch 512 at 0.002 on corpus-all, the same held-out perplexity
    # on the corpus-machado slice (78.46 vs 78.19); benchmarks/results/lm.md, "Training time"
    lr: float = Field(default=4e-3, gt=0.0, le=10.0)
    epochs: int = Field(default=5, ge=1, le=1000)
    batch_size: int = Field(default=2048, ge=1, le=65_536)
    patience: int | None = Field(
        default=2,
        ge=0,
        description="Early stopping: epochs without a better validation perplexity; 0 or null = off (as for the "
        "classifier).",
    )
    # one epoch of corpus-all (~18M tokens) took 23 min of one core's CPU (benchmarks/results/lm.md): a corpus that
    # large gets one epoch by default, a 2M-token one still its 5
    max_tokens_trained: int | None = Field(
        default=20_000_000,
        ge=1,
        description="Start no epoch that would take the tokens trained on past this (the first always runs).",
    )
    holdout: float = Field(default=0.01, gt=0.0, lt=0.5, description="Last fraction of each source held out.")
    max_train_tokens: int | None = Field(default=None, ge=1, description="Train on at most this many tokens.")
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    workers: int = Field(default=2, ge=1, le=64, description="Processes preparing the corpus.")
    threads: int = Field(
        default=1,
        ge=1,
        le=64,
        description="torch threads while training (extra threads spin on shared cores).",
    )

    @field_validator("freeze_embeddings")
    @classmethod
    def _freeze_needs_embeddings(cls, freeze: bool, info: ValidationInfo) -> bool:
        # with no embeddings it froze nothing, silently, and the config recorded it as frozen
        if (
            freeze
            and info.data.get("embeddings") is None
            and not (info.context and info.context.get("stored"))
        ):
            raise ValueError(
                "there are no embeddings to freeze; name a word2vec/fasttext model as embeddings"
            )
        return freeze

    @field_validator("ngram")
    @classmethod
    def _ngram_within_context(cls, ngram: int | None, info: ValidationInfo) -> int | None:
        # an n-gram sees at most the network's context and the word itself: an order given above that was cut
        # down to it without a word
        context = info.data.get("context")
        if info.context and info.context.get(
            "stored"
        ):  # accepted when it was stored: trained cut to context + 1
            return ngram
        if ngram is not None and context is not None and ngram > context + 1:
            raise ValueError(
                f"order {ngram} is above context + 1 = {context + 1}; give at most {context + 1}"
            )
        return ngram

    @property
    def ngram_order(self) -> int:
        """The order of the n-gram trained: ``ngram`` (else the default order), at most ``context + 1``."""
        return min(DEFAULT_NGRAM_ORDER if self.ngram is None else self.ngram, self.context + 1)


def make_run(values: dict[str, Any]) -> LMRun:
    """An :class:`LMRun` from options (None means: the default).

    Raises:
        InvalidConfig: a value out of range, naming the field.
    """
    return build_run({k: v for k, v in values.items() if v is not None})


def build_run(data: dict[str, Any]) -> LMRun:
    """An :class:`LMRun` from merged config layers, where None is a value (``patience = None``: no early stop).

    Raises:
        InvalidConfig: a value out of range, naming the field.
    """
    try:
        return LMRun.model_validate(data)
    except ValidationError as exc:
        raise InvalidConfig(validation_message(exc, source="language model")) from exc
