"""The web explorer in a real browser (Debian's chromium driven by Playwright) against a live ``palavra serve``.

Each area is used the way a person would: typing, clicking, pressing keys; each test asserts what appears on
screen and saves a screenshot under ``runs/screenshots/`` (with ``PALAVRA_WEB_DOCS_IMAGES=1``, also the README's
``docs/img/web-*.png``). Outside CI the tests skip when ``/usr/bin/chromium`` or axe-core is missing; in CI
(``CI=true``) they must run: ``.ci/run`` installs both. The fixtures (a home of small models, a live server over it,
a browser, a page) are in tests/services/conftest.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.registry import Registry
from tests.conftest import make_sentences
from tests.services.web_helpers import AXE, KEY, need, serve, shot


def _explore(page: Any, word: str, *, model: str = "tiny-word2vec", k: int = 20) -> None:
    page.select_option("#words-model", model)
    page.fill("#k", str(k))
    page.fill("#word", word)
    page.press("#word", "Enter")


def test_web_words_neighbours_map_analogy_pairs_and_two_models(page: Any) -> None:
    _explore(page, "rei")
    page.wait_for_selector("#map .pt.q")
    points = page.locator("#map .pt")
    assert points.count() == 21  # the word and its 20 neighbours
    assert page.locator("#neighbors li").count() == 20
    listed = [t.split("\n")[0] for t in page.locator("#neighbors li").all_inner_texts()]
    placed = points.evaluate_all("ps => ps.map(p => p.dataset.word)")
    assert sorted(placed) == sorted([*listed, "rei"])
    assert page.locator("#oov-note").is_hidden()

    neighbour = page.locator("#map .pt:not(.q)").first
    word = neighbour.get_attribute("data-word")
    neighbour.hover()
    tip = page.locator("#map-tip")
    assert tip.is_visible()
    assert word in tip.inner_text()
    assert f"{float(neighbour.get_attribute('data-score')):.3f}" in tip.inner_text()
    neighbour.click()  # explore from that point
    page.wait_for_function("w => document.querySelector('#map .pt.q')?.dataset.word === w", arg=word)
    assert page.input_value("#word") == word

    _explore(page, "reis")  # not in the word2vec vocabulary: suggestions to click
    page.wait_for_selector("#suggestions button")
    assert "Palavra desconhecida" in page.inner_text("#suggestions")
    page.locator("#suggestions button", has_text="rei").first.click()
    page.wait_for_function("() => document.querySelector('#map .pt.q')?.dataset.word === 'rei'")

    _explore(page, "reizinho", model="tiny-fasttext")  # FastText: built from subwords
    page.wait_for_selector("#oov-note:not([hidden])")
    assert "subpalavras" in page.inner_text("#oov-note")

    page.fill("#an-a", "rei")
    page.fill("#an-b", "homem")
    page.fill("#an-c", "mulher")
    page.check("input[name=an-method][value='3cosmul']")
    page.click("#analogy-form button[type=submit]")
    page.wait_for_selector("#analogy-out li")
    assert page.locator("#analogy-out li").count() == 5
    assert "3cosmul" in page.inner_text("#analogy-status")

    page.fill("#pair-a", "rei")
    page.fill("#pair-b", "rainha")
    page.click("#pair-form button[type=submit]")
    page.wait_for_selector("#pair-out:has-text('cosseno')")
    cosine = float(page.inner_text("#pair-out").rsplit("=", 1)[1])
    assert -1.0 <= cosine <= 1.0

    page.fill("#side-word", "castelo")
    page.select_option("#side-left", "tiny-word2vec@1")
    page.select_option("#side-right", "tiny-fasttext")
    page.click("#side-form button[type=submit]")
    page.wait_for_selector("#side-out .side-col >> nth=1")
    headings = page.locator("#side-out h4").all_inner_texts()
    assert headings == ["tiny-word2vec@1", "tiny-fasttext@1"]
    assert page.locator("#side-out li").count() == 20
    _explore(page, "rei", k=50)
    page.wait_for_selector("#map .pt.q")
    shot(page, "words")


def test_web_classify_text_and_file_with_a_bar_per_class(page: Any, tmp_path: Path) -> None:
    page.click("#tab-classify")
    assert page.locator("#classify").is_visible()
    page.select_option("#clf-version", "1")
    page.fill("#clf-text", "Produto ótimo, adorei e recomendo!\nChegou quebrado, péssimo e horrível.")
    texts = tmp_path / "textos.txt"
    texts.write_text("excelente entrega, perfeito\n", encoding="utf-8")
    page.set_input_files("#clf-file", str(texts))
    page.click("#classify-form button[type=submit]")
    page.wait_for_selector("#classify-out .result >> nth=2")
    labels = page.locator("#classify-out .label-name").all_inner_texts()
    assert labels == ["pos", "neg", "pos"]
    assert page.locator("#classify-out .result").first.locator("li").count() == 2  # one bar per class
    assert "sentimento@1" in page.inner_text("#classify-status")
    shot(page, "classify")


def test_web_models_registry_report_and_alias_with_the_session_key(
    page: Any, explorer_home: tuple[Path, Path]
) -> None:
    page.click("#tab-models")
    page.wait_for_selector("#model-table tbody tr >> nth=2")
    assert page.locator("#model-table tbody th").all_inner_texts() == [
        "conto",
        "frases",
        "sentimento",
        "tiny-fasttext",
        "tiny-word2vec",
    ]
    page.click("#model-table button:has-text('sentimento')")
    page.wait_for_selector("#report svg.confusion")
    assert page.locator("#report svg.confusion rect").count() == 4  # two classes
    assert page.locator("#report path[data-series='train_loss']").count() == 1
    assert page.locator("#report path[data-series='val_loss']").count() == 1
    assert "Macro-F1" in page.inner_text("#report")

    page.click(
        "#model-table button:has-text('tiny-fasttext')"
    )  # word vectors: analogies by section, Spearman
    page.wait_for_selector("#report h4:has-text('mini-analogias')")
    sections = page.locator("#report ul.bars li").all_inner_texts()
    assert [line.split("\n")[0] for line in sections] == [
        "total (5/5)",
        "semântica (3/3)",
        "sintática (2/2)",
        "familia (3/3)",
        "gram-lugares (2/2)",
    ]
    assert page.locator("#report table th[scope=row]").all_inner_texts() == ["mini-pares"]
    assert "Eco ortográfico\n" in page.inner_text("#report")  # the orthographic echo and its neighbour lists

    # a language model: its perplexity and per-epoch curves
    page.click("#model-table button:has-text('conto')")
    page.wait_for_selector("#report h3:has-text('conto@1')")
    assert "Perplexidade na validação" in page.inner_text("#report")
    for series in ("train_loss", "val_loss", "val_perplexity"):
        assert page.locator(f"#report path[data-series='{series}']").count() == 1, series

    # a text encoder: a pooling one trained nothing; a siamese one's report (its metadata, as training writes it)
    page.click("#model-table button:has-text('frases')")
    page.wait_for_selector("#report h3:has-text('frases@1')")
    assert "Sem métricas registradas." in page.inner_text("#report")
    history = [
        {"epoch": 1, "loss": 0.058, "val_loss": 0.040, "val_pearson": 0.43},
        {"epoch": 2, "loss": 0.035, "val_loss": 0.037, "val_pearson": 0.46},
    ]
    Registry(explorer_home[0]).annotate(
        "frases@1", {"best_epoch": 2, "validation": {"pearson": 0.46, "loss": 0.037}, "history": history}
    )
    page.click("#model-table button:has-text('conto')")
    page.wait_for_selector("#report h3:has-text('conto@1')")
    page.click("#model-table button:has-text('frases')")
    page.wait_for_selector("#report :text('Pearson na validação')")
    assert "0.460" in page.inner_text("#report")
    for series in ("train_loss", "val_loss", "val_pearson"):
        assert page.locator(f"#report path[data-series='{series}']").count() == 1, series

    page.click("#model-table button:has-text('tiny-word2vec')")
    page.wait_for_selector("#report h3:has-text('tiny-word2vec@1')")  # the production version first
    page.select_option("#alias-version", "2")
    page.click("#alias-form button[type=submit]")  # no key yet
    page.wait_for_selector("#alias-status.error")
    page.fill("#api-key", KEY)
    page.click("#key-form button[type=submit]")
    assert page.evaluate("sessionStorage.getItem('palavra.key')") == KEY
    page.click("#alias-form button[type=submit]")
    page.wait_for_selector("#alias-status:has-text('versão 2')")
    page.wait_for_selector("#model-table .pill:has-text('production → 2')")
    page.wait_for_selector("#report h3:has-text('tiny-word2vec@2')")
    page.fill("#alias-name", "teste")
    page.select_option("#alias-version", "1")
    page.click("#alias-form button[type=submit]")
    page.wait_for_selector("#model-table .pill:has-text('teste → 1')")
    page.click("#alias-delete")  # an alias made by mistake can be removed
    page.wait_for_selector("#alias-status:has-text('removido')")
    page.wait_for_selector("#model-table .pill:has-text('teste → 1')", state="detached")
    page.click("#alias-delete")  # again: the registry says there is no such alias
    page.wait_for_selector("#alias-status.error:has-text('no alias')")
    page.fill("#alias-name", "")
    page.click(
        "#alias-form button[type=submit]"
    )  # the browser's own check stops it: no stale message beside it
    page.wait_for_function("document.querySelector('#alias-status').textContent === ''")
    page.fill("#alias-name", "production")

    page.click("#lang")  # English on request
    assert page.inner_text("#tab-models") == "Models"
    assert page.evaluate("document.documentElement.lang") == "en"
    page.click("#model-table button:has-text('sentimento')")
    page.wait_for_selector("#report svg.confusion")
    shot(page, "models")
    page.click("#lang")
    assert page.inner_text("#tab-models") == "Modelos"


def test_web_saving_a_key_loads_what_protected_reads_refused(
    browser: Any, explorer_home: tuple[Path, Path]
) -> None:
    """With PALAVRA_PROTECT_READS the page opens with nothing to show; saving a read key loads the registry and
    every panel's model lists at once, without a reload (they stayed empty until the tab was left and reopened)."""
    with serve(*explorer_home, PALAVRA_PROTECT_READS="true", PALAVRA_LOCAL_WORKERS="0") as url:
        context = browser.new_context(viewport={"width": 1100, "height": 860}, locale="pt-BR")
        context.set_default_timeout(15_000)
        try:
            page = context.new_page()
            page.goto(url + "/#jobs")  # each panel's list is refused, and its status says so
            page.wait_for_function("document.querySelector('#jobs-status').textContent !== ''")
            page.click("#tab-search")
            page.wait_for_function("document.querySelector('#search-status').textContent !== ''")
            page.click("#tab-models")
            page.wait_for_function("document.querySelector('#models-status').textContent !== ''")
            assert page.locator("#model-table tbody tr").count() == 0
            assert page.locator("#clf-model option").count() == 0
            page.fill("#api-key", KEY)
            page.click("#key-form button[type=submit]")
            page.wait_for_selector("#model-table tbody tr >> nth=4", timeout=5_000)
            page.wait_for_selector("body[data-ready='1']", timeout=5_000)
            assert page.inner_text("#models-status") == ""
            assert page.locator("#clf-model option").all_inner_texts() == ["sentimento"]
            assert "tiny-word2vec (word2vec)" in page.locator("#words-model option").all_inner_texts()
            for tab in (
                "jobs",
                "search",
            ):  # the other panels' refusals were left on screen once the key worked
                page.click(f"#tab-{tab}")
                page.wait_for_function(
                    f"!document.querySelector('#{tab}-status').textContent.includes('API key')"
                )
            assert page.inner_text("#jobs-status") == ""
            page.click("#tab-models")
            page.click(
                "#forget-key"
            )  # and forgetting it closes them again, with the server's reason on screen
            page.wait_for_function("document.querySelector('#models-status').textContent !== ''")
            shot(page, "models-protected-reads")
        finally:
            context.close()


