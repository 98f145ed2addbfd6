"""``POST /v1/complete`` under wrk: p50/p99 and requests/s of ``palavra serve`` with 1 and 2 workers.

    # needs wrk (apt-get install -y wrk) and a registered language model in PALAVRA_HOME
    PALAVRA_HOME=... PALAVRA_DATA_MIRROR=/work/shared/data nice .venv/bin/python benchmarks/lm_http_bench.py \
        --model machado --workers 1,2 --conns 16 --duration 15 --rounds 2

Bodies are ``{"text", "k", "model"}`` with the first 2-8 words of 400 lines of Machado de Assis's *Memorial de
Aires* in the data mirror (from its 100th line of four words or more) and k cycling through 1, 5 and 10, sent by
``benchmarks/wrk/requests.lua``. Each server gets a 3 s warm-up at 4 connections (the first request loads the
model and the tokenizer), then ``--rounds`` runs at each connection count; wrk runs on the same cores as the server.
The load average (1 minute) is printed before and after each run: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_bench import start_server, stop_server, wrk


def bodies(mirror: Path, model: str, path: Path, *, n: int = 400) -> Path:
    book = mirror / "corpus" / "machado-de-assis" / "romance" / "memorial-de-aires.txt"
    lines = [line.split() for line in book.read_text(encoding="utf-8").splitlines() if len(line.split()) >= 4]
    rnd = random.Random(7)
    with path.open("w", encoding="utf-8") as fh:
        for i, words in enumerate(lines[100 : 100 + n]):
            text = " ".join(words[: rnd.randint(2, 8)])
            fh.write(
                json.dumps({"text": text, "k": (1, 5, 10)[i % 3], "model": model}, ensure_ascii=False) + "\n"
            )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", required=True, help="A registered language model (name, name@version, alias)."
    )
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--conns", default="16")
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument(
        "--data-mirror", type=Path, default=Path(os.environ.get("PALAVRA_DATA_MIRROR", "../shared/data"))
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    lines = bodies(args.data_mirror, args.model, args.out / "complete-bodies.jsonl")
    env = {**os.environ, "PALAVRA_COMPUTE_THREADS": os.environ.get("PALAVRA_COMPUTE_THREADS", "1")}
    print("| workers | conns | round | req/s | p50 ms | p90 ms | p99 ms | failed | load before / after |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for workers in [int(w) for w in args.workers.split(",")]:
        proc, url = start_server(workers, env)
        try:
            wrk(url, "POST", "/v1/complete", lines, conns=4, seconds=3)
            for conns in [int(c) for c in args.conns.split(",")]:
                for r in range(1, args.rounds + 1):
                    before = os.getloadavg()[0]
                    s = wrk(url, "POST", "/v1/complete", lines, conns=conns, seconds=args.duration)
                    after = os.getloadavg()[0]
                    print(
                        f"| {workers} | {conns} | {r} | {s['rps']:.0f} | {s['p50_us'] / 1000:.2f} | "
                        f"{s['p90_us'] / 1000:.2f} | {s['p99_us'] / 1000:.2f} | {s['failed']} | "
                        f"{before:.2f} / {after:.2f} |",
                        flush=True,
                    )
        finally:
            stop_server(proc)


if __name__ == "__main__":
    main()
