"""The structures declared at run time (structure templates) as vocabulary: their names, parameters and reading.

The built-in structure words are rows of data/terms.csv (`structure,<value>`). A template adds a structure to the
desk without code (pricing_engine/templates); `DECLARED.declare(...)` adds its `names` (Chinese names and aliases) to
the parser's vocabulary as `structure` terms of that value, and its parameters to the conventions of `finish_request`.
The parser reads the table on every message (`MessageParser.vocab`): a template declared while the service runs is
understood by the next message, no restart. Declared names are tried before the built-in words, longest first, so
"限亏雪球" is the declared structure although it contains 雪球.

How a declared structure's terms are read (`reading`): like the built-in structure whose terms its parameters name —
KO and KI levels (a bare pair "103/75") like a snowball, a lower and an upper barrier like a double sharkfin, one
barrier like a sharkfin, a KI level alone like an airbag; otherwise like a vanilla. Only the declared parameters are
kept from what the message says; the others take their defaults (listed in `assumed`), required ones with no value
are `missing`.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Mapping

from .vocabulary import Term, word_key as name_key

# (parameters, built-in reading), first match wins
READINGS = ((("ko_pct", "ki_pct"), "snowball"), (("barrier_pct", "lower_barrier_pct"), "double_sharkfin"),
            (("barrier_pct",), "sharkfin"), (("ki_pct",), "airbag"))


@dataclass(frozen=True)
class DeclaredStructure:
    """One declared structure as the parser knows it."""

    structure: str
    names: tuple[str, ...]
    params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    version: int | None = None

    @property
    def reading(self) -> str | None:
        for needed, reading in READINGS:
            if all(p in self.params for p in needed):
                return reading
        return None


class StructureTable:
    """The declared structures of this process; `version` changes with every declaration or withdrawal."""

    def __init__(self):
        self._entries: dict[str, DeclaredStructure] = {}
        self._lock = threading.Lock()
        self.version = 0

    def declare(self, entry: DeclaredStructure) -> None:
        """Add or replace the structure `entry.structure` (a new version replaces the names of the old one)."""
        with self._lock:
            self._entries = {**self._entries, entry.structure: entry}
            self.version += 1

    def withdraw(self, structure: str) -> None:
        with self._lock:
            if structure in self._entries:
                self._entries = {k: v for k, v in self._entries.items() if k != structure}
                self.version += 1

    def get(self, structure: str | None) -> DeclaredStructure | None:
        return self._entries.get(structure) if structure else None

    def entries(self) -> list[DeclaredStructure]:
        return list(self._entries.values())

    def terms(self) -> list[Term]:
        """The declared names as vocabulary rows (`structure`, lexicon: jieba and the corrector know them too)."""
        return [Term(n, "structure", e.structure, "lexicon") for e in self.entries() for n in e.names]

    def owners(self) -> dict[str, str]:
        """{name key: structure} of every declared name."""
        return {name_key(n): e.structure for e in self.entries() for n in e.names}


DECLARED = StructureTable()


def reading_of(structure: str | None) -> str | None:
    """The built-in structure whose conventions read `structure`'s terms (itself when it is not declared)."""
    entry = DECLARED.get(structure)
    return entry.reading if entry is not None else structure


def display_name(structure: str) -> str | None:
    """The first name of a declared structure (what the desk calls it to clients), or None."""
    entry = DECLARED.get(structure)
    return entry.names[0] if entry is not None and entry.names else None


def taken_names(vocab) -> dict[str, str]:
    """{name key: what it means} for every word a new structure's names must not be: the built-in vocabulary's
    words (a structure word means that structure; any other word its category) and the declared names."""
    out: dict[str, str] = {}
    for t in vocab.terms:
        out.setdefault(name_key(t.term), t.value if t.category == "structure" else f"the {t.category} word {t.term}")
    out.update(DECLARED.owners())
    return out


def name_conflicts(names: list[str], structure: str, vocab) -> str | None:
    """Why one of `names` would be misread, or None: a name inside a built-in structure word (雪球 → 球) would
    take that structure's messages."""
    builtin = [t.term for t in vocab.terms if t.category == "structure" and not t.term.isascii()]
    for n in names:
        key = name_key(n)
        for word in builtin:
            if key != name_key(word) and key in name_key(word):
                return f"name {n!r} is part of the structure word {word!r}"
    return None
