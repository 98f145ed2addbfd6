"""``POST /v1/complete`` under wrk: p50/p99 and requests/s of ``palavra serve`` with 1 and 2 workers.

    # needs wrk (apt-get install -y wrk) and a registered language model in PALAVRA_HOME
    PALAVRA_HOME=... PALAVRA_DATA_MIRROR=/work/shared/data nice .venv/bin/python benchmarks/lm_http_bench.py \
        --model machado --workers 1,2 --conns 16 --duration 15 --rounds 2

Three sets of requests: two of ``/v1/complete`` bodies ``{"text", "k", "model"}``, the text being the first 2-8
words of a line of Machado de Assis (data mirror), k cycling through 1, 5 and 10, and a route that does no work:

- ``repeated``: 400 lines of *Memorial de Aires* (from its 100th line of four words or more), cycled by
  ``benchmarks/wrk/requests.lua``: after the first pass every text has been seen (autocomplete traffic repeats).
- ``distinct``: up to 60,000 different texts from every other work, sent by ``benchmarks/wrk/distinct.lua``: no
  text is sent twice in a run, and each round starts where the previous one stopped (texts that end in the same
  words can still share an answer, as they would in real traffic).
- ``health``: ``GET /health``, a route that does no work, run the same way: what HTTP and the closed loop of
  connections alone cost on these cores, beside the completions.

Each server is started and left until its processes are quiet (its local job worker's imports done: see
``serving_bench.settle``), then gets a 3 s warm-up at 4 connections on the repeated set (the first request loads the
model and the tokenizer), then ``--rounds`` runs of each set at each connection count. wrk runs on the same cores as
the server.
The load average (1 minute) is printed before and after each run: the machine is shared. "server CPU ms" is the
CPU time the server's processes used during the run divided by the requests answered: unlike the latencies it
hardly moves with other work on the machine, so it is the figure to compare between two versions of the code.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving_bench import _tree_cpu_seconds as server_cpu_seconds
from serving_bench import start_server, stop_server, wrk

DISTINCT_LUA = Path(__file__).resolve().parent / "wrk" / "distinct.lua"
ROUND_STRIDE = 30_000  # bodies a round may use before the next round's offset
MEMORIAL = "romance/memorial-de-aires.txt"


def measured(pid: int, run: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """Run one wrk ``run`` against the server ``pid``; its stats and the table cells
    ``req/s | p50 | p90 | p99 | failed | server CPU ms / request | load before / after``."""
    before = os.getloadavg()[0]
    cpu = server_cpu_seconds(pid)
    s = run()
    after = os.getloadavg()[0]
    cpu_ms = 1000 * (server_cpu_seconds(pid) - cpu) / max(s["requests"], 1)
    cells = (
        f"{s['rps']:.0f} | {s['p50_us'] / 1000:.2f} | {s['p90_us'] / 1000:.2f} | {s['p99_us'] / 1000:.2f} | "
        f"{s['failed']} | {cpu_ms:.3f} | {before:.2f} / {after:.2f}"
    )
    return s, cells


def _body(words: list[str], i: int, rnd: random.Random, model: str) -> str:
    text = " ".join(words[: rnd.randint(2, 8)])
    return json.dumps({"text": text, "k": (1, 5, 10)[i % 3], "model": model}, ensure_ascii=False)


def _lines(path: Path) -> list[list[str]]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return [line.split() for line in text.splitlines() if len(line.split()) >= 4]


def write_bodies(mirror: Path, model: str, out: Path) -> tuple[Path, Path, int]:
    """(repeated set, distinct set, number of distinct bodies)."""
    root = mirror / "corpus" / "machado-de-assis"
    rnd = random.Random(7)
    repeated = out / "complete-repeated.jsonl"
    repeated.write_text(
        "".join(_body(w, i, rnd, model) + "\n" for i, w in enumerate(_lines(root / MEMORIAL)[100:500])),
        encoding="utf-8",
    )
    seen: set[str] = set()
    bodies: list[str] = []
    for path in sorted(root.glob("*/*.txt")):
        if path.relative_to(root).as_posix() == MEMORIAL:
            continue
        for words in _lines(path):
            body = _body(words, len(bodies), rnd, model)
            if body not in seen:
                seen.add(body)
                bodies.append(body)
    bodies = bodies[: 2 * ROUND_STRIDE]
    distinct = out / "complete-distinct.jsonl"
    distinct.write_text("".join(b + "\n" for b in bodies), encoding="utf-8")
    return repeated, distinct, len(bodies)


def wrk_distinct(
    url: str, lines: Path, *, conns: int, seconds: float, offset: int, path: str = "/v1/complete"
) -> dict[str, Any]:
    """wrk POSTing the bodies of ``lines`` to ``path``, none twice while the file lasts (wrk/distinct.lua)."""
    threads = 1 if conns == 1 else 2
    env = {**os.environ, "WRK_INPUT": str(lines), "WRK_OFFSET": str(offset), "WRK_THREADS": str(threads)}
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", str(DISTINCT_LUA),
           url + path]  # fmt: skip
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    stats: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
    stats["failed"] = sum(
        stats[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts", "non_2xx")
    )
    return stats


def parse_with_bodies(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """``parser``'s arguments, with ``--out`` (created) and ``--data-mirror`` that :func:`write_bodies` reads."""
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    parser.add_argument(
        "--data-mirror", type=Path, default=Path(os.environ.get("PALAVRA_DATA_MIRROR", "../shared/data"))
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    return args


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
    parser.add_argument("--sets", default="repeated,distinct,health")
    args = parse_with_bodies(parser)
    repeated, distinct, n_distinct = write_bodies(args.data_mirror, args.model, args.out)
    health = args.out / "health.txt"
    health.write_text("/health\n", encoding="utf-8")
    env = {**os.environ, "PALAVRA_COMPUTE_THREADS": os.environ.get("PALAVRA_COMPUTE_THREADS", "1")}
    print(f"distinct bodies: {n_distinct:,}")
    print(
        "| workers | bodies | conns | round | req/s | p50 ms | p90 ms | p99 ms | failed | server CPU ms / request "
        "| load before / after |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for workers in [int(w) for w in args.workers.split(",")]:
        proc, url = start_server(workers, env)
        try:
            wrk(url, "POST", "/v1/complete", repeated, conns=4, seconds=3)
            for conns in [int(c) for c in args.conns.split(",")]:
                for name in args.sets.split(","):
                    for r in range(1, args.rounds + 1):
                        if name == "health":  # a route that does no work: what HTTP alone costs here
                            run = functools.partial(
                                wrk, url, "GET", "", health, conns=conns, seconds=args.duration
                            )
                        elif name == "repeated":
                            run = functools.partial(
                                wrk, url, "POST", "/v1/complete", repeated, conns=conns, seconds=args.duration
                            )
                        else:
                            run = functools.partial(
                                wrk_distinct,
                                url,
                                distinct,
                                conns=conns,
                                seconds=args.duration,
                                offset=(r - 1) * ROUND_STRIDE,
                            )
                        _, cells = measured(proc.pid, run)
                        print(f"| {workers} | {name} | {conns} | {r} | {cells} |", flush=True)
        finally:
            stop_server(proc)


if __name__ == "__main__":
    main()
