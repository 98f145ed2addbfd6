"""Threads for numeric libraries in a serving process: one per request, since requests already run in parallel.

MACHINE-NOTES: a plain ``def`` route with OpenBLAS at 2 threads collapsed from ~700 to 35-60 req/s on 2 cores
(the request threadpool times BLAS threads oversubscribes them). ``palavra serve`` also sets the environment
variables before worker processes import numpy; this covers numpy already loaded in the current process.
"""

from __future__ import annotations

import sys

from threadpoolctl import threadpool_limits

from models.ann import set_threads

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def limit_compute_threads(n: int) -> None:
    """Cap BLAS / OpenMP / faiss (and torch, when loaded) at ``n`` threads in this process."""
    threadpool_limits(limits=n)
    set_threads(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
