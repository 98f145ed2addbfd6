"""Shared fixtures: isolated settings and registry per test, tiny real Portuguese data built in-process."""

from __future__ import annotations

import os
import random
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from models.registry import Registry
from services.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("PALAVRA_DATA_MIRROR", REPO_ROOT.parent / "shared" / "data")).resolve()
POSTGRES_URL = os.environ.get(
    "PALAVRA_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("PALAVRA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


# Files whose tests share the job worker processes of tests/services/conftest.py's `job_backends` (started once
# per pytest process, each importing torch, gensim and spaCy into its forkserver): with --dist loadfile (`make
# test`) they run in one process, so those workers start once, not once in each process; every other file runs
# in one process as usual. test_jobs_cli.py comes first: the backends tests kill and stop workers.
_SHARED_GROUPS = {
    "tests/services/test_jobs_cli.py": "job-workers",
    "tests/services/test_jobs_backends.py": "job-workers",
}
# The longest groups, longest first (`pytest --durations`, 2026-12-03): they start first, so that no long file is
# left to run alone at the end while the other process has nothing to do. The rest follow, most tests first.
_LONGEST_FIRST = [
    "job-workers",
    "tests/pipelines/test_word2vec_slow.py",
    "tests/pipelines/test_classifier_real_data.py",
    "tests/services/test_compose.py",
    "tests/services/test_cli_classifier.py",
    "tests/pipelines/test_classifier_train.py",
    "tests/services/test_api_classify.py",
    "tests/services/test_jobs_api.py",
    "tests/services/test_api_serve_cli.py",
]


def _group(nodeid: str) -> str:
    path = nodeid.split("::", 1)[0]
    return _SHARED_GROUPS.get(path, path)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _order(items)
    _skip_what_is_missing(items)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """--dist loadfile, with the files of a shared group in one process, and the groups in collection order."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FileGroupScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _group(nodeid)

    config.option.loadscopereorder = False  # keep the order of _order() below
    return FileGroupScheduling(config, log)


def _order(items: list[pytest.Item]) -> None:
    """The longest groups first, each group's files together (a shared group's in the order listed above)."""
    groups: dict[str, list[pytest.Item]] = {}
    for item in items:
        groups.setdefault(_group(item.nodeid), []).append(item)
    order = list(_SHARED_GROUPS)
    for members in groups.values():  # a stable sort keeps each file's own order
        members.sort(key=lambda item: order.index(f) if (f := item.nodeid.split("::", 1)[0]) in order else 0)
    ranked = sorted(
        groups,
        key=lambda g: (
            (_LONGEST_FIRST.index(g), 0) if g in _LONGEST_FIRST else (len(_LONGEST_FIRST), -len(groups[g]))
        ),
    )
    items[:] = [item for group in ranked for item in groups[group]]


def _skip_what_is_missing(items: list[pytest.Item]) -> None:
    """Outside CI, skip what needs real services or ../shared/data when they are absent; in CI, never skip."""
    if os.environ.get("CI"):
        return
    missing_data = not SHARED_DATA.is_dir()
    missing_services = not (_reachable("127.0.0.1", 5432) and _reachable("127.0.0.1", 6379))
    for item in items:
        if missing_data and "slow" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=f"no data mirror at {SHARED_DATA}"))
        if missing_services and "services" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="PostgreSQL/Redis not reachable on 127.0.0.1"))


def lose_creation_race(monkeypatch: pytest.MonkeyPatch, meta: Any, other: Any) -> list[int]:
    """Make the next table creation on ``meta`` lose the race with another process, every time.

    Between this process finding the tables missing and creating them, ``other()`` (another process opening the
    same database) creates them; this process's CREATE TABLE then meets them, as when processes start together on
    a new database. Returns the list of creation attempts made (one entry each).
    """
    create_all = meta.create_all
    attempts: list[int] = []

    def racing(bind: Any, tables: Any = None, checkfirst: bool = True) -> None:
        attempts.append(len(attempts))
        if len(attempts) == 1:
            other()  # re-enters here as attempt 2: the other process creates the tables normally
            create_all(
                bind, tables=tables, checkfirst=False
            )  # what this process decided before they appeared
        else:
            create_all(bind, tables=tables, checkfirst=checkfirst)

    monkeypatch.setattr(meta, "create_all", racing)
    return attempts


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a fresh PALAVRA_HOME, SQLite registry and the shared data mirror."""
    return Settings(
        home=tmp_path / "home",
        data_mirror=SHARED_DATA if SHARED_DATA.is_dir() else None,
        data_root=tmp_path / "data",
        local_workers=0,
        collection_check_s=0,  # a damaged file is seen by the next search (the default looks every 0.25 s)
    )


