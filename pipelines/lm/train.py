"""Train a neural language model on cached, tokenised corpora and register it (kind ``lm``).

corpus sources (a catalogue entry made of parts is read part by part) -> :func:`prepare_corpus` per source (cached,
shared with every trainer that uses the same normalisation) -> hard-wrapped lines joined into paragraphs -> last
``holdout`` of each source's documents held out -> vocabulary (frequency order) -> epochs of
shuffled mini-batches -> validation perplexity per epoch -> early stopping (the best epoch's weights are kept) ->
``config.json`` + ``vocab.json`` + ``weights.safetensors`` + ``history.png``.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.optim import Optimizer

from models import lm as lm_kind
from models.errors import EmptyCorpus, InvalidInput
from models.ngram import NGramModel
from models.registry import ModelVersion, Registry
from pipelines.classifier.optim import LazyAdam, LazyMomentum, LazyRMSprop
from pipelines.classifier.plots import _finite, _pyplot
from pipelines.classifier.pretrained import open_vectors, word_matrix
from pipelines.classifier.train import torch_threads
from pipelines.lm.config import LMRun
from pipelines.lm.data import IdArray, Vocabulary, contexts_of, documents, read_lines, split_holdout
from pipelines.lm.mixture import best_weight, mixture_log_probs, perplexity_of
from pipelines.lm.ngram import estimate
from pipelines.reading.corpus import CorpusLimits, list_files
from pipelines.reading.datasets import DataCatalog
from pipelines.runs.progress import Progress, ProgressCallback, ignore_progress
from pipelines.text.preprocess import prepare_corpus

log = logging.getLogger(__name__)
# a report inside an epoch at most this often (in-epoch reports carry no message: job logs stay per epoch)
IN_EPOCH_REPORT_S = 1.0
HISTORY_PNG = "history.png"
EVAL_BATCH = 4096


def build_optimizers(net: lm_kind.NeuralLM, run: LMRun) -> list[Optimizer]:
    """The named optimizer for the dense layers and its sparse-gradient counterpart for the embedding."""
    dense = [p for n, p in net.named_parameters() if not n.startswith("embedding.") and p.requires_grad]
    emb = [p for p in net.embedding.parameters() if p.requires_grad]
    name, lr = run.optimizer, run.lr
    out: list[Optimizer] = []
    if name == "sgd":
        out.append(torch.optim.SGD(dense, lr=lr))
        if emb:
            out.append(torch.optim.SGD(emb, lr=lr))
    elif name == "momentum":
        out.append(torch.optim.SGD(dense, lr=lr, momentum=0.9))
        if emb:
            out.append(LazyMomentum(emb, lr=lr, momentum=0.9))
    elif name == "adagrad":
        out.append(torch.optim.Adagrad(dense, lr=lr))
        if emb:
            out.append(torch.optim.Adagrad(emb, lr=lr))
    elif name == "rmsprop":
        out.append(torch.optim.RMSprop(dense, lr=lr))
        if emb:
            out.append(LazyRMSprop(emb, lr=lr))
    else:
        out.append(torch.optim.Adam(dense, lr=lr))
        if emb:
            out.append(LazyAdam(emb, lr=lr))
    return out


@torch.inference_mode()
def token_log_probs(
    net: lm_kind.NeuralLM, contexts: np.ndarray[Any, Any], targets: IdArray
) -> npt.NDArray[np.float64]:
    """The natural log-probability of each of ``targets`` after its context (:func:`mean_nll` is ``-mean``)."""
    out = np.empty(len(targets), dtype=np.float64)
    was_training = net.training
    net.eval()
    for start in range(0, len(targets), EVAL_BATCH):
        ctx = torch.from_numpy(np.ascontiguousarray(contexts[start : start + EVAL_BATCH]))
        tgt = torch.from_numpy(targets[start : start + EVAL_BATCH])
        out[start : start + len(tgt)] = net.softmax(net.features(ctx), tgt).output.double().numpy()
    net.train(was_training)
    return out


def mean_nll(net: lm_kind.NeuralLM, contexts: np.ndarray[Any, Any], targets: IdArray) -> float:
    """Mean negative log-likelihood (nats per token) of ``targets``; perplexity is its exp."""
    if len(targets) == 0:
        return math.nan
    return -float(token_log_probs(net, contexts, targets).mean())


def perplexity(nll: float) -> float | None:
    return round(math.exp(nll), 3) if math.isfinite(nll) and nll < 700 else None


def plot_history(history: list[dict[str, Any]], path: Path, *, title: str = "") -> None:
    """Cross-entropy (train, validation) and validation perplexity per epoch, side by side."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [row["epoch"] for row in history]
    left.plot(epochs, _finite([r.get("train_loss") for r in history]), marker="o", label="train")
    left.plot(epochs, _finite([r.get("val_loss") for r in history]), marker="o", label="validation")
    right.plot(epochs, _finite([r.get("val_perplexity") for r in history]), marker="o", label="validation")
    left.set(xlabel="epoch", ylabel="cross-entropy (nats/token)", title="loss")
    right.set(xlabel="epoch", ylabel="perplexity", title="validation perplexity")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_lines(
    run: LMRun,
    *,
    catalog: DataCatalog,
    cache_dir: Path,
    report: ProgressCallback,
    limits: CorpusLimits | None,
) -> tuple[list[str], list[str], dict[str, Any]]:
    """(train documents, held-out documents, corpus facts): each source prepared (cached), joined into paragraphs
    when its lines are hard-wrapped, then split."""
    train: list[str] = []
    held: list[str] = []
    facts: dict[str, Any] = {"sources": [], "cache_hits": 0}
    for spec in [part for given in run.corpus for part in catalog.sources(given)]:
        paths = catalog.resolve(spec)
        prepared = prepare_corpus(
            paths,
            run.normalize,
            cache_dir=cache_dir,
            workers=run.workers,
            progress=report,
            text_field=run.text_field,
            limits=limits,
        )
        lines = read_lines(prepared.path)
        # a JSON line or a CSV row is a document; only plain text can be hard-wrapped
        docs, wrapped = documents(lines, plain_text=all(f.fmt == "txt" for f in list_files(paths)))
        a, b = split_holdout(docs, run.holdout)
        train += a
        held += b
        facts["sources"].append(
            {
                "source": spec,
                "lines": len(lines),
                "wrapped": wrapped,
                "documents": len(docs),
                "held_out": len(b),
                "data_hash": prepared.data_hash,
            }
        )
        facts["cache_hits"] += int(prepared.cache_hit)
    if run.max_train_tokens is not None:
        kept, n = [], 0
        for line in train:
            if n >= run.max_train_tokens:
                break
            kept.append(line)
            n += line.count(" ") + 1
        train = kept
    if not train:
        raise EmptyCorpus("the corpus has no lines to train a language model on")
    return train, held, facts


