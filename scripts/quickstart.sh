#!/usr/bin/env bash
# The main job: fetch public Portuguese data, train word vectors and a toxicity classifier on it, answer neighbours
# queries and a classification, then serve both over HTTP.
# Run through `make quickstart` (which installs palavra into .venv first).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-.venv/bin}"   # where palavra and its python are installed
PORT="${PORT:-8000}"
MODEL="${MODEL:-pt-vetores}"
CLASSIFIER="${CLASSIFIER:-toxicidade}"
# The quickstart's vectors: chosen by measurement for a few minutes on 2 cores (BENCHMARKS.md, "Quick start").
W2V_CONFIG="${W2V_CONFIG:-configs/quickstart-word2vec.toml}"
WORDS="amor rei casa cidade feliz"

# the port is checked before minutes of fetching and training, not only when the server starts at the end
if ! "$BIN"/python - "$PORT" <<'EOF'
import sys

from models.errors import InvalidInput
from services.api.server import check_listen

port = sys.argv[1]
if not port.isdigit() or not 0 < int(port) < 65536:
    sys.exit(f"error: PORT={port!r} is not a port number (1-65535); e.g. make quickstart PORT=8001")
try:
    check_listen("127.0.0.1", int(port), option="PORT")  # what `palavra serve` checks at the end
except InvalidInput as exc:
    sys.exit(f"error: {exc.detail}")
EOF
then
    exit 2
fi

echo "==> fetching the corpus (Machado de Assis and 100 novels of ELTeC-por, public domain) and ToLD-Br (toxic tweets, CC BY-SA 4.0)"
"$BIN"/palavra data fetch corpus-machado corpus-eltec told-br-1annotator-train told-br-1annotator-validation >/dev/null

corpus=()
if ! "$BIN"/palavra data fetch corpus-ptwiki >/dev/null 2>&1; then
    # the pt.wikipedia sample is converted from saved HTML pages: only a data mirror has it
    echo "    (no data mirror with the pt.wikipedia sample: the vectors learn from Machado de Assis and ELTeC-por only)"
    corpus=(--corpus corpus-machado --corpus corpus-eltec)
fi

# a run again trains new versions of both models: the server answers with both of them, not one new and one old
to_production() {  # NAME, the JSON a `palavra train` printed
    local version
    version=$(echo "$2" | "$BIN"/python -c 'import json, sys; print(json.load(sys.stdin)["model"].rsplit("@", 1)[1])')
    "$BIN"/palavra models alias "$1" production "$version" >/dev/null
    echo "    $1@production -> version $version"
}

echo "==> training word vectors ($MODEL, $W2V_CONFIG)"
trained=$("$BIN"/palavra train word2vec --config "$W2V_CONFIG" --name "$MODEL" ${corpus[@]+"${corpus[@]}"})
echo "$trained"
to_production "$MODEL" "$trained"

echo "==> nearest neighbours"
for word in $WORDS; do
    "$BIN"/palavra neighbors "$MODEL" "$word" -k 8 --json | "$BIN"/python -c \
        'import json, sys; r = json.load(sys.stdin); print(r["word"].rjust(8) + ":", ", ".join(n["word"] for n in r["neighbors"]))'
done

echo "==> training a toxicity classifier ($CLASSIFIER) on ToLD-Br"
trained=$("$BIN"/palavra train classifier --train told-br-1annotator-train --validation told-br-1annotator-validation \
    --text-column text --label-column toxic --name "$CLASSIFIER")
echo "$trained"
to_production "$CLASSIFIER" "$trained"

echo "==> classifying a sentence"
"$BIN"/palavra classify "$CLASSIFIER" "que dia lindo, obrigado a todos"

echo "==> serving on http://127.0.0.1:$PORT  (try: curl 'http://127.0.0.1:$PORT/v1/neighbors?word=amor&k=5')"
echo "    and: curl -X POST http://127.0.0.1:$PORT/v1/classify -H 'content-type: application/json' -d '{\"texts\": [\"que dia lindo\"], \"model\": \"$CLASSIFIER\"}'"
exec "$BIN"/palavra serve --host 127.0.0.1 --port "$PORT"
