"""The job kinds: for each, the pydantic config it validates (the CLI's own), the inputs it reads, how it runs.

Trainers are imported when a job runs, not when this module is imported, so the API can validate configs
without loading torch or gensim.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from models.collection import CollectionStore
from models.errors import InvalidConfig, InvalidInput
from models.references import Kind
from models.registry import ModelVersion, Registry
from pipelines.reading.corpus import CorpusLimits
from pipelines.reading.datasets import DataCatalog, catalogue
from pipelines.runs.config_io import validation_message
from pipelines.runs.progress import ProgressCallback
from services.jobs.inputs import DataRoot


class DataRootCatalog(DataCatalog):
    """The data catalogue, except that plain paths must lie under the data root (catalogue names still work)."""

    def __init__(self, mirror: Path | None, cache_dir: Path, *, data_root: DataRoot) -> None:
        super().__init__(mirror, cache_dir)
        self.data_root = data_root

    def resolve(self, spec: str) -> list[Path]:
        if is_dataset(spec):
            return super().resolve(spec)
        return [self.data_root.resolve(spec, allow_dir=True)]


def is_dataset(spec: str) -> bool:
    return spec in catalogue()


@dataclass(frozen=True)
class JobContext:
    """What a running job gets: a registry that refuses to commit once the job is cancelled, its inputs, the
    limits on reading them, and ``output_dir`` (``PALAVRA_HOME/reports/<job id>``) for files a job produces
    besides a model."""

    registry: Registry
    catalog: DataRootCatalog
    data_root: DataRoot
    cache_dir: Path
    output_dir: Path
    progress: ProgressCallback
    limits: CorpusLimits = field(default_factory=CorpusLimits)
    collections: CollectionStore | None = None
    collection_ann_min_docs: int | None = None
    # the job's cancellation check for writes outside the registry: running -> committing, or JobStopped
    before_commit: Callable[[], None] | None = None

    def resolve_path(self, spec: str) -> Path:
        """One input file: a catalogue name's (single) file or a path under the data root."""
        if is_dataset(spec):
            files = self.catalog.resolve(spec)
            if len(files) != 1:
                raise InvalidInput(f"data set {spec!r} has {len(files)} files; name one of its files instead")
            return files[0]
        return self.data_root.resolve(spec)


@dataclass(frozen=True)
class JobKind:
    """One kind of job.

    Args:
        name: ``word2vec``, ``classifier``, ``compare``, ``lm``, ``compare_lm`` or ``collection``.
        config_model: returns the pydantic model its config validates against.
        inputs: the input specs (catalogue names or paths) a validated config reads.
        run: trains and returns the model version it registered, or for kinds that register none a JSON-able
            result (kept on the job record).
        registers: the registry kind a validated config's model will be (checked against its name at submit),
            None for kinds that register no model.
        corpora: which of ``inputs`` are corpora (files or folders of .txt, .jsonl, .csv), in the groups
            training reads as one, checked for a readable format at submit.
    """

    name: str
    config_model: Callable[[], type[BaseModel]]
    inputs: Callable[[Any], list[str]]
    run: Callable[[Any, JobContext], ModelVersion | dict[str, Any]]
    registers: Callable[[Any], str] | None = None
    corpora: Callable[[Any], list[list[str]]] | None = None

    def validate(
        self, config: dict[str, Any], *, source: str = "job config", stored: bool = False
    ) -> BaseModel:
        """The config as its pydantic model.

        ``stored``: a config recorded at an earlier submit, read again to run it. It was accepted then; a rule made
        stricter since (a language model's n-gram order) or a default changed since (a plain Word2Vec config carries
        the word-level keys at their defaults of the day) must not fail a job queued before it.

        Raises:
            InvalidConfig: naming every offending field.
        """
        model = self.config_model()
        try:
            return model.model_validate(config, context={"stored": stored})
        except ValidationError as exc:
            raise InvalidConfig(validation_message(exc, source=source)) from exc


# -- word2vec ------------------------------------------------------------------------------------------------
def _word2vec_model() -> type[BaseModel]:
    from pipelines.word2vec.config import Word2VecRun

    return Word2VecRun


def _corpora_together(run: Any) -> list[list[str]]:
    """A word2vec run reads its corpora as one (one prepared token file)."""
    return [list(run.corpus)]


def _corpora_apart(run: Any) -> list[list[str]]:
    """A language model prepares each corpus on its own."""
    return [[spec] for spec in run.corpus]


def _word2vec_inputs(run: Any) -> list[str]:
    specs = list(run.corpus)
    if run.evaluate:  # None means the catalogue's default evaluation sets
        specs += [*(run.evaluation.analogies or []), *(run.evaluation.pairs or [])]
    return specs