def _initial_embeddings(
    run: LMRun, registry: Registry, vocab: Vocabulary
) -> tuple[torch.Tensor, dict[str, Any]]:
    vectors, ref, normalize = open_vectors(registry, run.embeddings or "")
    pretrained = word_matrix(vectors, vocab.tokens, ref=ref, normalize=normalize, seed=run.seed)
    return torch.from_numpy(pretrained.matrix), pretrained.describe()


def train_lm(
    run: LMRun,
    *,
    registry: Registry,
    catalog: DataCatalog,
    cache_dir: Path,
    progress: ProgressCallback | None = None,
    limits: CorpusLimits | None = None,
) -> ModelVersion:
    """Prepare the corpus, train with early stopping on validation perplexity, register a new ``lm`` version.

    Raises:
        CorpusError / EmptyCorpus: unreadable input, or nothing to train on.
        ModelNotFound / InvalidInput: ``run.embeddings`` is not a registered word-vector model.
    """
    with torch_threads(run.threads):
        return _train_lm(
            run, registry=registry, catalog=catalog, cache_dir=cache_dir, progress=progress, limits=limits
        )


@dataclass
class Encoded:
    """A corpus as the network reads it: the vocabulary, and every token id with its context (train, held out)."""

    vocab: Vocabulary
    train_ids: IdArray
    train_ctx: np.ndarray[Any, Any]
    val_ids: IdArray
    val_ctx: np.ndarray[Any, Any]


