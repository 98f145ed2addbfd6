// palavra's web explorer: plain JavaScript over the HTTP API (no framework, no build step, nothing fetched from
// the internet). Every number on the page comes from a /v1 route; URLs are relative to the page, so the page
// works behind a proxy that serves palavra under a path prefix.
"use strict";

const I18N = {
  pt: {
    skip: "Ir para o conteúdo", langHelp: "Mudar o idioma da página", langButton: "English", areas: "Áreas",
    tabWords: "Palavras", tabClassify: "Classificar", tabModels: "Modelos", tabJobs: "Tarefas",
    model: "Modelo", word: "Palavra", howMany: "Vizinhos", projection: "Projeção", explore: "Explorar",
    neighbours: "Vizinhos mais próximos", map: "Mapa",
    oov: "Palavra desconhecida: vetor construído a partir das subpalavras.",
    mapHelp: "Passe o cursor sobre um ponto para ver a similaridade; clique para explorar a partir dele.",
    analogy: "Analogia", anA: "Palavra", anB: "menos", anC: "mais", method: "Método", solve: "Resolver",
    pair: "Similaridade de um par", first: "Primeira", second: "Segunda", compareBtn: "Comparar",
    side: "Mesma palavra em dois modelos", left: "Modelo à esquerda", right: "Modelo à direita",
    version: "Versão", texts: "Textos (um por linha)", file: "Ou um arquivo de textos (.txt, um por linha)",
    classifyBtn: "Classificar", apiKey: "Chave da API (guardada só nesta sessão do navegador)",
    saveKey: "Guardar chave", forgetKey: "Esquecer", registry: "Registro de modelos", name: "Nome", kind: "Tipo",
    latest: "Mais recente", aliases: "Apelidos", loadedCol: "Carregadas", versions: "Versões", created: "Criada",
    summary: "Resumo", actions: "Ações", alias: "Apelido", moveAlias: "Mover apelido", deleteAlias: "Remover apelido", jobKind: "Tipo de tarefa",
    jobConfig: "Configuração (JSON ou TOML)", submitJob: "Enviar tarefa",
    jobFiles: "Arquivos de entrada (a configuração nomeia cada um como upload:NOME)",
    needsKey: "Precisa da chave da API (aba Modelos).", state: "Estado", cancel: "Cancelar", log: "Registro",
    recentJobs: "Tarefas recentes", progress: "Progresso",
    loading: "Carregando…", noModels: "Nenhum modelo deste tipo no registro.", unknown: "Palavra desconhecida",
    didYouMean: "Você quis dizer:", noSuggestion: "sem sugestões", cosine: "cosseno", mapOf: "Mapa de",
    pointLabel: "{w}, similaridade {s}", keySaved: "Chave guardada para esta sessão.", keyForgotten: "Chave esquecida.",
    keyMissing: "Informe a chave da API na aba Modelos.", aliasMoved: "{a} agora aponta para a versão {v}.", aliasDeleted: "{a} removido (apontava para a versão {v}).",
    show: "Ver", accuracy: "Acurácia", macroF1: "Macro-F1", confusion: "Matriz de confusão (linhas: verdadeiro; colunas: previsto)",
    curves: "Curvas de treino", epoch: "época", loss: "perda", valPearson: "Pearson na validação", perplexity: "perplexidade", valPerplexity: "Perplexidade na validação (rede + n-gramas)", netPerplexity: "Perplexidade da rede na validação", perClass: "Por classe", precision: "Precisão",
    recall: "Revocação", support: "Suporte", analogySections: "Acurácia nas analogias por seção", pairsCorr: "Correlação com julgamentos humanos",
    echoTitle: "Eco ortográfico", echoNote: "dos 10 vizinhos das 1.000 palavras mais frequentes repetem a grafia da palavra (contêm-na ou têm as mesmas 5 primeiras letras)",
    set: "Conjunto", spearman: "Spearman", pearson: "Pearson", noMetrics: "Sem métricas registradas.",
    noCurves: "Sem curvas registradas.", submitted: "Tarefa {id} enviada.", cancelled: "Pedido de cancelamento enviado.",
    registered: "Modelo registrado:", lossCurves: "Curvas de perda (treino — contínua, validação — tracejada)",
    label: "Rótulo", empty: "Escreva ao menos um texto.", bestEpoch: "melhor época",
    semantic: "semântica", syntactic: "sintática", overall: "total", noJobs: "Nenhuma tarefa ainda.",
    inVocab: "no vocabulário", subwords: "subpalavras", defaultModel: "padrão do servidor", file_read: "{n} textos lidos de {f}.",
    tabSearch: "Busca", collection: "Coleção", query: "Consulta", mode: "Modo", modeHybrid: "híbrido", modeVector: "vetorial",
    modeLexical: "lexical (BM25)", results: "Resultados", searchBtn: "Buscar", hits: "Documentos encontrados",
    searchHelp: "Os resultados se atualizam enquanto você digita.", textsSim: "Similaridade de dois textos",
    encoder: "Codificador", firstText: "Primeiro texto", secondText: "Segundo texto", score: "pontuação",
    noCollections: "Nenhuma coleção ainda: crie uma com `palavra collection create` ou POST /v1/collections.",
    noHits: "Nenhum documento encontrado.", hitCount: "{n} documentos de {c} ({m})",
    tabLm: "Texto", lmModel: "Modelo de linguagem", nextWords: "Próximas palavras", lmText: "Texto",
    suggestionsK: "Sugestões", completeHelp: "As sugestões se atualizam enquanto você digita; escolha uma para acrescentá-la ao texto.",
    generation: "Geração de texto", prompt: "Início do texto", maxTokens: "Máx. tokens", temperature: "Temperatura",
    seed: "Semente", topkHelp: "top-k vazio: sem limite.", seedHelp: "Mesma semente, mesmo texto; vazia: a cada vez um texto diferente.",
    generate: "Gerar", stop: "Parar", generated: "Texto gerado", probability: "probabilidade", sentenceEnd: "fim da frase",
    noLm: "Nenhum modelo de linguagem ainda: treine um com `palavra train lm` ou uma tarefa lm.",
    generating: "Gerando… {n} tokens", generatedN: "{n} tokens de {m}", stopped: "Interrompido depois de {n} tokens.",
    unknownTokens: "fora do vocabulário: {w}",
  },
  en: {
    skip: "Skip to content", langHelp: "Change the page language", langButton: "Português", areas: "Areas",
    tabWords: "Words", tabClassify: "Classify", tabModels: "Models", tabJobs: "Jobs",
    model: "Model", word: "Word", howMany: "Neighbours", projection: "Projection", explore: "Explore",
    neighbours: "Nearest neighbours", map: "Map",
    oov: "Unknown word: its vector was built from subwords.",
    mapHelp: "Hover over a point to see its similarity; click it to explore from there.",
    analogy: "Analogy", anA: "Word", anB: "minus", anC: "plus", method: "Method", solve: "Solve",
    pair: "Pair similarity", first: "First", second: "Second", compareBtn: "Compare",
    side: "One word in two models", left: "Left model", right: "Right model",
    version: "Version", texts: "Texts (one per line)", file: "Or a file of texts (.txt, one per line)",
    classifyBtn: "Classify", apiKey: "API key (kept for this browser session only)",
    saveKey: "Save key", forgetKey: "Forget", registry: "Model registry", name: "Name", kind: "Kind",
    latest: "Latest", aliases: "Aliases", loadedCol: "Loaded", versions: "Versions", created: "Created",
    summary: "Summary", actions: "Actions", alias: "Alias", moveAlias: "Move alias", deleteAlias: "Remove alias", jobKind: "Job kind",
    jobConfig: "Config (JSON or TOML)", submitJob: "Submit job",
    jobFiles: "Input files (the config names each as upload:NAME)",
    needsKey: "Needs the API key (Models tab).", state: "State", cancel: "Cancel", log: "Log",
    recentJobs: "Recent jobs", progress: "Progress",
    loading: "Loading…", noModels: "No model of this kind in the registry.", unknown: "Unknown word",
    didYouMean: "Did you mean:", noSuggestion: "no suggestions", cosine: "cosine", mapOf: "Map of",
    pointLabel: "{w}, similarity {s}", keySaved: "Key saved for this session.", keyForgotten: "Key forgotten.",
    keyMissing: "Enter the API key in the Models tab.", aliasMoved: "{a} now points at version {v}.", aliasDeleted: "{a} removed (it pointed at version {v}).",
    show: "Show", accuracy: "Accuracy", macroF1: "Macro-F1", confusion: "Confusion matrix (rows: true; columns: predicted)",
    curves: "Training curves", epoch: "epoch", loss: "loss", valPearson: "Validation Pearson", perplexity: "perplexity", valPerplexity: "Validation perplexity (network + n-grams)", netPerplexity: "The network's validation perplexity", perClass: "Per class", precision: "Precision",
    recall: "Recall", support: "Support", analogySections: "Analogy accuracy by section", pairsCorr: "Correlation with human judgements",
    echoTitle: "Orthographic echo", echoNote: "of the top-10 neighbours of the 1,000 most frequent words repeat the word's spelling (contain it or share its first 5 letters)",
    set: "Set", spearman: "Spearman", pearson: "Pearson", noMetrics: "No metrics recorded.",
    noCurves: "No curves recorded.", submitted: "Job {id} submitted.", cancelled: "Cancellation requested.",
    registered: "Registered model:", lossCurves: "Loss curves (train — solid, validation — dashed)",
    label: "Label", empty: "Write at least one text.", bestEpoch: "best epoch",
    semantic: "semantic", syntactic: "syntactic", overall: "overall", noJobs: "No jobs yet.",
    inVocab: "in vocabulary", subwords: "subwords", defaultModel: "server default", file_read: "{n} texts read from {f}.",
    tabSearch: "Search", collection: "Collection", query: "Query", mode: "Mode", modeHybrid: "hybrid", modeVector: "vector",
    modeLexical: "lexical (BM25)", results: "Results", searchBtn: "Search", hits: "Documents found",
    searchHelp: "Results update as you type.", textsSim: "Similarity of two texts",
    encoder: "Encoder", firstText: "First text", secondText: "Second text", score: "score",
    noCollections: "No collection yet: create one with `palavra collection create` or POST /v1/collections.",
    noHits: "No document found.", hitCount: "{n} documents from {c} ({m})",
    tabLm: "Text generation", lmModel: "Language model", nextWords: "Next words", lmText: "Text",
    suggestionsK: "Suggestions", completeHelp: "Suggestions update as you type; pick one to append it to the text.",
    generation: "Text generation", prompt: "Prompt", maxTokens: "Max tokens", temperature: "Temperature",
    seed: "Seed", topkHelp: "Empty top-k: no limit.", seedHelp: "Same seed, same text; empty: a different text each time.",
    generate: "Generate", stop: "Stop", generated: "Generated text", probability: "probability", sentenceEnd: "end of sentence",
    noLm: "No language model yet: train one with `palavra train lm` or an lm job.",
    generating: "Generating… {n} tokens", generatedN: "{n} tokens from {m}", stopped: "Stopped after {n} tokens.",
    unknownTokens: "outside the vocabulary: {w}",
  },
};