def test_web_jobs_submit_watch_live_overlay_curves_and_cancel(page: Any, tmp_path: Path) -> None:
    page.click("#tab-models")
    page.fill("#api-key", KEY)
    page.press("#api-key", "Enter")
    page.click("#tab-jobs")
    # every kind the API takes is offered (lm and compare_lm were not), each with a template the API accepts
    from services.jobs.kinds import KINDS, job_kind

    offered = page.locator("#job-kind option").evaluate_all("os => os.map(o => o.value)")
    assert sorted(offered) == sorted(KINDS)
    for kind in offered:
        page.select_option("#job-kind", kind)
        job_kind(kind).validate(json.loads(page.input_value("#job-config")))
    page.select_option("#job-kind", "compare")
    config = {
        "train": "train.csv",
        "validation": "validation.csv",
        "text_column": "texto",
        "label_column": "rotulo",
        "optimizers": ["sgd", "adam"],
        "activations": ["relu"],
        "model": {"embedding_dim": 8, "hidden": [8]},
        "training": {"epochs": 3, "threads": 1},
    }
    page.fill("#job-config", json.dumps(config))
    page.click("#job-form button[type=submit]")
    page.wait_for_selector("#jobs-status:has-text('enviada')")
    page.wait_for_selector("#job-state:has-text('succeeded')", timeout=90_000)
    assert page.locator("#job-progress").evaluate("p => p.value") == 1
    page.wait_for_selector("#job-curves path[data-series]")
    series = page.locator("#job-curves path[data-series]").evaluate_all("ps => ps.map(p => p.dataset.series)")
    assert sorted(series) == [
        "optimizer=adam train",
        "optimizer=adam val",
        "optimizer=sgd train",
        "optimizer=sgd val",
    ]
    assert "compare" in page.inner_text("#job-table")
    shot(page, "jobs")
    compare_id = page.inner_text("#job-title").split(" · ")[1]

    corpus = tmp_path / "frases.txt"
    corpus.write_text("\n".join(make_sentences(5_000)) + "\n", encoding="utf-8")
    long = {
        "name": "longo",
        "corpus": ["upload:frases.txt"],
        "evaluate": False,
        "train": {"vector_size": 12, "min_count": 1, "epochs": 200, "workers": 1},
    }
    page.select_option("#job-kind", "word2vec")
    page.fill("#job-config", json.dumps(long))
    page.set_input_files("#job-files", str(corpus))  # sent with the config as a multipart upload
    page.click("#job-form button[type=submit]")
    page.wait_for_function("!document.querySelector('#jobs-status').textContent.includes('…')")
    assert "enviada" in page.inner_text("#jobs-status"), page.inner_text("#jobs-status")
    page.wait_for_selector("#job-title:has-text('word2vec')")
    page.wait_for_selector("#job-state:has-text('running')", timeout=60_000)
    page.click("#job-cancel")
    page.wait_for_selector("#job-state:has-text('cancelled')", timeout=30_000)
    assert page.locator("#job-cancel").is_disabled()

    # where the event stream is refused (reads behind a key, which EventSource cannot send), the page polls
    page.route(
        "**/events", lambda route: route.fulfill(status=401, content_type="application/json", body="{}")
    )
    page.click(f"#job-table button:has-text('{compare_id}')")
    page.wait_for_selector(f"#job-title:has-text('{compare_id}')")
    page.wait_for_selector("#job-state:has-text('succeeded')")
    page.wait_for_selector("#job-curves path[data-series='optimizer=adam val']")