def encode_lines(run: LMRun, train_lines: list[str], held_lines: list[str]) -> Encoded:
    """The vocabulary of ``train_lines`` (``run.max_vocab`` / ``run.min_count``) and the ids in ``run.context``."""
    vocab = Vocabulary.build(train_lines, max_size=run.max_vocab, min_count=run.min_count)
    pad = vocab.index()[lm_kind.PARAGRAPH]
    train_ids, val_ids = vocab.encode(train_lines), vocab.encode(held_lines)
    return Encoded(
        vocab,
        train_ids,
        contexts_of(train_ids, run.context, pad),
        val_ids,
        contexts_of(val_ids, run.context, pad),
    )


@dataclass
class Fit:
    """A trained network (the best epoch's weights) and its per-epoch history."""

    net: lm_kind.NeuralLM
    shape: lm_kind.LMShape
    history: list[dict[str, Any]]
    best_epoch: int
    train_seconds: float
    diverged_at: int | None = None


def diverged(loss: float, vocab_size: int) -> bool:
    """A loss that is not a number, or twice that of guessing uniformly over the vocabulary: the run blew up."""
    return not math.isfinite(loss) or loss > 2 * math.log(max(vocab_size, 2))


def fit_lm(
    run: LMRun,
    data: Encoded,
    *,
    init: torch.Tensor | None = None,
    progress: ProgressCallback | None = None,
) -> Fit:
    """Train a network on ``data`` with early stopping on validation perplexity; stops at the first epoch whose
    loss :func:`diverged` (``Fit.diverged_at``)."""
    report = progress or ignore_progress
    torch.manual_seed(run.seed)
    rng = np.random.default_rng(run.seed)
    vocab, train_ids, train_ctx = data.vocab, data.train_ids, data.train_ctx
    shape = lm_kind.LMShape(
        vocab_size=len(vocab.tokens),
        context=run.context,
        dim=int(init.shape[1]) if init is not None else run.dim,
        hidden=tuple(run.hidden),
        activation=run.activation,
        dropout=run.dropout,
        cutoffs=tuple(lm_kind.frequency_cutoffs(vocab.counts)),
    )
    net = lm_kind.NeuralLM(shape)
    if init is not None:
        with torch.no_grad():
            net.embedding.weight.copy_(init)
        net.embedding.weight.requires_grad_(not run.freeze_embeddings)
    optimizers = build_optimizers(net, run)
    dense = [p for name, p in net.named_parameters() if not name.startswith("embedding.")]
    n = len(train_ids)
    batches = math.ceil(n / run.batch_size)
    report(
        Progress(
            stage="train",
            fraction=0.0,
            epoch=0,
            message=f"{n:,} tokens, vocabulary {len(vocab.tokens):,}",
            extra={"epochs": run.epochs},
            done=0,
            total=run.epochs * batches,
            unit="batch",
        )
    )
    last_report = time.perf_counter()
    history: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] | None = None
    stale = 0
    train_seconds = 0.0
    diverged_at: int | None = None
    for epoch in range(1, run.epochs + 1):
        if epoch > 1 and run.max_tokens_trained is not None and epoch * n > run.max_tokens_trained:
            break  # the token budget: a large corpus gets fewer epochs, a small one all of them
        net.train()
        t0 = time.perf_counter()
        order = rng.permutation(n)
        total = 0.0
        seen = 0
        for b in range(batches):
            rows = order[b * run.batch_size : (b + 1) * run.batch_size]
            ctx = torch.from_numpy(train_ctx[rows])
            tgt = torch.from_numpy(train_ids[rows])
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            loss = net(ctx, tgt)
            value = float(loss.detach())
            total += value * len(rows)
            seen += len(rows)
            if not math.isfinite(value):  # every later step would be NaN too
                break
            loss.backward()
            nn.utils.clip_grad_norm_(dense, 5.0)  # the embedding's gradients are sparse rows
            for opt in optimizers:
                opt.step()
            if time.perf_counter() - last_report >= IN_EPOCH_REPORT_S:  # an epoch can take minutes
                last_report = time.perf_counter()
                done = (epoch - 1) * batches + b + 1
                report(
                    Progress(
                        stage="train",
                        fraction=done / (run.epochs * batches),
                        epoch=epoch,
                        loss=total / seen,
                        extra={"epochs": run.epochs},
                        done=done,
                        total=run.epochs * batches,
                        unit="batch",
                    )
                )
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        train_loss = total / max(seen, 1)
        val_loss = mean_nll(net, data.val_ctx, data.val_ids)
        row = {
            "epoch": epoch,
            "train_loss": round(train_loss, 5) if math.isfinite(train_loss) else None,
            "val_loss": round(val_loss, 5) if math.isfinite(val_loss) else None,
            "train_perplexity": perplexity(train_loss),
            "val_perplexity": perplexity(val_loss),
            "seconds": round(seconds, 3),
            "tokens_per_second": round(n / seconds) if seconds > 0 else None,
        }
        history.append(row)
        report(
            Progress(
                stage="train",
                fraction=epoch / run.epochs,
                epoch=epoch,
                loss=train_loss,
                message=f"epoch {epoch}/{run.epochs}: validation perplexity {row['val_perplexity']}",
                extra={"epochs": run.epochs, "val_perplexity": row["val_perplexity"]},
                done=epoch * batches,
                total=run.epochs * batches,
                unit="batch",
            )
        )
        if diverged(train_loss, len(vocab.tokens)) or (len(data.val_ids) and not math.isfinite(val_loss)):
            diverged_at = epoch
            break
        score = val_loss if math.isfinite(val_loss) else train_loss
        if best is None or score < best[0]:
            best = (score, epoch, {k: v.detach().clone() for k, v in net.state_dict().items()})
            stale = 0
        else:
            stale += 1
            if run.patience and stale >= run.patience:  # 0 or None: no early stop
                break
    if best is not None:
        net.load_state_dict(best[2])
    net.eval()
    return Fit(net, shape, history, best[1] if best else 0, train_seconds, diverged_at)


