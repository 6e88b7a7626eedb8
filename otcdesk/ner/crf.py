"""CRF span tagger (python-crfsuite) for underlying mentions, used where the dictionary cannot help.

The dictionary and code rules find every underlying the pool knows. What they cannot do is notice that
"某某能源" or "蓝月亮集团" in "帮我报个蓝月亮集团三个月的看跌" *is* an underlying the desk does not know — which
the parser must report ("没有识别出标的「蓝月亮集团」") rather than silently drop or guess. The CRF labels
characters B-U/I-U/O from character, neighbourhood, character-class and lexicon features (trained by
`train_crf.py` on the dev split plus seeded synthetic messages); the parser asks it only for spans made of
characters no rule consumed, and keeps a span when its mean marginal probability is high.
"""
from __future__ import annotations

import logging
import re
import threading
from functools import lru_cache
from pathlib import Path

from .pool import DATA_DIR
from .vocabulary import Pattern

log = logging.getLogger(__name__)
MODEL_PATH = DATA_DIR / "underlying_crf.crfsuite"
MIN_MARGINAL = 0.6
_SUFFIX_CHARS = set("科技集团股份能源银行证券医药电子电气材料控股实业矿业化工汽车电力智能生物通信软件信息传媒食品饮料酒业地产建设重工机械保险光电半导体新能")


def _ctype(ch: str) -> str:
    if "\u4e00" <= ch <= "\u9fff":
        return "C"
    if ch.isdigit():
        return "D"
    if ch.isascii() and ch.isalpha():
        return "L"
    if ch.isspace():
        return "S"
    if ch == "\x01":
        return "M"
    return "P"


def char_features(text: str, vocab_tags: list[str] | None = None) -> list[list[str]]:
    """Per-character feature strings. `vocab_tags[i]` marks characters inside a known term/alias ('T'/'A'/'N'/'O')."""
    n = len(text)
    vt = vocab_tags or ["O"] * n
    feats = []
    for i, ch in enumerate(text):
        f = [f"c={ch}", f"t={_ctype(ch)}", f"v={vt[i]}", f"suf={ch in _SUFFIX_CHARS}",
             f"sufR={any(c in _SUFFIX_CHARS for c in text[i + 1:i + 4])}",
             f"sufL={any(c in _SUFFIX_CHARS for c in text[max(0, i - 3):i])}"]
        for d in (-2, -1, 1, 2):
            j = i + d
            if 0 <= j < n:
                f.append(f"c{d}={text[j]}")
                f.append(f"t{d}={_ctype(text[j])}")
                f.append(f"v{d}={vt[j]}")
            else:
                f.append(f"c{d}=<pad>")
        if i > 0:
            f.append(f"b-1={text[i - 1]}{ch}")
        if i + 1 < n:
            f.append(f"b+1={ch}{text[i + 1]}")
        if i == 0:
            f.append("BOS")
        if i == n - 1:
            f.append("EOS")
        feats.append(f)
    return feats


def vocab_tags(text: str, corrector) -> list[str]:
    """'T' for lexicon terms, 'A' for pool aliases, 'N' for digits/latin, 'O' otherwise (via jieba with the user dict)."""
    tags = []
    pool_aliases = corrector.pool.aliases
    terms = {t for t, _c, _v in corrector.terms}
    for tok in corrector.cut(text):
        if tok in pool_aliases:
            tag = "A"
        elif tok in terms:
            tag = "T"
        elif re.fullmatch(r"[0-9A-Za-z.%]+", tok):
            tag = "N"
        else:
            tag = "O"
        tags.extend([tag] * len(tok))
    return tags[: len(text)] + ["O"] * max(0, len(text) - len(tags))


class UnderlyingTagger:
    """Wraps a trained crfsuite model. A crfsuite Tagger keeps the last sequence for `marginal`, so calls are
    serialised with a lock (the parser is shared by the server's threads)."""

    def __init__(self, model_path: Path, corrector):
        import pycrfsuite

        self.tagger = pycrfsuite.Tagger()
        self.tagger.open(str(model_path))
        self.corrector = corrector
        self._lock = threading.Lock()

    def spans(self, text: str) -> list[tuple[int, int, float]]:
        """(start, end, mean marginal) of each predicted underlying mention."""
        if not text:
            return []
        feats = char_features(text, vocab_tags(text, self.corrector))
        with self._lock:
            labels = self.tagger.tag(feats)
            marg = [self.tagger.marginal(lab, k) if lab != "O" else 0.0 for k, lab in enumerate(labels)]
        out, start = [], None
        for i, lab in enumerate(labels + ["O"]):
            if lab == "B-U" or lab == "O" or (lab == "I-U" and start is None):
                if start is not None:
                    probs = marg[start:i]
                    out.append((start, i, sum(probs) / len(probs)))
                    start = None
                if lab in ("B-U", "I-U"):
                    start = i
        return out

    def unknown_spans(self, masked: str, original: str) -> list[str]:
        """Spans the CRF reads as underlyings that no rule consumed (masked text keeps positions)."""
        found = []
        for s, e, p in self.spans(original):
            if p < MIN_MARGINAL:
                continue
            piece = masked[s:e]
            if "\x01" in piece:
                continue
            piece = piece.strip(" ,，、:：()（）[]【】")
            if len(piece) < 2 or not re.search(r"[\u4e00-\u9fffA-Za-z]", piece):
                continue
            if piece in self.corrector.words:
                continue
            if re.fullmatch(r"[A-Za-z0-9]+", piece):
                # latin: only a whole upper-case ticker-like word (never a piece of an English word)
                if not piece.isupper() or (s > 0 and original[s - 1].isalpha()) or (e < len(original) and original[e].isalpha()):
                    continue
            if not looks_like_name(piece, self.corrector):
                continue
            found.append(piece)
        return found


_PROPER = {"nr", "nrt", "nrfg", "ns", "nt", "nz"}
_NAME_SUFFIX = Pattern(r"{name_suffix}$")


@lru_cache(maxsize=1)
def _jieba_pos() -> dict[str, str]:
    import jieba

    pos: dict[str, str] = {}
    with jieba.get_dict_file() as fh:
        for raw in fh:
            parts = raw.decode("utf-8").split()
            if len(parts) >= 3:
                pos[parts[0]] = parts[2]
    return pos


def looks_like_name(span: str, corrector) -> bool:
    """A CRF span is kept only if it could be a name: a company-like suffix, a latin ticker, a proper noun in
    jieba's dictionary, or a word jieba does not know. Spans made only of ordinary words (价格能, 能不能到) are not."""
    if corrector.vocabulary.rx(_NAME_SUFFIX).search(span) or re.fullmatch(r"[A-Z][A-Z0-9]{1,7}", span):
        return True
    pos = _jieba_pos()
    for tok in corrector.cut(span):
        if not re.search(r"[\u4e00-\u9fff]", tok):
            continue
        tag = pos.get(tok)
        if tag is None or tag in _PROPER:
            return True
    return False


@lru_cache(maxsize=1)
def load_default_tagger():
    """The checked-in model, or None when it is missing (the parser then reports unknown names less precisely)."""
    if not MODEL_PATH.exists():
        log.warning("CRF model %s missing; run python -m otcdesk.ner.train_crf", MODEL_PATH)
        return None
    from .lexicon import default_corrector

    return UnderlyingTagger(MODEL_PATH, default_corrector())