def _word2vec_run(run: Any, ctx: JobContext) -> ModelVersion:
    from pipelines.word2vec.train import train_word2vec

    return train_word2vec(
        run,
        registry=ctx.registry,
        catalog=ctx.catalog,
        cache_dir=ctx.cache_dir,
        progress=ctx.progress,
        limits=ctx.limits,
    )


# -- classifier ----------------------------------------------------------------------------------------------
def _classifier_model() -> type[BaseModel]:
    from pipelines.classifier.config import ClassifierRun

    return ClassifierRun


def _classifier_inputs(run: Any) -> list[str]:
    return [spec for spec in (run.train, run.validation) if spec]


def _classifier_run(run: Any, ctx: JobContext) -> ModelVersion:
    from pipelines.classifier.train import train_classifier

    return train_classifier(run, registry=ctx.registry, resolve_path=ctx.resolve_path, progress=ctx.progress)


# -- compare -------------------------------------------------------------------------------------------------
@cache
def _compare_model() -> type[BaseModel]:
    from pydantic import Field, field_validator, model_validator

    from pipelines.classifier.config import ActivationName, ClassifierRun, OptimizerName
    from pipelines.classifier.grid import axis, grid_axes

    class CompareRun(ClassifierRun):
        """A classifier run (shared by every cell) and the grid to train on it.

        ``grid`` maps run-config keys (dotted, as ``training.lr``) to their values; ``optimizers`` and
        ``activations`` are shorthands for ``training.optimizer`` and ``model.activation``, and with no grid
        they default to every optimizer and activation.
        """

        name: str = Field(default="compare", min_length=1, max_length=64)
        optimizers: list[OptimizerName] | None = Field(default=None, min_length=1)
        activations: list[ActivationName] | None = Field(default=None, min_length=1)
        grid: dict[str, list[Any]] = Field(default_factory=dict)
        sample: int | None = Field(default=None, ge=1, description="Train on this many sampled texts.")

        @field_validator("grid")
        @classmethod
        def _grid(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
            return {key: list(axis(key, values).values) for key, values in grid.items()}

        @model_validator(mode="after")
        def _axes(self) -> CompareRun:
            axes = grid_axes(optimizers=self.optimizers, activations=self.activations, grid=self.axes)
            for a in axes[: len(axes) - len(self.grid)]:  # the shorthands, with their defaults filled in
                target = "optimizers" if a.key == "training.optimizer" else "activations"
                setattr(self, target, list(a.values))
            return self

        @property
        def axes(self) -> list[Any]:
            return [axis(key, values) for key, values in self.grid.items()]

    return CompareRun


def _compare_run(run: Any, ctx: JobContext) -> dict[str, Any]:
    from pipelines.classifier.compare import compare_classifiers
    from pipelines.classifier.config import ClassifierRun
    from pipelines.classifier.grid import grid_axes

    base = ClassifierRun.model_validate(
        run.model_dump(exclude={"optimizers", "activations", "grid", "sample"})
    )
    return compare_classifiers(
        base,
        axes=grid_axes(optimizers=run.optimizers, activations=run.activations, grid=run.axes),
        out_dir=ctx.output_dir,
        sample=run.sample,
        resolve_path=ctx.resolve_path,
        progress=ctx.progress,
    )


# -- lm ------------------------------------------------------------------------------------------------------
def _lm_model() -> type[BaseModel]:
    from pipelines.lm.config import LMRun

    return LMRun


def _lm_inputs(run: Any) -> list[str]:
    return list(run.corpus)


def _lm_run(run: Any, ctx: JobContext) -> ModelVersion:
    from pipelines.lm.train import train_lm

    return train_lm(
        run,
        registry=ctx.registry,
        catalog=ctx.catalog,
        cache_dir=ctx.cache_dir,
        progress=ctx.progress,
        limits=ctx.limits,
    )


# -- compare_lm ----------------------------------------------------------------------------------------------
@cache
def _compare_lm_model() -> type[BaseModel]:
    from pydantic import Field, field_validator, model_validator

    from pipelines.lm.compare import grid_axes, lm_keys
    from pipelines.lm.config import LMActivation, LMOptimizer, LMRun

    class CompareLMRun(LMRun):
        """A language-model run (shared by every cell) and the grid to train on it: ``grid`` maps the keys of
        ``palavra compare lm --grid`` (``model.context``, ``training.lr``, or the bare names) to their values;
        ``optimizers`` and ``activations`` are shorthands."""

        name: str = Field(default="compare", min_length=1, max_length=64)
        optimizers: list[LMOptimizer] | None = Field(default=None, min_length=1)
        activations: list[LMActivation] | None = Field(default=None, min_length=1)
        grid: dict[str, list[Any]] = Field(default_factory=dict)

        @field_validator("grid")
        @classmethod
        def _grid(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
            keys = lm_keys()
            return {keys.name(key): list(keys.axis(key, values).values) for key, values in grid.items()}

        @model_validator(mode="after")
        def _axes(self) -> CompareLMRun:
            grid_axes(optimizers=self.optimizers, activations=self.activations, grid=self.axes)
            return self

        @property
        def axes(self) -> list[Any]:
            return [lm_keys().axis(key, values) for key, values in self.grid.items()]

    return CompareLMRun


def _compare_lm_run(run: Any, ctx: JobContext) -> dict[str, Any]:
    from pipelines.lm.compare import compare_lms, grid_axes
    from pipelines.lm.config import LMRun

    # a comparison trains networks alone: no n-gram order to check against the cells' contexts
    base = LMRun.model_validate(run.model_dump(exclude={"optimizers", "activations", "grid", "ngram"}))
    return compare_lms(
        base,
        axes=grid_axes(optimizers=run.optimizers, activations=run.activations, grid=run.axes),
        out_dir=ctx.output_dir,
        catalog=ctx.catalog,
        cache_dir=ctx.cache_dir,
        limits=ctx.limits,
        progress=ctx.progress,
    )


# -- collection -----------------------------------------------------------------------------------------------
@cache
def _collection_model() -> type[BaseModel]:
    from pydantic import ConfigDict, Field

    class CollectionRun(BaseModel):
        """Build a collection from a JSONL file under the data root (or a catalogue file)."""

        model_config = ConfigDict(extra="forbid")

        name: str = Field(min_length=1, max_length=64, description="The new collection's name.")
        source: str = Field(min_length=1, description="JSONL file, one document a line.")
        encoder: str = Field(
            min_length=1, description="A registered encoder (NAME, NAME@VERSION, NAME@ALIAS)."
        )
        text_field: str = Field(default="text", min_length=1)
        id_field: str = Field(default="id", min_length=1)

    return CollectionRun


def _collection_inputs(run: Any) -> list[str]:
    return [run.source]


def _count_lines(path: Path) -> int:
    lines = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines


def _collection_run(run: Any, ctx: JobContext) -> dict[str, Any]:
    from models.collection import check_name
    from pipelines.runs.progress import Progress
    from pipelines.serving.search import create_collection, read_documents

    if ctx.collections is None:
        raise InvalidInput("this worker has no collection store")
    check_name(run.name)
    path = ctx.resolve_path(run.source)
    total = max(1, _count_lines(path))
    done = 0

    def on_batch(n: int) -> None:
        nonlocal done
        done += n
        fraction = 0.95 * min(1.0, done / total)  # the rest: writing the vectors, the index, the rename
        ctx.progress(Progress(stage="encode", fraction=fraction, message=f"{done} documents encoded"))

    info = create_collection(
        ctx.collections,
        ctx.registry,
        run.name,
        read_documents(path, text_field=run.text_field, id_field=run.id_field),
        encoder=run.encoder,
        text_field=run.text_field,
        id_field=run.id_field,
        on_batch=on_batch,
        ann_min_docs=ctx.collection_ann_min_docs,
        before_commit=ctx.before_commit,
    )
    return {"collection": info}


KINDS: dict[str, JobKind] = {
    "word2vec": JobKind(
        "word2vec", _word2vec_model, _word2vec_inputs, _word2vec_run, lambda run: run.kind, _corpora_together
    ),
    "classifier": JobKind(
        "classifier",
        _classifier_model,
        _classifier_inputs,
        _classifier_run,
        lambda _run: Kind.CLASSIFIER.value,
    ),
    "compare": JobKind("compare", _compare_model, _classifier_inputs, _compare_run),
    "lm": JobKind("lm", _lm_model, _lm_inputs, _lm_run, lambda _run: Kind.LM.value, _corpora_apart),
    "compare_lm": JobKind(
        "compare_lm", _compare_lm_model, _lm_inputs, _compare_lm_run, corpora=_corpora_apart
    ),
    "collection": JobKind("collection", _collection_model, _collection_inputs, _collection_run),
}


def job_kind(name: str) -> JobKind:
    """The kind called ``name``.

    Raises:
        InvalidInput: naming the known kinds.
    """
    try:
        return KINDS[name]
    except KeyError:
        raise InvalidInput(
            f"unknown job kind {name!r}; expected one of {', '.join(KINDS)}", kind=name
        ) from None