#: the network's weight where no held-out token is left to fit it on (a corpus of very few documents)
UNFITTED_WEIGHT = 0.5


def fit_mixture(
    run: LMRun, data: Encoded, net: lm_kind.NeuralLM, report: ProgressCallback
) -> tuple[NGramModel | None, float, dict[str, Any]]:
    """The n-gram component (order ``run.ngram_order``) counted on the training tokens, and the
    network's weight λ in the mixture, the one with the lowest held-out perplexity (as early stopping picks the
    epoch). (None, 1.0, {}) with ``run.ngram == 0``."""
    order = run.ngram_order
    if order < 1:
        return None, 1.0, {}
    report(
        Progress(
            stage="ngram", message=f"counting the n-grams of {len(data.train_ids):,} tokens (order {order})"
        )
    )
    started = time.perf_counter()
    pad = data.vocab.index()[lm_kind.PARAGRAPH]
    ngram = estimate(data.train_ids, order=order, vocab_size=len(data.vocab.tokens), pad=pad)
    facts: dict[str, Any] = {"order": order, "entries": ngram.entries}
    if len(data.val_ids):
        mine = token_log_probs(net, data.val_ctx, data.val_ids)
        theirs = ngram.log_probs(data.val_ctx, data.val_ids)
        weight = best_weight(mine, theirs)
        facts |= {
            "network_weight": weight,
            "weight_fitted_on": "held_out",
            "val_perplexity_ngram": round(perplexity_of(theirs), 3),
            "val_perplexity": round(perplexity_of(mixture_log_probs(mine, theirs, weight)), 3),
        }
    else:
        weight = UNFITTED_WEIGHT
        facts |= {"network_weight": weight, "weight_fitted_on": None}
    facts["seconds"] = round(time.perf_counter() - started, 3)
    log.info("n-gram component: %s", facts)
    return ngram, weight, facts