@pytest.fixture
def registry(settings: Settings) -> Registry:
    settings.home.mkdir(parents=True, exist_ok=True)
    return Registry(settings.home, settings.effective_database_url)


_SUBJECTS = [
    ("o rei", "o reino"),
    ("a rainha", "o reino"),
    ("o príncipe", "o castelo"),
    ("a princesa", "o castelo"),
    ("o homem", "a cidade"),
    ("a mulher", "a cidade"),
    ("o menino", "a escola"),
    ("a menina", "a escola"),
    ("o cão", "o quintal"),
    ("o gato", "o telhado"),
    ("o médico", "o hospital"),
    ("a médica", "o hospital"),
]
_VERBS = ["governa", "visita", "observa", "deixa", "procura", "protege", "conhece", "atravessa"]
_EXTRAS = [
    "durante a manhã",
    "com muita calma",
    "antes do jantar",
    "depois da chuva",
    "sem pressa",
    "no inverno",
    "no verão",
    "com os amigos",
    "em São Paulo",
    "em Lisboa",
]


def make_sentences(n: int, *, seed: int = 0) -> list[str]:
    """``n`` simple, real Portuguese sentences with repeated structure (enough for a tiny Word2Vec)."""
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        subj, place = rnd.choice(_SUBJECTS)
        out.append(f"{subj.capitalize()} {rnd.choice(_VERBS)} {place} {rnd.choice(_EXTRAS)}.")
    return out


@pytest.fixture(scope="session")
def pt_sentences() -> list[str]:
    return make_sentences(600)


@pytest.fixture(scope="session")
def pt_corpus_file(tmp_path_factory: pytest.TempPathFactory, pt_sentences: list[str]) -> Path:
    """A .txt corpus, one document a line."""
    path = tmp_path_factory.mktemp("corpus") / "frases.txt"
    path.write_text("\n".join(pt_sentences) + "\n", encoding="utf-8")
    return path


_TINY_TRAIN = {
    "vector_size": 16,
    "window": 3,
    "min_count": 2,
    "sample": 0.0,
    "epochs": 30,
    "workers": 1,
    "seed": 7,
    "bucket": 20_000,
    "postprocess": "none",
}


@pytest.fixture(scope="session")
def tiny_word2vec(tmp_path_factory: pytest.TempPathFactory, pt_corpus_file: Path):  # type: ignore[no-untyped-def]
    """``register(registry, algorithm="word2vec", name=None) -> ModelVersion``: a tiny trained model, copied in.

    Each algorithm is trained once per session (16 dimensions, 30 epochs on ``pt_corpus_file``, through the real
    ``train_word2vec`` pipeline); every call copies its artifact files into the given registry as a new version.
    """
    from pipelines.reading.datasets import DataCatalog
    from pipelines.word2vec.config import Word2VecRun
    from pipelines.word2vec.train import train_word2vec

    home = tmp_path_factory.mktemp("tiny-word2vec")
    source = Registry(home)
    catalog = DataCatalog(None, home / "cache")
    trained = {}
    for algorithm in ("word2vec", "fasttext"):
        run = Word2VecRun(
            name=f"tiny-{algorithm}",
            corpus=[str(pt_corpus_file)],
            # plain FastText: the joined model (word_weight > 0) has its own tests
            train={
                "algorithm": algorithm,
                "architecture": "skipgram",
                **_TINY_TRAIN,
                **({"word_weight": 0.0} if algorithm == "fasttext" else {}),
            },
            evaluate=False,
        )
        trained[algorithm] = train_word2vec(run, registry=source, catalog=catalog, cache_dir=home / "cache")

    def register(registry: Registry, algorithm: str = "word2vec", name: str | None = None):  # type: ignore[no-untyped-def]
        original = trained[algorithm]
        skip = {"name", "kind", "created_at", "files", "versions"}
        with registry.create(name or original.name, original.kind) as writer:
            for path in sorted(original.path.rglob("*")):
                rel = path.relative_to(original.path).as_posix()
                if path.is_file() and rel != "metadata.json":
                    shutil.copyfile(path, writer.file(rel))
            writer.metadata.update({k: v for k, v in original.metadata.items() if k not in skip})
        return writer.version  # type: ignore[attr-defined]

    return register


