"""Trials of the trained encoder's settings on ASSIN 2 (benchmarks/results/text.md, 2026-12-03).

The pooled features of every train and dev sentence are computed once (cached under ``PALAVRA_HOME/cache``), then each trial
trains towers in process, as pipelines/text_encoder/train.py did before that day (one network, cosine MSE), with
knobs for the variants tried: standardised input, a linear skip path, max / plain-mean pooling beside SIF, CoSENT
or Pearson losses, entailment as a second task, learning rate, and seed ensembles. Training pairs: assin2-train
minus the pairs it shares with assin2-dev; validation: ``split_by_sentence`` of them (10%, seeded like the
library); dev is scored at the epoch of the lowest validation loss.

    PALAVRA_HOME=... PALAVRA_DATA_MIRROR=../shared/data .venv/bin/python benchmarks/encoder_trials.py pt \
        '{}' '{"standardize": true, "skip": "linear", "lr": 3e-4}'

Each JSON argument is one trial over its ``seeds`` (default 7, 8, 9); one JSON line per seed on stderr, one
summary line per trial on stdout (validation and dev Pearson means, dev spread, best epochs, and the dev Pearson
of the seeds' mean cosine). ``"ensemble": k`` trains k towers per seed on the same split and scores their mean
cosine, as the library's ``members`` does.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from models.errors import InvalidInput
from models.text_encoder import common_components
from pipelines.text_encoder.build import pooling_model
from pipelines.text_encoder.evaluate import correlations, gold_range
from pipelines.text_encoder.pairs import read_pairs, without
from pipelines.text_encoder.train import split_by_sentence
from services.factories import open_catalog, open_registry
from services.settings import get_settings

LABELS = {"None": 0, "Entailment": 1, "Paraphrase": 2}


def prepare(words: str):
    settings = get_settings()
    cache = settings.home / "cache" / f"encoder-trials-{words}.npz"
    cat = open_catalog(settings)
    train = read_pairs(cat.resolve("assin2-train")[0])
    dev = read_pairs(cat.resolve("assin2-dev")[0])
    train, _ = without(train, dev)
    sentences = sorted({s for p in train + dev for s in (p.sentence1, p.sentence2)})
    if cache.exists():
        z = np.load(cache)
        feats = {k: z[k] for k in z.files}
    else:
        reg = open_registry(settings)
        model, _ = pooling_model(reg, words, pooling="sif", components=0)
        vec = model.embeddings.word_vectors
        toks = model.tokens(sentences)
        sif = model.pooled_tokens(toks)
        d = vec.dim
        mx = np.zeros((len(sentences), d), np.float32)
        mn = np.zeros((len(sentences), d), np.float32)
        for i, ts in enumerate(toks):
            rows = []
            for t in ts:
                r = vec.index.get(t)
                if r is not None:
                    rows.append(np.asarray(vec.vectors[r], np.float32))
                elif vec.has_subwords:
                    with contextlib.suppress(InvalidInput):  # no n-gram of it is known either
                        rows.append(np.asarray(vec.vector(t), np.float32))
            if rows:
                m = np.stack(rows)
                mx[i] = m.max(0)
                mn[i] = m.mean(0)
        feats = {"sif": sif, "max": mx, "mean": mn}
        np.savez(cache, **feats)
    index = {s: i for i, s in enumerate(sentences)}
    return train, dev, index, feats


class Tower(nn.Module):
    def __init__(self, dim, cfg):
        super().__init__()
        layers = []
        width = dim
        act = {"leaky_relu": nn.LeakyReLU, "relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}[cfg["act"]]
        for h in cfg["hidden"]:
            layers += [nn.Linear(width, h), act(), nn.Dropout(cfg["dropout"])]
            width = h
        layers.append(nn.Linear(width, cfg["out_dim"]))
        self.mlp = nn.Sequential(*layers)
        self.skip = nn.Linear(dim, cfg["out_dim"], bias=False) if cfg["skip"] == "linear" else None

    def forward(self, x):
        y = self.mlp(x)
        if self.skip is not None:
            y = y + self.skip(x)
        return y


def cosent(cos, y, scale):
    # log(1 + sum over pairs (i, j) with y_i > y_j of exp(scale * (cos_j - cos_i)))
    diff = scale * (cos[None, :] - cos[:, None])  # [i, j] = cos_j - cos_i
    mask = y[:, None] > y[None, :]
    diff = diff[mask]
    return torch.logsumexp(torch.cat([torch.zeros(1), diff]), dim=0)


def pearson_loss(cos, y):
    c = cos - cos.mean()
    t = y - y.mean()
    return 1 - (c * t).sum() / (c.norm() * t.norm() + 1e-8)


def run(train_all, dev, index, feats, cfg, seed, split_seed=None):
    torch.manual_seed(seed)
    np.random.seed(seed)
    torch.set_num_threads(1)
    tr, va = split_by_sentence(train_all, 0.1, seed if split_seed is None else split_seed)
    if cfg.get("final_fit"):
        tr = list(train_all)
    low, high = gold_range(tr)
    sif = feats["sif"].copy()
    tr_ids = np.array([index[s] for p in tr for s in (p.sentence1, p.sentence2)])
    comp = common_components(sif[tr_ids], 1) if cfg["components"] else None
    if comp is not None and len(comp):
        sif = sif - (sif @ comp.T) @ comp
    parts = [sif]
    for name in cfg["features"].split("+")[1:]:
        parts.append(feats[name])
    X = np.concatenate(parts, axis=1).astype(np.float32)
    if cfg["standardize"]:
        mu = X[tr_ids].mean(0)
        sd = X[tr_ids].std(0) + 1e-6
        X = (X - mu) / sd
    X = torch.from_numpy(X)

    def tensors(pairs):
        a = torch.tensor([index[p.sentence1] for p in pairs])
        b = torch.tensor([index[p.sentence2] for p in pairs])
        y = torch.tensor([(p.score - low) / (high - low) for p in pairs], dtype=torch.float32)
        lab = torch.tensor([LABELS.get(p.entailment or "None", 0) for p in pairs])
        return a, b, y, lab

    ta, tb, ty, tl = tensors(tr)
    va_, vb_, vy, _ = tensors(va)
    da, db, dy, _ = tensors(dev)
    tower = Tower(X.shape[1], cfg)
    head = nn.Linear(4 * cfg["out_dim"], 3) if cfg["nli"] else None
    params = list(tower.parameters()) + (list(head.parameters()) if head else [])
    opt = torch.optim.Adam(params, lr=cfg["lr"], weight_decay=cfg["wd"])
    if cfg["opt"] == "adamw":
        opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["wd"])
    gen = torch.Generator().manual_seed(seed)

    def cos(a, b):
        return nn.functional.cosine_similarity(tower(X[a]), tower(X[b]), dim=1)

    best = None
    best_p = None
    hist = []
    t0 = time.time()
    for epoch in range(1, cfg["epochs"] + 1):
        tower.train()
        perm = torch.randperm(len(ty), generator=gen)
        for s in range(0, len(perm), cfg["batch"]):
            idx = perm[s : s + cfg["batch"]]
            if cfg["swap"]:
                flip = torch.rand(len(idx), generator=gen) < 0.5
                a = torch.where(flip, tb[idx], ta[idx])
                b = torch.where(flip, ta[idx], tb[idx])
            else:
                a, b = ta[idx], tb[idx]
            ua, ub = tower(X[a]), tower(X[b])
            c = nn.functional.cosine_similarity(ua, ub, dim=1)
            y = ty[idx]
            if cfg["loss"] == "mse":
                loss = nn.functional.mse_loss(c, y)
            elif cfg["loss"] == "mse2":  # cosine mapped to [-1,1] target
                loss = nn.functional.mse_loss(c, 2 * y - 1)
            elif cfg["loss"] == "cosent":
                loss = cosent(c, y, cfg["scale"])
            elif cfg["loss"] == "mix":
                loss = nn.functional.mse_loss(c, y) + cfg["mix"] * cosent(c, y, cfg["scale"])
            elif cfg["loss"] == "pearson":
                loss = pearson_loss(c, y)
            elif cfg["loss"] == "mse+pearson":
                loss = nn.functional.mse_loss(c, y) + cfg["mix"] * pearson_loss(c, y)
            else:
                raise ValueError(cfg["loss"])
            if head is not None:
                logits = head(torch.cat([ua, ub, (ua - ub).abs(), ua * ub], dim=1))
                loss = loss + cfg["nli"] * nn.functional.cross_entropy(logits, tl[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        tower.eval()
        with torch.no_grad():
            vc = cos(va_, vb_)
            if cfg["loss"] in ("mse", "mix", "mse+pearson"):
                vloss = float(nn.functional.mse_loss(vc, vy))
            elif cfg["loss"] == "mse2":
                vloss = float(nn.functional.mse_loss(vc, 2 * vy - 1))
            elif cfg["loss"] == "cosent":
                vloss = float(cosent(vc, vy, cfg["scale"]))
            else:
                vloss = float(pearson_loss(vc, vy))
            vp = correlations(vc.tolist(), vy.tolist())["pearson"]
            dcos = cos(da, db)
            dpe = correlations(dcos.tolist(), dy.tolist())["pearson"]
        hist.append(vp)
        if best_p is None or vp > best_p[0]:
            best_p = (vp, epoch, dpe)
        key = -vp if cfg["select"] == "pearson" else vloss
        if cfg.get("final_fit"):
            if epoch >= cfg["final_fit"]:
                best = (key, epoch, {k: v.clone() for k, v in tower.state_dict().items()}, vp)
                break
            continue
        if best is None or key < best[0]:
            best = (key, epoch, {k: v.clone() for k, v in tower.state_dict().items()}, vp)
        elif epoch - best[1] >= cfg["patience"]:
            break
    tower.load_state_dict(best[2])
    tower.eval()
    with torch.no_grad():
        dc = cos(da, db)
        out_dev = tower(X[da]), tower(X[db])
        out_val = tower(X[va_]), tower(X[vb_])
    r = correlations(dc.tolist(), dy.tolist())
    return {
        "val": best[3],
        "epoch": best[1],
        "ran": len(hist),
        "dev_p": r["pearson"],
        "dev_s": r["spearman"],
        "secs": time.time() - t0,
        "dev_out": out_dev,
        "val_out": out_val,
        "val_y": vy,
        "val_pairs": len(va),
        "bp_val": best_p[0],
        "bp_epoch": best_p[1],
        "bp_dev": best_p[2],
        "dev_cos": dc.tolist(),
    }


DEFAULT = {
    "features": "sif",
    "standardize": False,
    "components": 1,
    "hidden": [1024, 512],
    "out_dim": 256,
    "act": "leaky_relu",
    "dropout": 0.1,
    "lr": 1e-3,
    "wd": 0.0,
    "opt": "adam",
    "epochs": 100,
    "batch": 64,
    "patience": 12,
    "loss": "mse",
    "scale": 20.0,
    "mix": 0.1,
    "nli": 0.0,
    "skip": "none",
    "select": "loss",
    "swap": False,
    "seeds": [7, 8, 9],
    "ensemble": 1,
}


def main():
    words = sys.argv[1]
    train, dev, index, feats = prepare(words)
    for spec in sys.argv[2:]:
        cfg = {**DEFAULT, **json.loads(spec)}
        rows = []
        dev_cos = []
        for seed in cfg["seeds"]:
            if cfg["ensemble"] > 1:
                outs, vals = [], []
                for k in range(cfg["ensemble"]):
                    r = run(train, dev, index, feats, cfg, seed * 100 + k, split_seed=seed)
                    outs.append(r["dev_out"])
                    vals.append(r["val_out"])
                    vy = r["val_y"]
                va_ = torch.cat([nn.functional.normalize(o[0], dim=1) for o in vals], 1)
                vb_ = torch.cat([nn.functional.normalize(o[1], dim=1) for o in vals], 1)
                vcr = correlations(nn.functional.cosine_similarity(va_, vb_, dim=1).tolist(), vy.tolist())
                ca = torch.cat([nn.functional.normalize(o[0], dim=1) for o in outs], 1)
                cb = torch.cat([nn.functional.normalize(o[1], dim=1) for o in outs], 1)
                c = nn.functional.cosine_similarity(ca, cb, dim=1)
                dy = [p.score for p in dev]
                cr = correlations(c.tolist(), dy)
                r = {
                    "val": vcr["pearson"],
                    "epoch": 0,
                    "ran": 0,
                    "dev_p": cr["pearson"],
                    "dev_s": cr["spearman"],
                    "secs": 0.0,
                }
            else:
                r = run(train, dev, index, feats, cfg, seed)
            dev_cos.append(r.pop("dev_cos", None))
            for k in ("dev_out", "val_out", "val_y"):
                r.pop(k, None)
            rows.append(r)
            print(
                json.dumps(
                    {"seed": seed, **{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}}
                ),
                file=sys.stderr,
                flush=True,
            )
        v = np.array([r["val"] for r in rows])
        dp = np.array([r["dev_p"] for r in rows])
        ds = np.array([r["dev_s"] for r in rows])
        ens = None
        if all(c is not None for c in dev_cos) and len(dev_cos) > 1:
            m = np.mean(np.array(dev_cos), axis=0)
            ens = round(correlations(m.tolist(), [p.score for p in dev])["pearson"], 4)
        bpv = [r.get("bp_val") for r in rows if r.get("bp_val") is not None]
        bpd = [r.get("bp_dev") for r in rows if r.get("bp_dev") is not None]
        print(
            json.dumps(
                {
                    "cfg": json.loads(spec),
                    "ens_meancos_dev": ens,
                    "bp_val": round(float(np.mean(bpv)), 4) if bpv else None,
                    "bp_dev": round(float(np.mean(bpd)), 4) if bpd else None,
                    "val": round(float(v.mean()), 4),
                    "dev_p": round(float(dp.mean()), 4),
                    "dev_p_spread": round(float(dp.max() - dp.min()), 4),
                    "dev_s": round(float(ds.mean()), 4),
                    "epochs": [r["epoch"] for r in rows],
                    "secs": round(float(np.mean([r["secs"] for r in rows])), 1),
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
