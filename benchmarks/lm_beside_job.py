"""``POST /v1/complete`` p99 while a training job runs in ``palavra serve``'s own local job worker.

    # needs wrk, a registered language model and the data mirror (the job trains word2vec on corpus-machado)
    PALAVRA_HOME=... PALAVRA_DATA_MIRROR=/work/shared/data .venv/bin/python benchmarks/lm_beside_job.py \
        --model pt-lm --nice 0,10 --rounds 2

For each ``--nice`` value (``PALAVRA_LOCAL_WORKER_NICE``), a server with 2 workers and a write key is started and
left until quiet, warmed up for 3 s, and sent a word2vec job (both cores, ``--job-epochs`` epochs) over HTTP; once the
job runs, ``--rounds`` 8 s rounds of new texts at 16 connections (the ``distinct`` set of ``lm_http_bench.py``) are
measured, and the job is cancelled. "server CPU" counts the job too. The job's progress after each round shows what
it got of the cores.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm_http_bench import ROUND_STRIDE, measured, parse_with_bodies, write_bodies, wrk_distinct
from serving_bench import start_server, stop_server

KEY = "beside-job-bench"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="A registered language model.")
    parser.add_argument("--nice", default="0,10", help="PALAVRA_LOCAL_WORKER_NICE values, one server each.")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--job-epochs", type=int, default=20)
    args = parse_with_bodies(parser)
    _, distinct, _ = write_bodies(args.data_mirror, args.model, args.out)
    auth = {"Authorization": f"Bearer {KEY}"}
    print(
        "| nice | round | req/s | p50 ms | p90 ms | p99 ms | failed | server CPU ms / request | load | job |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for nice in args.nice.split(","):
        env = {
            **os.environ,
            "PALAVRA_COMPUTE_THREADS": "1",
            "PALAVRA_LOCAL_WORKER_NICE": nice,
            "PALAVRA_API_KEYS": KEY,
        }
        proc, url = start_server(2, env)
        try:
            wrk_distinct(url, distinct, conns=4, seconds=3, offset=2 * ROUND_STRIDE - 5_000)
            config = {
                "name": f"beside-job-{nice}-{time.time_ns()}",
                "corpus": ["corpus-machado"],
                "evaluate": False,
                "train": {"algorithm": "word2vec", "epochs": args.job_epochs},
            }
            job = httpx.post(
                f"{url}/v1/jobs", headers=auth, json={"kind": "word2vec", "config": config}, timeout=30
            ).json()["id"]
            while httpx.get(f"{url}/v1/jobs/{job}", timeout=10).json()["state"] == "queued":
                time.sleep(0.2)
            time.sleep(5)  # past the job's start (imports, reading the corpus)
            for r in range(args.rounds):
                run = functools.partial(
                    wrk_distinct, url, distinct, conns=16, seconds=8, offset=(r % 2) * ROUND_STRIDE
                )
                _, cells = measured(proc.pid, run)
                state = httpx.get(f"{url}/v1/jobs/{job}", timeout=10).json()
                fraction = (state.get("progress") or {}).get("fraction")
                print(f"| {nice} | {r + 1} | {cells} | {state['state']} {fraction} |", flush=True)
            httpx.delete(f"{url}/v1/jobs/{job}", headers=auth, timeout=30)
        finally:
            stop_server(proc)


if __name__ == "__main__":
    main()
