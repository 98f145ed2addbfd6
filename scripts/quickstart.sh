#!/usr/bin/env bash
# The main job: fetch public Portuguese data, train word vectors and a toxicity classifier on it, answer a
# neighbours query and a classification, then serve both over HTTP.
# Run through `make quickstart` (which installs palavra into .venv first).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT="${PORT:-8000}"
MODEL="${MODEL:-pt-machado}"
CLASSIFIER="${CLASSIFIER:-toxicidade}"

echo "==> fetching the corpus (Machado de Assis, public domain) and ToLD-Br (toxic tweets, CC BY-SA 4.0)"
$BIN/palavra data fetch corpus-machado told-br-1annotator-train told-br-1annotator-validation

echo "==> training word vectors ($MODEL)"
$BIN/palavra train word2vec --corpus corpus-machado --name "$MODEL"

echo "==> nearest neighbours of 'amor'"
$BIN/palavra neighbors "$MODEL" amor -k 10

echo "==> training a toxicity classifier ($CLASSIFIER) on ToLD-Br"
$BIN/palavra train classifier --train told-br-1annotator-train --validation told-br-1annotator-validation \
    --text-column text --label-column toxic --name "$CLASSIFIER"

echo "==> classifying a sentence"
$BIN/palavra classify "$CLASSIFIER" "que dia lindo, obrigado a todos"

echo "==> serving on http://127.0.0.1:$PORT  (try: curl 'http://127.0.0.1:$PORT/v1/neighbors?word=amor&k=5')"
echo "    and: curl -X POST http://127.0.0.1:$PORT/v1/classify -H 'content-type: application/json' -d '{\"texts\": [\"que dia lindo\"], \"model\": \"$CLASSIFIER\"}'"
exec $BIN/palavra serve --host 127.0.0.1 --port "$PORT"