const JOB_TEMPLATES = {
  word2vec: { name: "meu-w2v", corpus: ["upload:corpus.txt"], train: { algorithm: "word2vec", vector_size: 100, epochs: 5 } },
  classifier: { name: "meu-classificador", train: "told-br-1annotator-train", validation: "told-br-1annotator-validation", text_column: "text", label_column: "toxic", training: { epochs: 5 } },
  collection: { name: "minha-colecao", source: "documentos.jsonl", encoder: "frases", text_field: "text", id_field: "id" },
  compare: { name: "comparacao", train: "told-br-1annotator-train", validation: "told-br-1annotator-validation", text_column: "text", label_column: "toxic", optimizers: ["sgd", "adam"], activations: ["relu"], training: { epochs: 5 } },
  lm: { name: "meu-lm", corpus: ["corpus-machado"], epochs: 1 },
  compare_lm: { name: "comparacao-lm", corpus: ["corpus-machado"], max_train_tokens: 200000, grid: { "model.context": [2, 5] }, activations: ["tanh", "relu"] },
};
const COLOURS = ["#0a58b8", "#b42318", "#1a7f37", "#8a3ffc", "#b35c00", "#007d79", "#d02670", "#4a5361"];
const SVG = "http://www.w3.org/2000/svg";

let lang = localStorage.getItem("palavra.lang") || "pt";
const t = (key, vars) => {
  let s = (I18N[lang] && I18N[lang][key]) || I18N.pt[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.replace(`{${k}}`, v);
  return s;
};
const $ = (sel, root = document) => root.querySelector(sel);
const fmt = (x, d = 3) => (x === null || x === undefined || Number.isNaN(x) ? "–" : Number(x).toFixed(d));

function el(tag, attrs = {}, ...children) {
  const node = tag.startsWith("svg:") ? document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

// -- API ------------------------------------------------------------------------------------------------------
class ApiError extends Error {
  constructor(status, body) {
    super(body.detail || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

const apiKey = () => sessionStorage.getItem("palavra.key") || "";

async function api(path, { method = "GET", body = null, auth = false } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== null) headers["Content-Type"] = "application/json";
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (auth && !key) throw new ApiError(401, { error: "Unauthorized", detail: t("keyMissing") });
  const r = await fetch(path, { method, headers, body: body === null ? null : JSON.stringify(body) });
  const data = await r.json().catch(() => ({ detail: `HTTP ${r.status}` }));
  if (!r.ok) throw new ApiError(r.status, data);
  return data;
}

// a panel's list that failed to load (a 401 before a key was saved) says so in the panel's status; the status is
// cleared when the list loads, and only then: an answer's own message stays
function listFailed(node, err) {
  say(node, err.message, true);
  node.dataset.lists = "1";
}

function listLoaded(node) {
  if (node.dataset.lists) say(node, "");
}

function say(node, text, error = false) {
  delete node.dataset.lists;  // set by the model lists' own failure (reloadWithKey clears only that one)
  node.textContent = text;
  node.classList.toggle("error", error);
}

// -- language and tabs ------------------------------------------------------------------------------------------
function applyLang() {
  document.documentElement.lang = lang === "pt" ? "pt" : "en";
  for (const n of document.querySelectorAll("[data-i18n]")) n.textContent = t(n.dataset.i18n);
  for (const n of document.querySelectorAll("[data-i18n-aria]")) n.setAttribute("aria-label", t(n.dataset.i18nAria));
  $("#lang").textContent = t("langButton");
  $("#lang").setAttribute("lang", lang === "pt" ? "en" : "pt");
}

const TABS = ["words", "classify", "models", "search", "lm", "jobs"];
function showTab(name, focus = false, writeHash = true) {
  if (!TABS.includes(name)) name = "words";
  for (const id of TABS) {
    const tab = $(`#tab-${id}`);
    const on = id === name;
    tab.setAttribute("aria-selected", on ? "true" : "false");
    tab.tabIndex = on ? 0 : -1;
    $(`#${id}`).hidden = !on;
  }
  if (focus) $(`#tab-${name}`).focus();
  if (writeHash && location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  if (name === "models") loadRegistry();
  if (name === "jobs") loadJobs();
  if (name === "search") loadCollections();
}

function setupTabs() {
  const tabs = TABS.map((id) => $(`#tab-${id}`));
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => showTab(TABS[i]));
    tab.addEventListener("keydown", (e) => {
      const move = { ArrowRight: 1, ArrowLeft: -1, Home: -i, End: tabs.length - 1 - i }[e.key];
      if (move === undefined) return;
      e.preventDefault();
      showTab(TABS[(i + move + tabs.length) % tabs.length], true);
    });
  });
  // a tab's address (#models) names its panel, which the browser scrolls to, past the header and the tabs
  window.addEventListener("hashchange", () => {
    showTab(location.hash.slice(1));
    window.scrollTo(0, 0);
  });
}

// -- models (shared by every panel) -------------------------------------------------------------------------------
let registry = [];
// every kind but "classifier", "encoder" (text encoders) and "lm" (language models) is served as word vectors
const isEmbeddings = (m) => !["classifier", "encoder", "lm"].includes(m.kind);

async function loadModelLists() {
  registry = (await api("v1/models")).models;
  const embeddings = registry.filter(isEmbeddings);
  const classifiers = registry.filter((m) => m.kind === "classifier");
  for (const sel of document.querySelectorAll("select.model-embeddings")) {
    const keep = sel.value;
    sel.replaceChildren();
    if (!sel.classList.contains("versions")) sel.append(el("option", { value: "", text: t("defaultModel") }));
    for (const m of embeddings) {
      sel.append(el("option", { value: m.name, text: `${m.name} (${m.kind})` }));
      if (sel.classList.contains("versions")) {
        for (let v = m.latest; v >= 1; v--) sel.append(el("option", { value: `${m.name}@${v}`, text: `${m.name}@${v}` }));
      }
    }
    if (keep) sel.value = keep;
  }
  const encoders = registry.filter((m) => m.kind === "encoder");
  const enc = $("#texts-model");
  const keepEnc = enc.value;
  enc.replaceChildren(...encoders.map((m) => el("option", { value: m.name, text: m.name })));
  if (keepEnc) enc.value = keepEnc;
  const lms = registry.filter((m) => m.kind === "lm");
  const lmSel = $("#lm-model");
  const keepLm = lmSel.value;
  lmSel.replaceChildren(...lms.map((m) => el("option", { value: m.name, text: m.name })));
  if (keepLm) lmSel.value = keepLm;
  if (!lms.length) say($("#lm-status"), t("noLm"));
  else if ($("#lm-status").textContent === t("noLm")) say($("#lm-status"), "");
  const right = $("#side-right");
  if (right.options.length > 1 && right.selectedIndex === 0) right.selectedIndex = 1;
  const clf = $("#clf-model");
  const keep = clf.value;
  clf.replaceChildren(...classifiers.map((m) => el("option", { value: m.name, text: m.name })));
  if (keep) clf.value = keep;
  fillClassifierVersions();
}

function fillClassifierVersions() {
  const m = registry.find((x) => x.name === $("#clf-model").value);
  const sel = $("#clf-version");
  sel.replaceChildren();
  if (!m) return;
  for (const [alias, v] of Object.entries(m.aliases)) sel.append(el("option", { value: alias, text: `${alias} (v${v})` }));
  for (let v = m.latest; v >= 1; v--) sel.append(el("option", { value: String(v), text: `v${v}` }));
}

// -- Words --------------------------------------------------------------------------------------------------------
function barRow(word, score, { onPick = null, same = false } = {}) {
  const name = onPick ? el("button", { type: "button", class: "link", text: word, onclick: () => onPick(word) }) : el("span", { text: word });
  const pct = Math.max(0, Math.min(1, score)) * 100;
  return el("li", { class: same ? "same" : null },
    name,
    el("div", { class: "bar", role: "img", "aria-label": `${t("cosine")} ${fmt(score)}` }, el("span", { style: `width:${pct.toFixed(1)}%` })),
    el("span", { class: "num", text: fmt(score) }));
}

function showSuggestions(err, box, onPick) {
  box.replaceChildren();
  const sugg = (err.body && err.body.suggestions) || {};
  const words = Object.values(sugg).flat();
  box.append(el("span", { text: `${t("unknown")}: ${(err.body.words || []).join(", ")}. ${t("didYouMean")}` }));
  if (words.length === 0) box.append(el("em", { text: t("noSuggestion") }));
  for (const w of words) box.append(el("button", { type: "button", class: "secondary suggestion", text: w, onclick: () => onPick(w) }));
  box.hidden = false;
}

function exploreWord(word) {
  $("#word").value = word;
  return explore();
}

let exploreSeq = 0;
async function explore() {
  const word = $("#word").value.trim();
  if (!word) return;
  const seq = ++exploreSeq;
  const status = $("#words-status");
  say(status, t("loading"));
  $("#suggestions").hidden = true;
  const body = { word, k: Number($("#k").value) || 50, method: $("#projection").value };
  if ($("#words-model").value) body.model = $("#words-model").value;
  try {
    const data = await api("v1/neighbors/map", { method: "POST", body });
    if (seq !== exploreSeq) return;
    const hits = data.points.filter((p) => !p.query);
    $("#neighbors").replaceChildren(...hits.map((p) => barRow(p.word, p.score, { onPick: exploreWord })));
    $("#oov-note").hidden = data.in_vocabulary;
    drawMap(data);
    say(status, `${data.model.name}@${data.model.version} · ${data.token} · ${hits.length}`);
    document.dispatchEvent(new CustomEvent("palavra:map", { detail: { word } }));
  } catch (err) {
    if (seq !== exploreSeq) return;
    $("#neighbors").replaceChildren();
    $("#map").replaceChildren();
    $("#oov-note").hidden = true;
    say(status, err.message, true);
    if (err.body && err.body.error === "UnknownWord") showSuggestions(err, $("#suggestions"), exploreWord);
  }
}

function drawMap(data) {
  const svg = $("#map");
  const W = 600, H = 440, pad = 36;
  const tip = $("#map-tip");
  const place = (p) => [W / 2 + p.x * (W / 2 - pad), H / 2 - p.y * (H / 2 - pad)];
  svg.setAttribute("aria-label", `${t("mapOf")} ${data.word}`);
  const nodes = [];
  nodes.push(el("svg:line", { x1: pad / 2, y1: H / 2, x2: W - pad / 2, y2: H / 2, stroke: "#e5e7eb" }));
  nodes.push(el("svg:line", { x1: W / 2, y1: pad / 2, x2: W / 2, y2: H - pad / 2, stroke: "#e5e7eb" }));
  if (data.explained_variance) {
    const [ex, ey] = data.explained_variance;
    nodes.push(el("svg:text", { x: W - 8, y: H - 8, "text-anchor": "end", "font-size": 11, fill: "#4a5361", text: `PC1 ${(ex * 100).toFixed(0)}% · PC2 ${(ey * 100).toFixed(0)}%` }));
  }
  tip.hidden = true;
  // labels that would overlap one already placed (closer words go first) show only on hover or focus
  const boxes = [];
  const crowded = new Set();
  for (const p of [...data.points].sort((a, b) => Number(b.query) - Number(a.query) || b.score - a.score)) {
    const [x, y] = place(p);
    const w = 6.2 * p.word.length + 10;
    const box = x > W - 90 ? [x - w, y - 8, x, y + 6] : [x, y - 8, x + w, y + 6];
    if (boxes.some((b) => box[0] < b[2] && b[0] < box[2] && box[1] < b[3] && b[1] < box[3])) crowded.add(p);
    else boxes.push(box);
  }
  // the query word last, so it is drawn on top
  const points = [...data.points.filter((p) => !p.query), ...data.points.filter((p) => p.query)];
  for (const p of points) {
    const [x, y] = place(p);
    const label = t("pointLabel", { w: p.word, s: fmt(p.score) });
    const left = x > W - 90;
    const cls = ["pt", p.query ? "q" : "", crowded.has(p) ? "crowded" : ""].join(" ").trim();
    const g = el("svg:g", { class: cls, tabindex: 0, role: "button", "aria-label": label, "data-word": p.word, "data-score": p.score.toFixed(4) },
      el("svg:title", { text: label }),
      el("svg:circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: p.query ? 7 : 4 + 3 * Math.max(0, p.score) }),
      el("svg:text", { x: (left ? x - 8 : x + 8).toFixed(1), y: (y + 4).toFixed(1), "text-anchor": left ? "end" : "start", text: p.word }));
    const showTip = () => {
      tip.textContent = label;
      const box = svg.getBoundingClientRect();
      tip.style.left = `${(x / W) * box.width + 10}px`;
      tip.style.top = `${(y / H) * box.height - 30}px`;
      tip.hidden = false;
    };
    g.addEventListener("mouseenter", showTip);
    g.addEventListener("focus", showTip);
    g.addEventListener("mouseleave", () => { tip.hidden = true; });
    g.addEventListener("blur", () => { tip.hidden = true; });
    if (!p.query) {
      g.addEventListener("click", () => exploreWord(p.word));
      g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); exploreWord(p.word); } });
    }
    nodes.push(g);
  }
  svg.replaceChildren(...nodes);
}

