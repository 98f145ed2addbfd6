"""The data set catalogue: names resolve through the mirror; the download path is tested over file:// only."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest

from models.errors import DatasetNotFound, DownloadError, InvalidConfig
from pipelines.reading.datasets import RAW_GITHUB, DataCatalog, catalogue
from pipelines.reading.tei import tei_to_text
from services.settings import Settings
from tests.conftest import SHARED_DATA

BRIEF_NAMES = [
    "told-br-1annotator-train",
    "told-br-3annotator-validation",
    "corpus-machado",
    "corpus-all",
    "analogies-lx-br-dev",
    "simlex-lx-999",
    "b2w-10k",
]


def test_catalogue_entries_are_pinned() -> None:
    entries = catalogue()
    assert set(BRIEF_NAMES) <= set(entries)
    for ds in entries.values():
        assert ds.files or ds.parts
        for f in ds.files:
            if f.url is not None:
                assert f.url.startswith(RAW_GITHUB + "/")
                commit = f.url[len(RAW_GITHUB) + 1 :].split("/")[2]
                assert len(commit) == 40
            assert f.sha256 is None or len(f.sha256) == 64
    assert all(f.sha256 for f in entries["corpus-machado"].files)
    assert entries["told-br-1annotator-train"].label_field == "toxic"


def test_unknown_name_lists_known_names(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFound, match=r"known data sets: .*corpus-machado") as info:
        DataCatalog(None, tmp_path).resolve("corpus-macado")
    assert "b2w-10k" in info.value.extra["known"]


def test_paths_resolve_to_themselves(tmp_path: Path) -> None:
    (tmp_path / "meu.txt").write_text("olá\n", encoding="utf-8")
    catalog = DataCatalog(None, tmp_path)
    assert catalog.resolve(str(tmp_path / "meu.txt")) == [tmp_path / "meu.txt"]
    assert catalog.resolve(str(tmp_path)) == [tmp_path]


def test_mirror_only_entry_says_how_to_provide_a_mirror(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"mirror only .*PALAVRA_DATA_MIRROR"):
        DataCatalog(None, tmp_path).resolve("corpus-ptwiki")


def test_a_mirror_that_is_not_a_folder_is_named_not_passed_over(tmp_path: Path) -> None:
    """A typo in PALAVRA_DATA_MIRROR went unnoticed: the files were downloaded instead, and the download error
    advised setting the variable that was set (a newcomer's run)."""
    missing = tmp_path / "nao-existe"
    with pytest.raises(InvalidConfig, match=rf"^PALAVRA_DATA_MIRROR={missing} is not a folder; "):
        DataCatalog(missing, tmp_path / "cache").resolve("simlex-lx-999")


@pytest.mark.slow
@pytest.mark.parametrize("name", BRIEF_NAMES)
def test_names_resolve_from_the_mirror(settings: Settings, name: str) -> None:
    catalog = DataCatalog(settings.data_mirror, settings.cache_dir)
    paths = catalog.resolve(name)
    assert paths
    assert all(p.is_file() and p.is_relative_to(SHARED_DATA) for p in paths)


@pytest.mark.slow
def test_corpus_all_is_the_three_corpora(settings: Settings) -> None:
    catalog = DataCatalog(settings.data_mirror, settings.cache_dir)
    parts = [p for name in ("corpus-machado", "corpus-eltec", "corpus-ptwiki") for p in catalog.resolve(name)]
    assert catalog.resolve("corpus-all") == parts
    assert len(parts) == 217


@pytest.fixture
def upstream(tmp_path: Path) -> Path:
    """A file:// stand-in for raw.githubusercontent.com holding the pinned files, built from the mirror."""
    root = tmp_path / "upstream"
    entries = catalogue()
    simlex = entries["simlex-lx-999"].files[0]
    _put(root, simlex.url, (SHARED_DATA / simlex.mirror).read_bytes())
    told = entries["told-br-1annotator-train"].files[0]
    zip_path = _put(root, told.url, b"")
    with zipfile.ZipFile(zip_path, "w") as zf:
        for f in (told, entries["told-br-1annotator-validation"].files[0]):
            zf.writestr(f"1annotator/{f.member}", (SHARED_DATA / f.mirror).read_bytes())
    tei = '<TEI xmlns="http://www.tei-c.org/ns/1.0"><teiHeader><p>x</p></teiHeader><text><body>'
    for novel in entries["corpus-eltec"].files:
        _put(root, novel.url, (tei + "<head>I</head><p>Era uma  vez.</p></body></text></TEI>").encode())
    return root


def _put(root: Path, url: str | None, data: bytes) -> Path:
    from urllib.parse import unquote

    assert url is not None
    path = root / unquote(url[len(RAW_GITHUB) + 1 :])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.mark.slow
def test_download_checks_sha256_extracts_zip_members_and_converts_tei(tmp_path: Path, upstream: Path) -> None:
    catalog = DataCatalog(None, tmp_path / "cache", base_url=upstream.as_uri())
    [simlex] = catalog.resolve("simlex-lx-999")
    assert simlex == tmp_path / "cache" / "datasets" / "similarity" / "LX-SimLex-999.txt"
    assert simlex.read_bytes() == (SHARED_DATA / "similarity" / "LX-SimLex-999.txt").read_bytes()
    [told] = catalog.resolve("told-br-1annotator-validation")
    expected = SHARED_DATA / "classification" / "told-br" / "validation_1annotator.csv"
    assert hashlib.sha256(told.read_bytes()).hexdigest() == hashlib.sha256(expected.read_bytes()).hexdigest()
    eltec = catalog.resolve("corpus-eltec")
    assert len(eltec) == 100
    assert eltec[0].read_text(encoding="utf-8") == "I\nEra uma vez.\n"
    again = DataCatalog(None, tmp_path / "cache", base_url=(tmp_path / "gone").as_uri())
    assert again.resolve("simlex-lx-999") == [simlex]  # cached: no second download


@pytest.mark.slow
def test_checksum_mismatch_is_download_error_and_leaves_nothing(tmp_path: Path, upstream: Path) -> None:
    simlex = catalogue()["simlex-lx-999"].files[0]
    _put(upstream, simlex.url, b"word1\tword2\nadulterado\t0\n")
    catalog = DataCatalog(None, tmp_path / "cache", base_url=upstream.as_uri())
    with pytest.raises(DownloadError, match="does not match the pinned"):
        catalog.resolve("simlex-lx-999")
    assert not any(p.is_file() for p in (tmp_path / "cache").rglob("*"))


def test_unreachable_upstream_is_download_error(tmp_path: Path) -> None:
    catalog = DataCatalog(None, tmp_path / "cache", base_url=(tmp_path / "nowhere").as_uri())
    with pytest.raises(DownloadError, match=r"cannot download .*PALAVRA_DATA_MIRROR"):
        catalog.resolve("simlex-lx-999")


def test_tei_conversion_keeps_text_blocks_only(tmp_path: Path) -> None:
    src = tmp_path / "a.xml"
    src.write_text(
        '<TEI xmlns="http://www.tei-c.org/ns/1.0"><teiHeader><p>cabeçalho</p></teiHeader><text>'
        "<front><head>Título</head></front><body><div><head>I</head><p>Era <hi>uma</hi>\n vez"
        "<note><p>nota</p></note></p><lg><l>verso um</l><l>verso dois</l></lg><p/></div></body></text></TEI>",
        encoding="utf-8",
    )
    assert tei_to_text(src, tmp_path / "a.txt") == 5
    assert (tmp_path / "a.txt").read_text(
        encoding="utf-8"
    ) == "Título\nI\nEra uma veznota\nverso um\nverso dois\n"
    (tmp_path / "bad.xml").write_text("<TEI><text><p>sem fim", encoding="utf-8")
    with pytest.raises(DownloadError, match="not well-formed"):
        tei_to_text(tmp_path / "bad.xml", tmp_path / "b.txt")


def test_resolve_a_name_the_filesystem_refuses_is_not_found(tmp_path: Path) -> None:
    """A corpus named by a path too long for the filesystem was an OSError traceback (`palavra train word2vec
    --corpus <300 characters>.txt` exited 1), not the one-line 'no data set or file' of any other unknown name."""
    catalog = DataCatalog(None, tmp_path / "cache")
    with pytest.raises(DatasetNotFound, match="File name too long"):
        catalog.resolve("a" * 300 + ".txt")


def test_local_finds_a_catalogue_file_here_without_downloading(tmp_path: Path) -> None:
    """What a job's submit reads the header of: the mirror's or the cache's file, never a download."""
    (entry,) = catalogue()["simlex-lx-999"].files
    catalog = DataCatalog(tmp_path / "mirror", tmp_path / "cache", base_url="http://127.0.0.1:9/nowhere")
    assert catalog.local("simlex-lx-999") is None  # not here: no download is tried
    assert catalog.local("not-a-data-set") is None
    placed = tmp_path / "mirror" / entry.mirror
    placed.parent.mkdir(parents=True)
    placed.write_text("x\n", encoding="utf-8")
    assert catalog.local("simlex-lx-999") == [placed]
