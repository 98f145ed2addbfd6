"""Every CLI command, one module each; a module registers its commands on the typer app when imported.

``palavra X ...`` imports only the modules that register ``X`` (:data:`MODULES`), so a command starts without
importing what the others need (scipy for `evaluate encoder`, the served vectors for `analogy`, ...); `palavra`,
`palavra --help` and an unknown command import them all.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

# each top-level command or command group -> the modules that register it and its subcommands
MODULES: dict[str, tuple[str, ...]] = {
    "analogy": ("analogy_cmd",),
    "classify": ("classify_cmd",),
    "collection": ("collection_cmd",),
    "compare": ("compare_cmd",),
    "complete": ("lm_cmd",),
    "data": ("data_cmd",),
    "doctor": ("doctor_cmd",),
    "embed": ("embed_cmd",),
    "evaluate": ("evaluate_classifier_cmd", "evaluate_encoder_cmd", "evaluate_word2vec_cmd", "lm_cmd"),
    "export": ("export_cmd",),
    "generate": ("lm_cmd",),
    "import": ("import_cmd",),
    "jobs": ("jobs_cmd",),
    "models": ("models_cmd",),
    "neighbors": ("neighbors_cmd",),
    "preprocess": ("preprocess_cmd",),
    "search": ("search_cmd",),
    "serve": ("serve_cmd",),
    "similarity": ("similarity_cmd",),
    "text-similarity": ("text_similarity_cmd",),
    "train": ("lm_cmd", "train_classifier_cmd", "train_encoder_cmd", "train_word2vec_cmd"),
    "worker": ("worker_cmd",),
}


def load_commands(argv: Sequence[str] = ()) -> None:
    """Register the commands that ``argv`` (the arguments after ``palavra``) runs; all of them for any other."""
    wanted = MODULES.get(argv[0]) if argv else None
    names = wanted if wanted is not None else sorted({m for modules in MODULES.values() for m in modules})
    for name in names:
        importlib.import_module(f"{__name__}.{name}")