async function solveAnalogy(e) {
  e.preventDefault();
  const status = $("#analogy-status");
  const [a, b, c] = ["#an-a", "#an-b", "#an-c"].map((s) => $(s).value.trim());
  const method = document.querySelector("input[name=an-method]:checked").value;
  const body = { positive: [a, c], negative: [b], k: 5, method };
  if ($("#words-model").value) body.model = $("#words-model").value;
  say(status, t("loading"));
  try {
    const data = await api("v1/analogy", { method: "POST", body });
    $("#analogy-out").replaceChildren(...data.answers.map((h) => barRow(h.word, h.score, { onPick: exploreWord })));
    say(status, `${a} − ${b} + ${c} (${method})`);
  } catch (err) {
    $("#analogy-out").replaceChildren();
    say(status, suggestionText(err), true);
  }
}

function suggestionText(err) {
  const sugg = err.body && err.body.suggestions;
  if (!sugg) return err.message;
  const parts = Object.entries(sugg).map(([w, s]) => `${w} → ${s.length ? s.join(", ") : t("noSuggestion")}`);
  return `${err.message}. ${t("didYouMean")} ${parts.join("; ")}`;
}

async function pairSimilarity(e) {
  e.preventDefault();
  const a = $("#pair-a").value.trim();
  const b = $("#pair-b").value.trim();
  const body = { pairs: [[a, b]] };
  if ($("#words-model").value) body.model = $("#words-model").value;
  try {
    const data = await api("v1/similarity", { method: "POST", body });
    $("#pair-out").textContent = `${t("cosine")}(${a}, ${b}) = ${fmt(data.results[0].cosine)}`;
    say($("#pair-status"), `${data.model.name}@${data.model.version}`);
  } catch (err) {
    $("#pair-out").textContent = "";
    say($("#pair-status"), suggestionText(err), true);
  }
}