@pytest.fixture
def w2v_model(registry: Registry, tiny_word2vec):  # type: ignore[no-untyped-def]
    """A tiny skip-gram Word2Vec model registered as ``tiny-word2vec`` in this test's registry."""
    return tiny_word2vec(registry, "word2vec")


@pytest.fixture
def ft_model(registry: Registry, tiny_word2vec):  # type: ignore[no-untyped-def]
    """A tiny skip-gram FastText model (subword vectors) registered as ``tiny-fasttext``."""
    return tiny_word2vec(registry, "fasttext")


_POSITIVE = ["ótimo", "excelente", "maravilhoso", "recomendo", "perfeito", "adorei", "bom", "rápido", "lindo"]
_NEGATIVE = ["péssimo", "horrível", "ruim", "defeito", "quebrado", "atrasou", "odiei", "lento", "falso"]
_NEUTRAL = [
    "produto",
    "entrega",
    "loja",
    "compra",
    "caixa",
    "cor",
    "tamanho",
    "preço",
    "chegou",
    "veio",
    "site",
]


def make_reviews(
    n: int, *, seed: int = 0, classes: tuple[str, ...] = ("pos", "neg")
) -> list[tuple[str, str]]:
    """``n`` short Portuguese product reviews with a label each (pos: praise words, neg: complaints, neutro: none).

    A label is decided by which word list its two cue words come from, so a classifier can learn it from a few
    hundred examples, and unseen spellings share character n-grams with seen ones.
    """
    rnd = random.Random(seed)
    cues = {"pos": _POSITIVE, "neg": _NEGATIVE, "neutro": _NEUTRAL}
    out = []
    for _ in range(n):
        label = rnd.choice(classes)
        words = rnd.sample(_NEUTRAL, 4) + rnd.sample(cues[label], 2)
        rnd.shuffle(words)
        out.append((" ".join(words).capitalize() + rnd.choice([".", "!", "!!", ""]), label))
    return out


def review_run(files: dict[str, Path], **overrides: Any) -> Any:
    """A small ClassifierRun on :func:`reviews_csv` (8-dim network, 6 epochs); dict overrides merge into a table."""
    from pipelines.classifier.config import ClassifierRun

    spec: dict[str, Any] = {
        "name": "sentimento",
        "train": str(files["train"]),
        "validation": str(files["validation"]),
        "text_column": "texto",
        "label_column": "rotulo",
        "model": {"embedding_dim": 8, "hidden": [8]},
        "training": {"epochs": 6, "lr": 0.02, "batch_size": 16, "threads": 1},
    }
    for key, value in overrides.items():
        spec[key] = {**spec.get(key, {}), **value} if isinstance(value, dict) else value
    return ClassifierRun.model_validate(spec)


@pytest.fixture(scope="session")
def reviews_csv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Labelled review files: ``train`` (300 rows) and ``validation`` (100 rows), CSV columns texto,rotulo."""
    import csv

    folder = tmp_path_factory.mktemp("reviews")
    out = {}
    for split, n, seed in (("train", 300, 0), ("validation", 100, 1)):
        out[split] = folder / f"{split}.csv"
        with out[split].open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["texto", "rotulo"])
            writer.writerows(make_reviews(n, seed=seed))
    return out