_DOCS = [
    {"id": "c1", "text": "o rei e a rainha moram no castelo", "metadata": {"tema": "nobreza"}},
    {"id": "c2", "text": "o menino vai para a escola", "metadata": {"tema": "escola"}},
    {"id": "c3", "text": "o médico trabalha no hospital", "metadata": {"tema": "saúde"}},
    {"id": "c4", "text": "a princesa e o príncipe no castelo", "metadata": {"tema": "nobreza"}},
]


@pytest.fixture(scope="module")
def collection(server: str) -> str:
    """A small collection created through the API, as a client would."""
    body = {"name": "historias", "encoder": "frases", "documents": _DOCS}
    r = httpx.post(
        f"{server}/v1/collections", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=30
    )
    assert r.status_code == 201, r.text
    return "historias"


def _search(page: Any, query: str) -> None:
    page.click("#tab-search")
    page.wait_for_selector("#search-collection option[value='historias']", state="attached")
    page.fill("#search-query", "")
    page.focus("#search-query")
    page.keyboard.type(query)  # results follow the typing, no button needed


def test_web_search_a_collection_by_typing_and_compare_two_texts(
    page: Any, server: str, collection: str
) -> None:
    _search(page, "rainha castelo")
    page.wait_for_selector("#search-hits li.hit")
    page.wait_for_function("() => !document.querySelector('#search-status').textContent.includes('…')")
    expected = httpx.post(
        f"{server}/v1/collections/{collection}/search", json={"query": "rainha castelo", "k": 10}, timeout=30
    ).json()["hits"]
    on_screen = page.locator("#search-hits li.hit").evaluate_all("ls => ls.map(l => l.dataset.id)")
    assert on_screen == [h["id"] for h in expected]
    assert on_screen[0] == "c1"  # both words of the query
    assert "o rei e a rainha moram no castelo" in page.inner_text("#search-hits li.hit >> nth=0")
    assert "tema: nobreza" in page.inner_text("#search-hits li.hit >> nth=0")
    assert "historias" in page.inner_text("#search-status")

    page.select_option("#search-mode", "lexical")  # BM25: only documents sharing a word with the query
    page.wait_for_function("() => document.querySelector('#search-status').textContent.includes('BM25')")
    lexical = page.locator("#search-hits li.hit").evaluate_all("ls => ls.map(l => l.dataset.id)")
    assert lexical == ["c1", "c4"]
    page.fill("#search-query", "")  # an emptied query leaves no hits of the last one on screen
    page.wait_for_selector("#search-hits li.hit", state="detached")
    assert page.inner_text("#search-status") == ""
    _search(page, "rainha castelo")
    page.wait_for_selector("#search-hits li.hit")
    page.wait_for_function("() => document.querySelector('#search-status').textContent.includes('BM25')")
    shot(page, "search")

    page.fill("#text-a", "o rei mora no castelo")
    page.fill("#text-b", "a rainha mora no castelo")
    page.focus("#texts-form button[type=submit]")
    page.keyboard.press("Enter")
    page.wait_for_selector("#texts-out:has-text('cosseno')")
    cosine = float(page.inner_text("#texts-out").rsplit("=", 1)[1])
    assert 0.0 < cosine <= 1.0
    assert "frases@1" in page.inner_text("#texts-status")

    page.click("#lang")  # English labels on request
    assert page.inner_text("#tab-search") == "Search"
    assert page.inner_text("label[for=search-query]") == "Query"
    page.click("#lang")


