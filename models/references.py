"""Model references: the rules for names, versions and aliases, and the one rule for what a bare name means.

``name``, ``name@3`` or ``name@alias``; a bare name means its ``production`` alias (:func:`bare_version`), which the
registry sets on a name's first version and only a person moves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum

from models.errors import InvalidInput, ModelNotFound

# matched with fullmatch (``$`` alone would also accept a trailing newline)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
NAME_RULE = "use letters, digits, '_', '-' or '.', starting with a letter or digit, at most 64 characters"
ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
# NAME, NAME@VERSION or NAME@ALIAS, as the API schema documents it (parse_ref also checks the version's range)
REF_RE = re.compile(rf"^{NAME_RE.pattern[1:-1]}(@([0-9]{{1,10}}|{ALIAS_RE.pattern[1:-1]}))?$")
RESERVED_ALIASES = ("latest",)  # kept by the registry; compared without regard to case
MAX_VERSION = 2**31 - 1  # an INTEGER column on every database
_VERSION_RE = re.compile(r"[0-9]{1,10}")


class Kind(StrEnum):
    """Every kind of artifact, named once; the module that owns a kind's files takes the kind's name from here."""

    WORD2VEC = "word2vec"
    FASTTEXT = "fasttext"
    CLASSIFIER = "classifier"
    ENCODER = "encoder"
    LM = "lm"


KINDS: tuple[str, ...] = tuple(kind.value for kind in Kind)
# the two word-vector kinds: one artifact layout and one served model (models/vectors.py), two training algorithms
VECTOR_KINDS: tuple[str, ...] = (Kind.WORD2VEC.value, Kind.FASTTEXT.value)
PRODUCTION = "production"


def family(kind: str) -> str:
    """What a name holds: ``word vectors`` for both vector kinds, else the kind. A name's versions share one
    family, so a bare name always answers the same routes (word2vec and fasttext versions may alternate)."""
    return "word vectors" if kind in VECTOR_KINDS else kind


# the command that trains each kind, named by errors that find none registered
_TRAIN_COMMANDS = {
    Kind.WORD2VEC.value: "palavra train word2vec",
    Kind.FASTTEXT.value: "palavra train word2vec",
    Kind.CLASSIFIER.value: "palavra train classifier",
    Kind.ENCODER.value: "palavra train encoder",
    Kind.LM.value: "palavra train lm",
}


def none_registered(*kinds: str) -> str:
    """``no lm model is registered yet; train one first (`palavra train lm`)``."""
    commands = dict.fromkeys(_TRAIN_COMMANDS.get(kind, "palavra train --help") for kind in kinds)
    return f"no {' or '.join(kinds)} model is registered yet; train one first (`{'` or `'.join(commands)}`)"


def a_kind(*kinds: str) -> str:
    """``"a word2vec or fasttext"``, ``"an encoder"``, ``"an lm"``: kind names with the article they take."""
    first = kinds[0]
    article = "an" if first[0] in "aeiou" or first == Kind.LM.value else "a"
    return f"{article} {' or '.join(kinds)}"


def check_name(name: str, *, ref: str | None = None) -> str:
    """``name`` when it is a valid model name, else InvalidInput saying what a name may hold."""
    if not NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"invalid model name {name!r}: {NAME_RULE}",
            model=ref if ref is not None else name,
        )
    return name


def check_alias(alias: str) -> str:
    """``alias`` when a new alias may be called so, else InvalidInput saying why: the alias rule, ``latest`` (kept by
    the registry, in any case) and any other case of ``production`` (which a bare name would not mean)."""
    if not ALIAS_RE.fullmatch(alias):
        raise InvalidInput(f"invalid alias {alias!r}: start with a letter; letters, digits, '_' or '-'")
    if alias.casefold() in RESERVED_ALIASES:
        raise InvalidInput(
            f"the alias {alias!r} is kept by the registry ('latest' is always the newest version, in any "
            "case); use another"
        )
    if alias.casefold() == PRODUCTION and alias != PRODUCTION:
        raise InvalidInput(
            f"the alias {alias!r} would be a second {PRODUCTION!r}, which a bare name does not mean; aliases "
            f"are case-sensitive: use {PRODUCTION!r}"
        )
    return alias


def version_number(selector: str) -> int | None:
    """The version a reference's selector names (``3`` in ``name@3``), or None for an alias."""
    if not _VERSION_RE.fullmatch(selector):
        return None
    return int(selector)


def parse_ref(ref: str) -> tuple[str, str | None]:
    """Split ``name``, ``name@3`` or ``name@alias`` into its name and selector."""
    name, at, selector = ref.partition("@")
    check_name(name, ref=ref)
    version = version_number(selector)
    if version is None and selector.isascii() and selector.isdigit():  # more digits than any version has
        raise InvalidInput(
            f"invalid model reference {ref[:100]!r}: versions run from 1 to {MAX_VERSION}", model=ref
        )
    if at and not (version is not None or ALIAS_RE.fullmatch(selector)):
        raise InvalidInput(
            f"invalid model reference {ref!r}: after '@' give a version number or an alias such as production",
            model=ref,
        )
    if version is not None and not 1 <= version <= MAX_VERSION:
        raise InvalidInput(
            f"invalid model reference {ref!r}: versions run from 1 to {MAX_VERSION}", model=ref
        )
    return name, (selector or None)


def bare_version(name: str, aliases: Mapping[tuple[str, str], int]) -> int | None:
    """The version a bare model name means: its ``production`` alias, never the newest version.

    The registry points ``production`` at a name's first version and only a person moves it afterwards, so what a
    bare name answers never changes because something new was registered. ``aliases`` maps ``(name, alias)``.
    """
    return aliases.get((name, PRODUCTION))


def bare_missing(name: str) -> ModelNotFound:
    """The error for a registered name without a ``production`` alias (it was removed from the database by hand)."""
    return ModelNotFound(
        f"model {name!r} has no {PRODUCTION} alias, so a bare {name!r} means nothing; name a version "
        f"({name}@1) or point the alias at one (`palavra models alias {name} {PRODUCTION} 1`)",
        model=name,
    )