def _train_lm(
    run: LMRun,
    *,
    registry: Registry,
    catalog: DataCatalog,
    cache_dir: Path,
    progress: ProgressCallback | None = None,
    limits: CorpusLimits | None = None,
) -> ModelVersion:
    report = progress or ignore_progress
    registry.check_kind(run.name, lm_kind.KIND)  # before the work: the name may hold another kind of model
    started = time.perf_counter()
    train_lines, held_lines, corpus_facts = load_lines(
        run, catalog=catalog, cache_dir=cache_dir, report=report, limits=limits
    )
    data = encode_lines(run, train_lines, held_lines)
    vocab, val_ids = data.vocab, data.val_ids
    init: torch.Tensor | None = None
    pretrained_facts: dict[str, Any] | None = None
    if run.embeddings:
        init, pretrained_facts = _initial_embeddings(run, registry, vocab)
    fit = fit_lm(run, data, init=init, progress=report)
    net, history, shape = fit.net, fit.history, fit.shape
    if fit.diverged_at is not None or not fit.best_epoch:
        last = history[-1] if history else {}
        raise InvalidInput(
            f"training diverged at epoch {fit.diverged_at} (train loss {last.get('train_loss')}) with "
            f"{run.optimizer} at lr {run.lr:g}; try a smaller --lr",
            history=history,
        )
    best_row = history[fit.best_epoch - 1]
    ngram, network_weight, mixture_facts = fit_mixture(run, data, net, report)
    n = len(data.train_ids)
    index = vocab.index()
    train_seconds = fit.train_seconds
    report(Progress(stage="save", message=f"registering {run.name}"))
    training = {
        "tokens": n,
        "held_out_tokens": len(val_ids),
        "vocabulary": len(vocab.tokens),
        "oov_rate_held_out": round(float(np.mean(val_ids == index[lm_kind.UNK])), 5)
        if len(val_ids)
        else None,
        "best_epoch": fit.best_epoch,
        "epochs_run": len(history),
        "stopped_early": len(history) < run.epochs,
        # the model's: the network mixed with its n-gram (the network's alone where there is none)
        "val_perplexity": mixture_facts.get("val_perplexity", best_row["val_perplexity"]),
        "val_perplexity_network": best_row["val_perplexity"],
        "ngram": mixture_facts or None,
        "train_seconds": round(train_seconds, 3),
        "parameters": net.parameters_count(),
        "pretrained": pretrained_facts,
    }
    with registry.create(run.name, lm_kind.KIND) as writer:
        lm_kind.save(
            writer,
            net,
            vocab.tokens,
            preprocessing={
                "normalize": run.normalize.model_dump(mode="json"),
                "boundaries": "sentence+paragraph",
            },
            training={"run": run.model_dump(mode="json"), "shape": asdict(shape)},
            ngram=ngram,
            network_weight=network_weight,
        )
        plot_history(
            history, writer.file(HISTORY_PNG), title=f"{run.name}: context {run.context}, {run.activation}"
        )
        writer.metadata.update(
            corpus=corpus_facts,
            training={
                **training,
                "total_seconds": round(time.perf_counter() - started, 3),
                "history": history,
            },
            metrics={"val_perplexity": training["val_perplexity"]},
        )
    version: ModelVersion = writer.version  # type: ignore[attr-defined]
    log.info("registered %s in %.1f s", version.ref, time.perf_counter() - started)
    return version
