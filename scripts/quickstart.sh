#!/usr/bin/env bash
# The main job: fetch a public Portuguese corpus, train word vectors on it, answer a neighbours query, then serve.
# Run through `make quickstart` (which installs palavra into .venv first).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT="${PORT:-8000}"
MODEL="${MODEL:-pt-machado}"

echo "==> fetching the corpus (Machado de Assis, public domain)"
$BIN/palavra data fetch corpus-machado

echo "==> training word vectors ($MODEL)"
$BIN/palavra train word2vec --corpus corpus-machado --name "$MODEL"

echo "==> nearest neighbours of 'amor'"
$BIN/palavra neighbors "$MODEL" amor -k 10

echo "==> serving on http://127.0.0.1:$PORT  (try: curl 'http://127.0.0.1:$PORT/v1/neighbors?word=amor&k=5')"
exec $BIN/palavra serve --host 127.0.0.1 --port "$PORT"