async function sideBySide(e) {
  e.preventDefault();
  const word = $("#side-word").value.trim();
  const refs = [$("#side-left").value, $("#side-right").value];
  const status = $("#side-status");
  say(status, t("loading"));
  const answers = await Promise.all(refs.map((ref) =>
    api(`v1/neighbors?${new URLSearchParams({ word, k: "10", model: ref })}`).catch((err) => err)));
  const words = answers.map((a) => new Set(a instanceof Error ? [] : a.neighbors.map((n) => n.word)));
  const cols = answers.map((a, i) => {
    if (a instanceof Error) return el("div", {}, el("h4", { text: refs[i] }), el("p", { class: "error", text: suggestionText(a) }));
    const other = words[1 - i];
    return el("div", { class: "side-col" },
      el("h4", { text: `${a.model.name}@${a.model.version}` }),
      a.in_vocabulary ? null : el("p", { class: "note", text: t("oov") }),
      el("ol", { class: "bars" }, a.neighbors.map((n) => barRow(n.word, n.score, { same: other.has(n.word) }))));
  });
  $("#side-out").replaceChildren(...cols);
  say(status, "");
}

// -- Classify -----------------------------------------------------------------------------------------------------
async function classify(e) {
  e.preventDefault();
  const status = $("#classify-status");
  let texts = $("#clf-text").value.split("\n").map((s) => s.trim()).filter(Boolean);
  const file = $("#clf-file").files[0];
  if (file) {
    const fromFile = (await file.text()).split("\n").map((s) => s.trim()).filter(Boolean);
    texts = texts.concat(fromFile);
    say(status, t("file_read", { n: fromFile.length, f: file.name }));
  }
  if (texts.length === 0) { say(status, t("empty"), true); return; }
  const name = $("#clf-model").value;
  const version = $("#clf-version").value;
  const body = { texts };
  if (name) body.model = version ? `${name}@${version}` : name;
  try {
    const data = await api("v1/classify", { method: "POST", body });
    const out = data.results.map((r, i) => el("div", { class: "result" },
      el("p", { class: "text", text: texts[i] }),
      el("p", {}, `${t("label")}: `, el("span", { class: "label-name", text: r.label })),
      el("ul", { class: "bars" }, Object.entries(r.scores).sort((x, y) => y[1] - x[1]).map(([lab, p]) => barRow(lab, p, { same: lab === r.label })))));
    $("#classify-out").replaceChildren(...out);
    say(status, `${data.model.name}@${data.model.version} · ${texts.length}`);
  } catch (err) {
    $("#classify-out").replaceChildren();
    say(status, err.message, true);
  }
}