def test_web_keyboard_tabs_and_phone_sized_screen(page: Any, server: str) -> None:
    # the page opens at the top, header and tabs in view, with or without a tab in its address (it opened
    # scrolled 125 px down, to the #words panel it had written into the address before loading: a newcomer's run)
    for address in ("/", "/#models", "/#jobs"):
        page.goto(server + address)
        page.wait_for_load_state("load")
        page.wait_for_selector("body[data-ready='1']")
        page.wait_for_timeout(200)
        assert page.evaluate("window.scrollY") == 0, address
        assert page.evaluate("document.querySelector('header').getBoundingClientRect().top") >= 0, address
        # the row of tabs scrolls sideways on a narrow screen, never up and down: the chosen tab, 1 px lower to
        # cover the row's bottom line, gave it a vertical scrollbar with arrows (a newcomer's run, at 1280 x 1000)
        tabs = "document.querySelector('.tabs')"
        assert page.evaluate(f"{tabs}.scrollHeight - {tabs}.clientHeight") <= 0, address
        assert page.evaluate(f"getComputedStyle({tabs}).overflowY") == "hidden", address
    page.goto(server + "/")
    page.wait_for_selector("body[data-ready='1']")
    page.focus("#tab-words")
    page.keyboard.press("ArrowRight")
    assert page.locator("#classify").is_visible()
    assert page.evaluate("document.activeElement.id") == "tab-classify"
    page.keyboard.press("End")
    assert page.locator("#jobs").is_visible()
    page.keyboard.press("ArrowLeft")
    assert page.locator("#lm").is_visible()
    page.keyboard.press("Home")
    assert page.locator("#words").is_visible()
    page.focus("#word")
    page.keyboard.type("rainha")
    page.keyboard.press("Enter")
    page.wait_for_selector("#map .pt.q[data-word='rainha']")
    page.focus("#map .pt:not(.q)")  # map points take focus and Enter like buttons
    target = page.evaluate("document.activeElement.dataset.word")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#map .pt.q[data-word='{target}']")

    page.set_viewport_size({"width": 390, "height": 844})
    for tab in ("words", "classify", "models", "search", "lm", "jobs"):
        page.click(f"#tab-{tab}")
        if tab == "lm":
            page.fill("#lm-text", "o menino")
            page.wait_for_selector("#complete-out li")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{tab} scrolls sideways on a phone-sized screen"
    page.click("#tab-words")
    shot(page, "phone", full_page=False)


