#!/usr/bin/env bash
# One quickstart candidate, end to end from raw text: a fresh PALAVRA_HOME, `palavra train word2vec --config`
# (evaluated on LX-4WAnalogiesBr-dev and LX-SimLex-999), wall and CPU seconds, the neighbours the quickstart
# prints, and the size of PALAVRA_HOME. Results go to benchmarks/out/quickstart/<tag>.*
#
#   PALAVRA_DATA_MIRROR=../shared/data bash benchmarks/quickstart_bench.sh TAG CONFIG.toml [train flags...]
#
# Run candidates one after the other on a quiet machine: times move with the load, quality does not.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=$1 config=$2
shift 2
out=benchmarks/out/quickstart
mkdir -p "$out"
export PALAVRA_HOME="${PALAVRA_HOME_BASE:-/tmp/palavra-quickstart-bench}/$tag"
rm -rf "$PALAVRA_HOME"
mkdir -p "$PALAVRA_HOME"
BIN=.venv/bin
name=$(sed -n 's/^name *= *"\(.*\)"/\1/p' "$config")
/usr/bin/time -f "wall_s %e cpu_user_s %U cpu_sys_s %S max_rss_kb %M" -o "$out/$tag.time" \
    $BIN/palavra train word2vec --config "$config" --quiet "$@" >"$out/$tag.train.json"
{
    cat "$out/$tag.time"
    for word in amor rei casa cidade feliz; do
        $BIN/palavra neighbors "$name" "$word" -k 8 --json | $BIN/python -c \
            'import json, sys; r = json.load(sys.stdin); print(r["word"] + ":", ", ".join(n["word"] for n in r["neighbors"]))'
    done
    du -sh "$PALAVRA_HOME" "$PALAVRA_HOME"/*
} | tee "$out/$tag.summary"