// -- charts (inline SVG) ------------------------------------------------------------------------------------------
function lineChart(series, { xLabel = t("epoch"), yLabel = "", title = "" } = {}) {
  const W = 560, H = 280, L = 52, R = 14, T = 14, B = 38;
  const pts = series.flatMap((s) => s.points).filter((p) => Number.isFinite(p[1]));
  const fig = el("figure", { class: "chart-fig" });
  if (!pts.length) { fig.append(el("p", { class: "note", text: t("noCurves") })); return fig; }
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
  const X = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const Y = (y) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-label": title || yLabel });
  for (let i = 0; i <= 4; i++) {
    const v = y0 + ((y1 - y0) * i) / 4;
    svg.append(el("svg:line", { class: "grid", x1: L, x2: W - R, y1: Y(v), y2: Y(v) }));
    svg.append(el("svg:text", { x: L - 6, y: Y(v) + 4, "text-anchor": "end", text: v.toPrecision(3) }));
  }
  const step = Math.max(1, Math.ceil((x1 - x0) / 10));
  for (let x = Math.ceil(x0); x <= x1; x += step) svg.append(el("svg:text", { x: X(x), y: H - B + 16, "text-anchor": "middle", text: String(x) }));
  svg.append(el("svg:line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }), el("svg:line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  svg.append(el("svg:text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle", text: xLabel }));
  if (yLabel) svg.append(el("svg:text", { x: 12, y: (T + H - B) / 2, "text-anchor": "middle", transform: `rotate(-90 12 ${(T + H - B) / 2})`, text: yLabel }));
  const legend = el("ul", { class: "legend" });
  series.forEach((s, i) => {
    const colour = s.colour || COLOURS[i % COLOURS.length];
    const good = s.points.filter((p) => Number.isFinite(p[1]));
    if (!good.length) return;
    const d = good.map((p, j) => `${j ? "L" : "M"}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ");
    svg.append(el("svg:path", { d, fill: "none", stroke: colour, "stroke-width": 2, "stroke-dasharray": s.dashed ? "6 4" : null, "data-series": s.name },
      el("svg:title", { text: s.name })));
    for (const p of good) svg.append(el("svg:circle", { cx: X(p[0]), cy: Y(p[1]), r: 2.5, fill: colour }));
    legend.append(el("li", {}, el("i", { style: `background:${colour}` }), s.name));
  });
  if (title) fig.append(el("figcaption", { text: title }));
  fig.append(svg, legend);
  return fig;
}

function heatmap(labels, matrix) {
  const n = labels.length;
  const cell = Math.max(28, Math.min(60, 360 / Math.max(1, n)));
  const L = 80, T = 70;
  const W = L + n * cell + 10, H = T + n * cell + 10;
  const max = Math.max(1, ...matrix.flat());
  const svg = el("svg:svg", { viewBox: `0 0 ${W} ${H}`, class: "chart confusion", role: "img", "aria-label": t("confusion"), style: `max-width:${W}px` });
  labels.forEach((lab, i) => {
    svg.append(el("svg:text", { x: L - 6, y: T + i * cell + cell / 2 + 4, "text-anchor": "end", text: lab }));
    svg.append(el("svg:text", { x: L + i * cell + cell / 2, y: T - 8, "text-anchor": "start", transform: `rotate(-40 ${L + i * cell + cell / 2} ${T - 8})`, text: lab }));
  });
  matrix.forEach((row, i) => row.forEach((v, j) => {
    const a = v / max;
    const light = 255 - Math.round(a * 200);
    svg.append(el("svg:rect", { x: L + j * cell, y: T + i * cell, width: cell - 1, height: cell - 1, fill: `rgb(${light},${light + Math.round(a * 20)},255)` },
      el("svg:title", { text: `${labels[i]} → ${labels[j]}: ${v}` })));
    svg.append(el("svg:text", { x: L + j * cell + cell / 2, y: T + i * cell + cell / 2 + 4, "text-anchor": "middle", fill: a > 0.55 ? "#ffffff" : "#1b1f24", style: a > 0.55 ? "fill:#fff" : null, text: String(v) }));
  }));
  return el("figure", {}, el("figcaption", { text: t("confusion") }), svg);
}

// -- Models -------------------------------------------------------------------------------------------------------
let currentModel = null;

async function loadRegistry() {
  const status = $("#models-status");
  try {
    await loadModelLists();
    const rows = registry.map((m) => el("tr", { class: m.name === currentModel ? "sel" : null },
      el("th", { scope: "row" }, el("button", { type: "button", class: "link", text: m.name, onclick: () => showModel(m.name) })),
      el("td", { text: m.kind }),
      el("td", { text: String(m.latest) }),
      el("td", {}, Object.entries(m.aliases).map(([a, v]) => el("span", { class: "pill", text: `${a} → ${v}` }))),
      el("td", { text: m.loaded.join(", ") })));
    $("#model-table tbody").replaceChildren(...rows);
    say(status, registry.length ? "" : t("noModels"));
    if (currentModel) await showModel(currentModel, false);
  } catch (err) {
    say(status, err.message, true);
  }
}

async function showModel(name, scroll = true) {
  currentModel = name;
  for (const tr of document.querySelectorAll("#model-table tbody tr")) tr.classList.toggle("sel", tr.querySelector("button").textContent === name);
  const detail = await api(`v1/models/${encodeURIComponent(name)}`);
  $("#model-detail").hidden = false;
  $("#model-title").textContent = `${detail.name} (${detail.kind})`;
  const rows = [...detail.versions].reverse().map((v) => el("tr", {},
    el("td", { text: String(v.version) }),
    el("td", { text: new Date(v.created_at).toLocaleString(lang === "pt" ? "pt-BR" : "en-GB") }),
    el("td", {}, v.aliases.map((a) => el("span", { class: "pill", text: a }))),
    el("td", { text: summaryOf(v.metadata) }),
    el("td", {}, el("button", { type: "button", class: "secondary", text: `${t("show")} v${v.version}`, onclick: () => showReport(name, v.version) }))));
  $("#version-table tbody").replaceChildren(...rows);
  $("#alias-version").replaceChildren(...[...detail.versions].reverse().map((v) => el("option", { value: v.version, text: `v${v.version}` })));
  await showReport(name, detail.aliases.production || detail.versions[detail.versions.length - 1].version);
  if (scroll) $("#model-detail").scrollIntoView({ block: "start" });
}

function summaryOf(meta) {
  const m = meta.metrics || {};
  if (m.macro_f1 !== undefined) return `${t("macroF1")} ${fmt(m.macro_f1)} · ${t("accuracy")} ${fmt(m.accuracy)}`;
  const parts = [];
  for (const [set, r] of Object.entries(m.analogies || {})) parts.push(`${set}: 3CosAdd ${fmt(r["3cosadd"] && r["3cosadd"].accuracy)}`);
  for (const [set, r] of Object.entries(m.pairs || {})) parts.push(`${set}: ρ ${fmt(r.spearman)}`);
  const tr = meta.training || {};
  if (!parts.length && tr.vocabulary) parts.push(`${tr.vocabulary} ${lang === "pt" ? "palavras" : "words"}`);
  return parts.join(" · ");
}

async function showReport(name, version) {
  const box = $("#report");
  box.replaceChildren(el("p", { class: "status", text: t("loading") }));
  let rep;
  try {
    rep = await api(`v1/models/${encodeURIComponent(name)}/versions/${version}/report`);
  } catch (err) {
    box.replaceChildren(el("p", { class: "error", text: err.message }));
    return;
  }
  const parts = [el("h3", { text: `${rep.name}@${rep.version}` })];
  if (rep.kind === "classifier") parts.push(...classifierReport(rep));
  else if (rep.kind === "lm") parts.push(...lmReport(rep));
  else if (rep.kind === "encoder") parts.push(...encoderReport(rep));
  else parts.push(...embeddingReport(rep));
  box.replaceChildren(...parts);
}

// a report's training and validation loss per epoch (solid and dashed); ``trainKey`` names the training loss
function lossChart(rows, trainKey = "train_loss") {
  return lineChart([
    { name: "train_loss", points: rows.map((r) => [r.epoch, r[trainKey]]) },
    { name: "val_loss", points: rows.map((r) => [r.epoch, r.val_loss]), dashed: true },
  ], { yLabel: t("loss"), title: t("loss") });
}

function classifierReport(rep) {
  const v = rep.metrics.validation || {};
  const out = [];
  if (v.macro_f1 === undefined) out.push(el("p", { class: "note", text: t("noMetrics") }));
  else {
    out.push(el("div", { class: "metrics" },
      el("div", {}, t("macroF1"), el("b", { text: fmt(v.macro_f1) })),
      el("div", {}, t("accuracy"), el("b", { text: fmt(v.accuracy) })),
      rep.best_epoch ? el("div", {}, t("bestEpoch"), el("b", { text: String(rep.best_epoch) })) : null));
  }
  if (v.per_class) {
    out.push(el("table", { class: "table" }, el("caption", { text: t("perClass") }),
      el("thead", {}, el("tr", {}, [t("label"), t("precision"), t("recall"), "F1", t("support")].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, Object.entries(v.per_class).map(([lab, r]) => el("tr", {},
        el("th", { scope: "row", text: lab }), el("td", { text: fmt(r.precision) }), el("td", { text: fmt(r.recall) }), el("td", { text: fmt(r.f1) }), el("td", { text: String(r.support) }))))));
  }
  if (v.confusion_matrix) out.push(heatmap(v.confusion_matrix.labels, v.confusion_matrix.matrix));
  const c = rep.curves;
  out.push(el("h4", { text: t("curves") }));
  out.push(lossChart(c));
  if (c.some((r) => r.macro_f1 !== undefined)) {
    out.push(lineChart([
      { name: "accuracy", points: c.map((r) => [r.epoch, r.accuracy]) },
      { name: "macro_f1", points: c.map((r) => [r.epoch, r.macro_f1]) },
    ], { yLabel: "", title: `${t("accuracy")} / ${t("macroF1")}` }));
  }
  return out;
}

function lmReport(rep) {
  const ppl = (rep.metrics || {}).val_perplexity;
  const out = [Number.isFinite(ppl)
    ? el("div", { class: "metrics" }, el("div", {}, t("valPerplexity"), el("b", { text: ppl.toFixed(1) })),
      rep.best_epoch ? el("div", {}, t("bestEpoch"), el("b", { text: String(rep.best_epoch) })) : null)
    : el("p", { class: "note", text: t("noMetrics") })];
  const c = rep.curves;
  if (c.length) {
    out.push(el("h4", { text: t("curves") }));
    out.push(lossChart(c));
    out.push(lineChart([{ name: "val_perplexity", points: c.map((r) => [r.epoch, r.val_perplexity]) }],
      { yLabel: t("perplexity"), title: t("netPerplexity") }));
  }
  return out;
}

function encoderReport(rep) {
  // a trained (siamese) encoder: its validation Pearson and the first member's curves; a pooling one trained nothing
  const v = (rep.metrics || {}).validation || {};
  if (!Number.isFinite(v.pearson)) return [el("p", { class: "note", text: t("noMetrics") })];
  const best = Array.isArray(rep.best_epoch) ? rep.best_epoch.join(", ") : rep.best_epoch;
  const out = [el("div", { class: "metrics" },
    el("div", {}, t("valPearson"), el("b", { text: fmt(v.pearson) })),
    best ? el("div", {}, t("bestEpoch"), el("b", { text: String(best) })) : null)];
  const c = rep.curves.filter((r) => (r.member || 1) === 1);
  if (c.length) {
    out.push(el("h4", { text: t("curves") }));
    out.push(lossChart(c, "loss"));
    out.push(lineChart([{ name: "val_pearson", points: c.map((r) => [r.epoch, r.val_pearson]) }],
      { yLabel: "Pearson", title: t("valPearson") }));
  }
  return out;
}

function embeddingReport(rep) {
  const m = rep.metrics || {};
  const out = [];
  for (const [set, r] of Object.entries(m.analogies || {})) {
    const rows = [[t("overall"), r], [t("semantic"), r.semantic], [t("syntactic"), r.syntactic],
      ...Object.entries(r.sections || {})].filter(([, s]) => s);
    out.push(el("h4", { text: `${t("analogySections")}: ${set}` }));
    out.push(el("ul", { class: "bars" }, rows.map(([label, s]) => barRow(`${label} (${s.answered}/${s.questions})`, (s["3cosadd"] || {}).accuracy || 0))));
  }
  const pairs = Object.entries(m.pairs || {});
  if (pairs.length) {
    out.push(el("table", { class: "table" }, el("caption", { text: t("pairsCorr") }),
      el("thead", {}, el("tr", {}, [t("set"), t("spearman"), t("pearson")].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, pairs.map(([set, r]) => el("tr", {}, el("th", { scope: "row", text: set }), el("td", { text: fmt(r.spearman) }), el("td", { text: fmt(r.pearson) }))))));
  }
  const echo = m.neighbours;
  if (echo && Number.isFinite(echo.echo)) {
    out.push(el("h4", { text: t("echoTitle") }));
    out.push(el("p", { text: `${(100 * echo.echo).toFixed(1)}% ${t("echoNote")}` }));
    const examples = Object.entries(echo.examples || {});
    if (examples.length) out.push(el("ul", {}, examples.map(([w, ns]) => el("li", { text: `${w}: ${ns.join(", ")}` }))));
  }
  if (!out.length) out.push(el("p", { class: "note", text: t("noMetrics") }));
  if (rep.curves.some((r) => Number.isFinite(r.loss))) {
    out.push(el("h4", { text: t("curves") }));
    out.push(lineChart([{ name: "loss", points: rep.curves.map((r) => [r.epoch, r.loss]) }], { yLabel: t("loss"), title: t("loss") }));
  }
  return out;
}

async function moveAlias(e) {
  e.preventDefault();
  const alias = $("#alias-name").value.trim();
  const version = Number($("#alias-version").value);
  const status = $("#alias-status");
  try {
    const r = await api(`v1/models/${encodeURIComponent(currentModel)}/aliases/${encodeURIComponent(alias)}`, { method: "PUT", body: { version }, auth: true });
    say(status, t("aliasMoved", { a: `${r.name}@${r.alias}`, v: r.version }));
    await loadRegistry();
  } catch (err) {
    say(status, err.message, true);
  }
}

async function deleteAlias() {
  const alias = $("#alias-name").value.trim();
  const status = $("#alias-status");
  say(status, "");
  if (!$("#alias-name").reportValidity()) return;  // the browser says what is missing, as on a submit
  try {
    const r = await api(`v1/models/${encodeURIComponent(currentModel)}/aliases/${encodeURIComponent(alias)}`, { method: "DELETE", auth: true });
    say(status, t("aliasDeleted", { a: `${r.name}@${r.alias}`, v: r.previous }));
    await loadRegistry();
  } catch (err) {
    say(status, err.message, true);
  }
}

// the status each form reports in: cleared when the browser's own validation stops a submit, so an earlier
// answer's message never stands beside an input the browser is pointing at
const FORM_STATUS = {
  "explore-form": "words-status", "analogy-form": "analogy-status", "pair-form": "pair-status",
  "side-form": "side-status", "classify-form": "classify-status", "key-form": "key-state",
  "alias-form": "alias-status", "search-form": "search-status", "texts-form": "texts-status",
  "complete-form": "complete-status", "generate-form": "gen-status", "job-form": "jobs-status",
};

function setupValidation() {
  for (const [form, status] of Object.entries(FORM_STATUS)) {
    $(`#${form}`).addEventListener("invalid", () => say($(`#${status}`), ""), true);  // "invalid" does not bubble
  }
}

function setupKey() {
  const state = $("#key-state");
  $("#api-key").value = apiKey();
  $("#key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem("palavra.key", $("#api-key").value.trim());
    say(state, t("keySaved"));
    reloadWithKey();
  });
  $("#forget-key").addEventListener("click", () => {
    sessionStorage.removeItem("palavra.key");
    $("#api-key").value = "";
    say(state, t("keyForgotten"));
    reloadWithKey();
  });
}

// a new key may open what the server refused (PALAVRA_PROTECT_READS) or close it: the model lists of every panel
// and the open tab's own data are asked for again with it
function reloadWithKey() {
  const tab = TABS.find((id) => !$(`#${id}`).hidden) || "words";
  const status = $("#words-status");
  loadModelLists()
    .then(() => {
      document.body.setAttribute("data-ready", "1");
      listLoaded(status);
    })
    .catch((err) => listFailed(status, err));
  if (tab === "models") loadRegistry();
  if (tab === "jobs") loadJobs();
  if (tab === "search") loadCollections();
}

// -- Jobs ---------------------------------------------------------------------------------------------------------
let stream = null;

function fillTemplate() {
  $("#job-config").value = JSON.stringify(JOB_TEMPLATES[$("#job-kind").value], null, 2);
}

async function loadJobs() {
  try {
    const page = await api("v1/jobs?limit=20");
    const rows = page.items.map((j) => el("tr", {},
      el("th", { scope: "row" }, el("button", { type: "button", class: "link", text: j.id, onclick: () => watchJob(j.id) })),
      el("td", { text: j.kind }), el("td", { text: j.state }),
      el("td", { text: j.progress.fraction === null ? (j.progress.stage || "") : `${Math.round(j.progress.fraction * 100)}%` }),
      el("td", { text: new Date(j.created_at).toLocaleString(lang === "pt" ? "pt-BR" : "en-GB") })));
    $("#job-table tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 5, text: t("noJobs") }))]));
    listLoaded($("#jobs-status"));
  } catch (err) {
    listFailed($("#jobs-status"), err);
  }
}

async function submitJob(e) {
  e.preventDefault();
  const status = $("#jobs-status");
  const kind = $("#job-kind").value;
  const text = $("#job-config").value;
  say(status, t("loading"));
  try {
    let job;
    const files = [...$("#job-files").files];
    if (text.trim().startsWith("{") && files.length === 0) {
      let config;
      try { config = JSON.parse(text); } catch (err) { throw new ApiError(422, { detail: err.message }); }
      job = await api("v1/jobs", { method: "POST", body: { kind, config }, auth: true });
    } else {
      if (!apiKey()) throw new ApiError(401, { detail: t("keyMissing") });
      const form = new FormData();
      form.append("kind", kind);
      form.append("config", text);
      for (const f of files) form.append("files", f, f.name);
      const r = await fetch("v1/jobs", { method: "POST", body: form, headers: { Authorization: `Bearer ${apiKey()}` } });
      job = await r.json();
      if (!r.ok) throw new ApiError(r.status, job);
    }
    say(status, t("submitted", { id: job.id }));
    watchJob(job.id);
    loadJobs();
  } catch (err) {
    say(status, err.message, true);
  }
}

function renderJob(j) {
  $("#job-live").hidden = false;
  $("#job-live").dataset.job = j.id;
  $("#job-title").textContent = `${j.kind} · ${j.id}`;
  $("#job-state").textContent = j.state;
  const p = j.progress;
  const bits = [p.stage, p.epoch ? `${t("epoch")} ${p.epoch}` : null, Number.isFinite(p.loss) ? `${t("loss")} ${fmt(p.loss, 4)}` : null, p.message].filter(Boolean);
  $("#job-stage").textContent = bits.length ? `— ${bits.join(" · ")}` : "";
  $("#job-progress").value = j.state === "succeeded" ? 1 : p.fraction || 0;
  $("#job-error").hidden = !j.error;
  $("#job-error").textContent = j.error || "";
  $("#job-model").textContent = j.model ? `${t("registered")} ${j.model.ref}` : "";
  $("#job-cancel").disabled = ["succeeded", "failed", "cancelled"].includes(j.state);
}

let watching = null;

function watchJob(id) {
  watching = id;
  if (stream) stream.close();
  $("#job-log").textContent = "";
  $("#job-curves").replaceChildren();
  stream = new EventSource(`v1/jobs/${encodeURIComponent(id)}/events`);
  stream.addEventListener("progress", (e) => renderJob(JSON.parse(e.data)));
  stream.addEventListener("log", (e) => {
    const line = JSON.parse(e.data);
    $("#job-log").textContent += `${line.line}\n`;
  });
  stream.addEventListener("end", (e) => {
    const j = JSON.parse(e.data);
    renderJob(j);
    stream.close();
    stream = null;
    loadJobs();
    if (["compare", "compare_lm"].includes(j.kind) && j.state === "succeeded") showCompareCurves(j.id);
    if (j.model) loadModelLists().catch(() => {});
  });
  // no stream (a proxy that buffers it, or reads behind a key EventSource cannot send): poll the job instead
  stream.addEventListener("error", () => {
    if (!stream || stream.readyState !== EventSource.CLOSED) return;
    stream = null;
    pollJob(id);
  });
}

async function pollJob(id) {
  try {
    const j = await api(`v1/jobs/${encodeURIComponent(id)}`);
    if (watching !== id) return;  // another job was chosen meanwhile
    renderJob(j);
    $("#job-log").textContent = j.logs.map((l) => l.line).join("\n");
    if (["succeeded", "failed", "cancelled"].includes(j.state)) {
      loadJobs();
      if (["compare", "compare_lm"].includes(j.kind) && j.state === "succeeded") showCompareCurves(j.id);
      return;
    }
    setTimeout(() => pollJob(id), 1000);
  } catch (err) {
    say($("#jobs-status"), err.message, true);
  }
}

async function showCompareCurves(id) {
  try {
    const data = await api(`v1/jobs/${encodeURIComponent(id)}/curves`);
    const series = [];
    data.runs.forEach((run, i) => {
      const colour = COLOURS[i % COLOURS.length];
      series.push({ name: `${run.name} train`, colour, points: run.history.map((r) => [r.epoch, r.train_loss]) });
      series.push({ name: `${run.name} val`, colour, dashed: true, points: run.history.map((r) => [r.epoch, r.val_loss]) });
    });
    $("#job-curves").replaceChildren(lineChart(series, { yLabel: t("loss"), title: t("lossCurves") }));
  } catch (err) {
    $("#job-curves").replaceChildren(el("p", { class: "error", text: err.message }));
  }
}

async function cancelJob() {
  const id = $("#job-live").dataset.job;
  try {
    await api(`v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE", auth: true });
    say($("#jobs-status"), t("cancelled"));
  } catch (err) {
    say($("#jobs-status"), err.message, true);
  }
}

// -- Search -------------------------------------------------------------------------------------------------------
async function loadCollections() {
  const sel = $("#search-collection");
  try {
    const data = await api("v1/collections");
    const keep = sel.value;
    sel.replaceChildren(...data.collections.map((c) => el("option", { value: c.name, text: `${c.name} (${c.documents})` })));
    if (keep && data.collections.some((c) => c.name === keep)) sel.value = keep;
    listLoaded($("#search-status"));
    if (!data.collections.length) say($("#search-status"), t("noCollections"));
    else if ($("#search-status").textContent === t("noCollections")) say($("#search-status"), "");
  } catch (err) {
    listFailed($("#search-status"), err);
  }
}

function hitRow(h) {
  const meta = Object.entries(h.metadata || {}).map(([k, v]) => el("span", { class: "pill", text: `${k}: ${typeof v === "string" ? v : JSON.stringify(v)}` }));
  return el("li", { class: "hit", "data-id": h.id },
    el("div", { class: "hit-head" }, el("strong", { class: "hit-id", text: h.id }), el("span", { class: "num", text: `${t("score")} ${fmt(h.score, 4)}` }), meta),
    el("p", { class: "hit-text", text: h.text }));
}

let searchSeq = 0;
let searchTimer = null;
async function runSearch() {
  clearTimeout(searchTimer);
  const query = $("#search-query").value.trim();
  const name = $("#search-collection").value;
  const status = $("#search-status");
  if (!query || !name) {
    ++searchSeq;  // an answer still on its way belongs to a query that is gone
    if (!query) {
      $("#search-hits").replaceChildren();
      say(status, "");
    }
    return;
  }
  const seq = ++searchSeq;
  say(status, t("loading"));
  const body = { query, k: Number($("#search-k").value) || 10, mode: $("#search-mode").value };
  try {
    const data = await api(`v1/collections/${encodeURIComponent(name)}/search`, { method: "POST", body });
    if (seq !== searchSeq) return;  // a newer query was typed meanwhile
    $("#search-hits").replaceChildren(...data.hits.map(hitRow));
    const mode = t({ hybrid: "modeHybrid", vector: "modeVector", lexical: "modeLexical" }[data.mode]);
    say(status, data.hits.length ? t("hitCount", { n: data.hits.length, c: data.collection, m: mode }) : t("noHits"));
  } catch (err) {
    if (seq !== searchSeq) return;
    $("#search-hits").replaceChildren();
    say(status, err.message, true);
  }
}

function searchSoon() {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(runSearch, 250);
}

async function textSimilarity(e) {
  e.preventDefault();
  const status = $("#texts-status");
  const a = $("#text-a").value.trim();
  const b = $("#text-b").value.trim();
  if (!a || !b) return say(status, t("empty"), true);
  say(status, t("loading"));
  const body = { pairs: [[a, b]] };
  if ($("#texts-model").value) body.model = $("#texts-model").value;
  try {
    const data = await api("v1/text-similarity", { method: "POST", body });
    $("#texts-out").textContent = `${t("cosine")} = ${fmt(data.results[0].cosine)}`;
    say(status, `${data.model.name}@${data.model.version}`);
  } catch (err) {
    $("#texts-out").textContent = "";
    say(status, err.message, true);
  }
}

// -- Text (language model) ---------------------------------------------------------------------------------------
const PUNCT = /^[.,;:!?…)\]}»%]+$/;

// the model's tokens as readable text, the way the server writes them (punctuation attached, <p> a blank line)
function joinToken(text, token) {
  if (token === "</s>") return text;
  if (token === "<p>") return `${text.trimEnd()}\n\n`;
  if (!text || /\s$/.test(text) || PUNCT.test(token)) return text + token;
  return `${text} ${token}`;
}

function lmBody(extra) {
  const body = { ...extra };
  if ($("#lm-model").value) body.model = $("#lm-model").value;
  return body;
}

function pickNext(word) {
  const box = $("#lm-text");
  box.value = `${word === "</s>" ? box.value.trimEnd() + "." : joinToken(box.value.trimEnd(), word)} `;
  box.focus();
  runComplete();
}

let completeSeq = 0;
let completeTimer = null;
async function runComplete() {
  clearTimeout(completeTimer);
  const text = $("#lm-text").value;
  const status = $("#complete-status");
  if (!text.trim() || !$("#lm-model").value) {
    completeSeq++;
    $("#complete-out").replaceChildren();
    say(status, "");
    return;
  }
  const seq = ++completeSeq;
  say(status, t("loading"));
  try {
    const data = await api("v1/complete", { method: "POST", body: lmBody({ text, k: Number($("#lm-k").value) || 8 }) });
    if (seq !== completeSeq) return;  // a newer text was typed meanwhile
    $("#complete-out").replaceChildren(...data.candidates.map((c) => {
      const label = c.word === "</s>" ? `. (${t("sentenceEnd")})` : c.word;
      const pct = Math.max(0, Math.min(1, c.probability)) * 100;
      return el("li", { "data-word": c.word },
        el("button", { type: "button", class: "link", text: label, onclick: () => pickNext(c.word) }),
        el("div", { class: "bar", role: "img", "aria-label": `${t("probability")} ${fmt(c.probability)}` }, el("span", { style: `width:${pct.toFixed(1)}%` })),
        el("span", { class: "num", text: fmt(c.probability) }));
    }));
    const unknown = data.unknown.length ? ` · ${t("unknownTokens", { w: data.unknown.join(", ") })}` : "";
    say(status, `${data.model.name}@${data.model.version}${unknown}`);
  } catch (err) {
    if (seq !== completeSeq) return;
    $("#complete-out").replaceChildren();
    say(status, err.message, true);
  }
}

function completeSoon() {
  clearTimeout(completeTimer);
  completeTimer = setTimeout(runComplete, 250);
}

// the answer of POST /v1/generate with stream=true, read event by event (EventSource cannot POST)
async function* serverEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield [name, JSON.parse(data.join("\n"))];
    }
  }
}

let generation = null;
async function generate(e) {
  e.preventDefault();
  const status = $("#gen-status");
  const out = $("#gen-out");
  const prompt = $("#gen-prompt").value;
  if (!prompt.trim()) return say(status, t("empty"), true);
  const num = (id) => ($(id).value.trim() === "" ? null : Number($(id).value));
  const body = lmBody({
    prompt, stream: true, max_tokens: num("#gen-max") ?? 40, temperature: num("#gen-temp") ?? 0.8,
    top_k: num("#gen-topk"), top_p: num("#gen-topp") ?? 0.95, seed: num("#gen-seed"),
  });
  if (generation) generation.abort();
  const run = new AbortController();
  generation = run;
  const tokens = [];
  let text = prompt.trim();
  out.textContent = text;
  out.dataset.state = "running";
  out.setAttribute("aria-busy", "true");
  $("#gen-start").disabled = true;
  $("#gen-stop").disabled = false;
  say(status, t("generating", { n: 0 }));
  try {
    const headers = { "Content-Type": "application/json", Accept: "text/event-stream" };
    if (apiKey()) headers.Authorization = `Bearer ${apiKey()}`;
    const r = await fetch("v1/generate", { method: "POST", headers, body: JSON.stringify(body), signal: run.signal });
    if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => ({ detail: `HTTP ${r.status}` })));
    for await (const [name, data] of serverEvents(r)) {
      if (name === "token") {
        tokens.push(data.token);
        text = joinToken(text, data.token);
        out.textContent = text;
        say(status, t("generating", { n: tokens.length }));
      } else if (name === "done") {
        out.textContent = data.text;  // the server's own rendering of the same tokens
        out.dataset.state = "done";
        say(status, t("generatedN", { n: data.tokens.length, m: `${data.model.name}@${data.model.version}` }));
      }
    }
    if (out.dataset.state === "running") throw new Error(`HTTP ${r.status}: ${t("stopped", { n: tokens.length })}`);
  } catch (err) {
    if (run.signal.aborted) {
      out.dataset.state = "stopped";
      if (generation === run) say(status, t("stopped", { n: tokens.length }));
    } else {
      out.dataset.state = "error";
      say(status, err.message, true);
    }
  } finally {
    out.dataset.streamed = String(tokens.length);
    if (generation === run) {
      generation = null;
      out.setAttribute("aria-busy", "false");
      const hadFocus = document.activeElement === $("#gen-stop");
      $("#gen-start").disabled = false;
      $("#gen-stop").disabled = true;
      if (hadFocus) $("#gen-start").focus();  // keep the keyboard where it was, not on a disabled button
    }
  }
}

function stopGeneration() {
  if (generation) generation.abort();
}

// -- start --------------------------------------------------------------------------------------------------------
function start() {
  applyLang();
  setupTabs();
  setupKey();
  $("#lang").addEventListener("click", () => {
    lang = lang === "pt" ? "en" : "pt";
    localStorage.setItem("palavra.lang", lang);
    applyLang();
    loadModelLists().catch(() => {});
  });
  $("#explore-form").addEventListener("submit", (e) => { e.preventDefault(); explore(); });
  $("#analogy-form").addEventListener("submit", solveAnalogy);
  $("#pair-form").addEventListener("submit", pairSimilarity);
  $("#side-form").addEventListener("submit", sideBySide);
  $("#classify-form").addEventListener("submit", classify);
  $("#clf-model").addEventListener("change", fillClassifierVersions);
  $("#alias-form").addEventListener("submit", moveAlias);
  $("#alias-delete").addEventListener("click", deleteAlias);
  setupValidation();
  $("#search-form").addEventListener("submit", (e) => { e.preventDefault(); runSearch(); });
  $("#search-query").addEventListener("input", searchSoon);
  for (const id of ["#search-collection", "#search-mode", "#search-k"]) $(id).addEventListener("change", runSearch);
  $("#texts-form").addEventListener("submit", textSimilarity);
  $("#lm-text").addEventListener("input", completeSoon);
  $("#complete-form").addEventListener("submit", (e) => { e.preventDefault(); runComplete(); });
  for (const id of ["#lm-model", "#lm-k"]) $(id).addEventListener("change", runComplete);
  $("#generate-form").addEventListener("submit", generate);
  $("#gen-stop").addEventListener("click", stopGeneration);
  $("#job-kind").addEventListener("change", fillTemplate);
  $("#job-form").addEventListener("submit", submitJob);
  $("#job-cancel").addEventListener("click", cancelJob);
  fillTemplate();
  // the page opens at the top: no address written before it has loaded (the browser then scrolled to the #words
  // panel, the header and tabs off screen), and a tab named in the address shown from the top too
  const named = location.hash.slice(1);
  showTab(named || "words", false, Boolean(named));
  if (named) window.addEventListener("load", () => window.scrollTo(0, 0), { once: true });
  loadModelLists()
    .then(() => document.body.setAttribute("data-ready", "1"))
    .catch((err) => listFailed($("#words-status"), err));
}

document.addEventListener("DOMContentLoaded", start);
