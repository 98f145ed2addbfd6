"""Regenerate pipelines/reading/catalogue.json from a data mirror laid out as ../shared/data (see its README).

Usage: .venv/bin/python scripts/build_catalogue.py /path/to/mirror

The pinned upstream commits and paths below come from the mirror's README; sha256 is recorded only where the
mirror's bytes are the upstream bytes (or the bytes of an upstream zip member).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

MACHADO = ("luxedo", "dataset-machado-de-assis", "a13ca4a72f268f46db64804a67930d4c0f6db8e7")
ELTEC = ("COST-ELTeC", "ELTeC-por", "8886868916311001a8a8dd99aa6f18f6a2c68408")
PTWIKI = ("dfalbel", "ptwikiwords", "f755772f4ec37107de9972e2df076ea56827bcae")
TOLD = ("JAugusto97", "ToLD-Br", "7804082d06a42b791c456b37a8a80ed9b731198c")
B2W = ("alan-barzilay", "NLPortugues", "3aadea4ce8b688501428ec09a35e2edac86bd23f")
ANALOGIES = ("nathanshartmann", "portuguese_word_embeddings", "fe9c40991f14f9b27b0533b2f188d6bf4a8ba074")
SIMLEX = ("nlx-group", "LX-DSemVectors", "8456a4e47a8dc506c031be60e038b0d6ff33a8aa")
ASSIN = ("ruanchaves", "assin", "f8ed74afb10dbc9e588e66c764ca66b002a50fc5")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


RAW = "https://raw.githubusercontent.com"


def upstream(repo: tuple[str, str, str], path: str) -> str:
    """The raw-content URL of ``path`` at the pinned commit."""
    return f"{RAW}/{repo[0]}/{repo[1]}/{repo[2]}/{quote(path)}"


def entry(
    name: str, kind: str, description: str, licence: str, files: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "kind": kind,
        "description": description,
        "license": licence,
        "files": files,
        **extra,
    }


def build(mirror: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    machado = sorted((mirror / "corpus" / "machado-de-assis").rglob("*.txt"))
    out.append(
        entry(
            "corpus-machado",
            "corpus",
            "116 works of Machado de Assis (~1.9M tokens); lines break mid-sentence",
            "public domain",
            [
                {
                    "mirror": p.relative_to(mirror).as_posix(),
                    "url": upstream(
                        MACHADO, "txt/" + p.relative_to(mirror / "corpus" / "machado-de-assis").as_posix()
                    ),
                    "sha256": sha256(p),
                }
                for p in machado
            ],
        )
    )
    eltec = sorted((mirror / "corpus" / "eltec-por").glob("POR*.txt"))
    out.append(
        entry(
            "corpus-eltec",
            "corpus",
            "100 Portuguese novels 1840-1920, ELTeC-por level 1 (~6.7M tokens)",
            "texts public domain, markup CC BY 4.0",
            [
                {
                    "mirror": p.relative_to(mirror).as_posix(),
                    "url": upstream(ELTEC, f"level1/{p.stem}.xml"),
                    "convert": "eltec-tei",
                }
                for p in eltec
            ],
        )
    )
    out.append(
        entry(
            "corpus-ptwiki",
            "corpus",
            "26,916 random pt.wikipedia articles from 2016 (~6.6M tokens), JSON lines",
            "CC BY-SA 3.0",
            [{"mirror": "corpus/ptwiki-random-2016/ptwiki_random_2016.jsonl"}],
            text_field="text",
            mirror_only="converted from 26,916 saved HTML pages of dfalbel/ptwikiwords@f755772 (data-raw/wikipages/)",
        )
    )
    out.append(
        entry(
            "corpus-all",
            "corpus",
            "corpus-machado + corpus-eltec + corpus-ptwiki (~15M tokens)",
            "see the parts",
            [],
            parts=["corpus-machado", "corpus-eltec", "corpus-ptwiki"],
        )
    )
    for n in (1, 2, 3):
        for split in ("train", "validation"):
            rel = f"classification/told-br/{split}_{n}annotator.csv"
            out.append(
                entry(
                    f"told-br-{n}annotator-{split}",
                    "classification",
                    f"ToLD-Br toxic tweets, {split} split; toxic=1 when >= {n} of 3 annotators flagged it",
                    "CC BY-SA 4.0",
                    [
                        {
                            "mirror": rel,
                            "url": upstream(TOLD, f"experiments/data/{n}annotator.zip"),
                            "member": f"ptbr_{split}_{n}annotator.csv",
                            "sha256": sha256(mirror / rel),
                        }
                    ],
                    text_field="text",
                    label_field="toxic",
                    label_names={"toxic": {"0": "nao_toxico", "1": "toxico"}},
                )
            )
    rel = "classification/b2w-10k/b2w-10k.csv"
    out.append(
        entry(
            "b2w-10k",
            "classification",
            "9,999 B2W product reviews: review_text, overall_rating 1-5, recommend_to_a_friend",
            "CC BY-NC-SA 4.0 (non-commercial)",
            [
                {
                    "mirror": rel,
                    "url": upstream(B2W, "Semana 03/data/b2w-10k.csv"),
                    "sha256": sha256(mirror / rel),
                }
            ],
            text_field="review_text",
            label_field="overall_rating",
        )
    )
    out.append(
        entry(
            "analogies-lx-br-dev",
            "analogies",
            "fixed 30% sample of LX-4WAnalogiesBr (questions-words format)",
            "GPL-3.0",
            [{"mirror": "analogies/LX-4WAnalogiesBr-dev.txt"}],
            mirror_only="a fixed 30% sample of LX-4WAnalogiesBr; use analogies-lx-br (the full set) without a mirror",
        )
    )
    out.append(
        entry(
            "analogies-lx-br",
            "analogies",
            "LX-4WAnalogiesBr, all questions (Hartmann et al. 2017)",
            "GPL-3.0",
            [
                {
                    "mirror": "analogies/LX-4WAnalogiesBr.txt",
                    "url": upstream(ANALOGIES, "analogies/testset/LX-4WAnalogiesBr.txt"),
                }
            ],
        )
    )
    rel = "similarity/LX-SimLex-999.txt"
    out.append(
        entry(
            "simlex-lx-999",
            "similarity",
            "LX-SimLex-999 word pairs with similarity 0-10 (TSV)",
            "see upstream",
            [
                {
                    "mirror": rel,
                    "url": upstream(SIMLEX, "testsets/LX-SimLex-999.txt"),
                    "sha256": sha256(mirror / rel),
                }
            ],
        )
    )
    for split, upstream_file, count in (
        ("train", "assin2-train-only.xml", "6,500"),
        ("dev", "assin2-dev.xml", "500"),
    ):
        rel = f"sentences/assin2/{upstream_file}"
        out.append(
            entry(
                f"assin2-{split}",
                "sentence-pairs",
                f"ASSIN 2 {split} split: {count} pt-BR sentence pairs with similarity 1-5 and entailment (XML)",
                "see upstream",
                [
                    {
                        "mirror": rel,
                        "url": upstream(ASSIN, f"sources/{upstream_file}"),
                        "sha256": sha256(mirror / rel),
                    }
                ],
            )
        )
    return out


if __name__ == "__main__":
    mirror = Path(sys.argv[1]).resolve()
    target = Path(__file__).resolve().parent.parent / "pipelines" / "reading" / "catalogue.json"
    target.write_text(json.dumps(build(mirror), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    sys.stdout.write(f"wrote {target}\n")