def test_web_accessibility_axe_finds_no_serious_violations(page: Any, collection: str) -> None:
    need(AXE.is_file(), f"no axe-core at {AXE} (npm install --no-save --prefix runs/axe axe-core@4.14.1)")
    page.add_script_tag(path=str(AXE))
    _explore(page, "rei")
    page.wait_for_selector("#map .pt.q")
    problems = []
    for tab in ("words", "classify", "models", "search", "lm", "jobs"):
        page.click(f"#tab-{tab}")
        if tab == "lm":
            page.fill("#lm-text", "a rainha")
            page.wait_for_selector("#complete-out li")
            page.fill("#gen-prompt", "o rei")
            page.fill("#gen-seed", "1")
            page.click("#gen-start")
            page.wait_for_selector("#gen-out[data-state='done']")
        if tab == "search":
            _search(page, "rainha")
            page.wait_for_selector("#search-hits li")
        if tab == "models":
            page.wait_for_selector("#model-table tbody tr")
            page.click("#model-table button:has-text('sentimento')")
            page.wait_for_selector("#report svg.confusion")
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        problems += [
            f"{tab}: {v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
    assert problems == []


# the page's fetch of /v1/generate answers with the server's first event, then nothing until the request is aborted
_HOLD_STREAM_AFTER_FIRST_EVENT = """() => {
  const real = window.fetch;
  window.fetch = async (url, opts = {}) => {
    const r = await real(url, opts);
    if (!String(url).includes("v1/generate")) return r;
    const reader = r.body.getReader();
    let bytes = new Uint8Array();
    let end = -1;
    while (end < 0) {
      const { value } = await reader.read();
      bytes = new Uint8Array([...bytes, ...value]);
      end = bytes.findIndex((b, i) => b === 10 && bytes[i + 1] === 10);
    }
    const body = new ReadableStream({
      start(c) {
        c.enqueue(bytes.slice(0, end + 2));
        opts.signal.addEventListener("abort", () => { reader.cancel(); c.error(opts.signal.reason); });
      },
    });
    return new Response(body, { status: r.status, headers: r.headers });
  };
}"""


def test_web_text_next_words_as_you_type_and_streamed_generation(page: Any, server: str) -> None:
    page.click("#tab-lm")
    page.wait_for_selector("#lm-model option[value='conto']", state="attached")
    assert page.locator("#lm-model option").all_inner_texts() == ["conto"]  # language models only
    assert page.locator("#words-model option[value='conto']").count() == 0  # not word vectors
    page.focus("#lm-text")
    page.keyboard.type("o menino")  # suggestions follow the typing, no button needed
    page.wait_for_selector("#complete-out li")
    page.wait_for_function("() => !document.querySelector('#complete-status').textContent.includes('…')")
    expected = httpx.post(
        f"{server}/v1/complete", json={"text": "o menino", "k": 8, "model": "conto"}, timeout=30
    ).json()
    on_screen = page.locator("#complete-out li").evaluate_all("ls => ls.map(l => l.dataset.word)")
    assert on_screen == [c["word"] for c in expected["candidates"]]
    widths = page.locator("#complete-out .bar > span").evaluate_all("s => s.map(x => x.style.width)")
    shown = [float(w.rstrip("%")) for w in widths]  # each bar as long as its probability
    assert shown == pytest.approx([c["probability"] * 100 for c in expected["candidates"]], abs=0.051)
    assert "conto@1" in page.inner_text("#complete-status")
    word = next(c["word"] for c in expected["candidates"] if c["word"].isalpha())
    page.locator(f"#complete-out li[data-word='{word}'] button").click()  # appends the word, asks again
    assert page.input_value("#lm-text") == f"o menino {word} "
    page.wait_for_function(
        "w => document.querySelector('#complete-status').textContent.startsWith('conto@1')"
        " && document.querySelector('#lm-text') === document.activeElement",
        arg=word,
    )

    ask = {"prompt": "a rainha", "max_tokens": 30, "temperature": 1.0, "top_k": 20, "top_p": 0.9, "seed": 7}
    page.fill("#gen-prompt", ask["prompt"])
    page.fill("#gen-max", str(ask["max_tokens"]))
    page.fill("#gen-temp", str(ask["temperature"]))
    page.fill("#gen-topk", str(ask["top_k"]))
    page.fill("#gen-topp", str(ask["top_p"]))
    page.fill("#gen-seed", str(ask["seed"]))
    with page.expect_response("**/v1/generate") as answer:
        page.click("#gen-start")
    assert answer.value.headers["content-type"].startswith("text/event-stream")  # streamed, not one answer
    page.wait_for_selector("#gen-out[data-state='done']")
    plain = httpx.post(f"{server}/v1/generate", json={**ask, "model": "conto"}, timeout=30).json()
    assert page.inner_text("#gen-out") == plain["text"]
    assert page.get_attribute("#gen-out", "data-streamed") == str(len(plain["tokens"]))
    assert f"{len(plain['tokens'])} tokens" in page.inner_text("#gen-status")
    assert page.locator("#gen-stop").is_disabled()
    shot(page, "lm")

    # Stop, by the keyboard, while the stream is open: the server's answer is let through up to its first event
    # and then held (a slow model), so Stop always comes before the end; Generate is usable again
    page.evaluate(_HOLD_STREAM_AFTER_FIRST_EVENT)
    page.fill("#gen-max", "2000")
    page.click("#gen-start")
    page.wait_for_selector("#gen-status:has-text('Gerando… 1 tokens')")
    assert page.get_attribute("#gen-out", "data-state") == "running"
    page.focus("#gen-stop")
    page.keyboard.press("Enter")
    page.wait_for_selector("#gen-out[data-state='stopped']")
    assert page.get_attribute("#gen-out", "data-streamed") == "1"
    assert "Interrompido" in page.inner_text("#gen-status")
    assert page.locator("#gen-start").is_enabled()
    assert page.evaluate("document.activeElement.id") == "gen-start"

    page.click("#lang")  # English labels on request
    assert page.inner_text("#tab-lm") == "Text generation"
    assert page.inner_text("label[for=gen-prompt]") == "Prompt"
    page.click("#lang")
