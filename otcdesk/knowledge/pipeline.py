"""Answering as a pipeline of small stages (llama-index habit: retriever → postprocessors → synthesizer).

    QuestionAnalyzer   question → `Query` (concepts with their alternative words and weights, answer kinds; with
                       word vectors on, the knowledge base's words near each concept in meaning)
    HybridRetriever    BM25 over jieba words + BM25 over character bigrams (+ dense vectors), fused by rank
    CoverageReranker   every candidate passage scored by how much of the question's meaning it covers
    SentenceExtractor  the sentence(s) or table row(s) of the passage that answer; a sentence for each asked part
                       of a compound question
    Answerability      ONE calibrated score: coverage of the passage and of the answer unit, answer kind present
    LLMJudge           optional: the local LLM says whether a borderline passage answers the question
    GroundedGenerator  optional: the LLM rewrites the answer from the cited passages; kept only if grounded

Every stage is stateless: what it learns about a question lives in the values it returns; the knowledge base's
read state is a `Snapshot` (immutable once built; its caches only memoise), so questions run concurrently.
"""
from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field

import numpy as np

from otcdesk.knowledge.index import KBIndex
from otcdesk.knowledge.masking import TOKEN_RE
from otcdesk.knowledge.protocols import Embedder, LLMClient
from otcdesk.knowledge.semantic import WordVectors
from otcdesk.knowledge.text import FUNCTION_WORDS, STOPWORDS, jieba_mod, split_sentences, squash_cjk_spaces, tokenize
from otcdesk.knowledge.vocabulary import Vocabulary, english_to_chinese

REFUSAL = "知识库中没有找到能回答这个问题的依据，无法回答。"
DEFAULT_THRESHOLD = 0.75  # swept over in-sample, dev-kbgen and both fresh-b1 sets (tests/data/README.md): plateau 0.65-0.80, refusing side
SEMANTIC_THRESHOLD = 0.80  # with word vectors near words raise coverage; swept over the fresh batches of rounds 1-4
RRF_K = 60
SCAN_ALL = 4000  # up to this many chunks every passage is scored; above it, the retriever's candidates

_QUESTION_WORD = re.compile(r"^(?:哪|几|多少|什么|怎|如何|是否|为何|何)")
_PUNCT = re.compile(r"^[\W_]+$", re.U)
_CJK = re.compile(r"[\u4e00-\u9fff]")
# "几点截止" asks a time of day; "哪几点/第几点/几点要求" count points of a list, "跌了几点" index points
_CLOCK_ASKED = re.compile(r"(?<![哪第跌涨])(?<!跌了)(?<!涨了)几点(?!要求|内容|意见|建议|原因|注意|区别|不同|事项)|几时|什么时间点|"
                          r"哪个时间点|什么时点")
_ANSWER_KINDS = [
    ("clock", _CLOCK_ASKED),
    ("day", re.compile(r"哪一?天|几号|哪一?日|几月几[日号]|具体日期")),
    ("time", re.compile(r"何时|什么时候|哪一?年|哪一?天|哪个月|几月|几号|日期|多久|多长时间|时限|时间|频率|"
                         r"(?:多少|几)个?(?:天|小时|分钟|工作日|交易日|月|年|周|星期)")),
    ("quantity", re.compile(r"多少|几|多大|多高|多长|比例|金额|数量|规模|占比|比率|上限|下限|最多|最少|最低|最高")),
    ("place", re.compile(r"哪里|在哪|地址|位于|哪个城市|哪座城市|哪个省")),
    ("phone", re.compile(r"电话号码|联系电话|热线|传真号|(?:电话|传真)(?:是|号)?(?:多少|几号)|(?:打|拨)(?:哪个|什么)(?:电话|号)")),
    ("code", re.compile(r"代码|编号|号码|登记号|备案号|许可证号")),
    ("agent", re.compile(r"哪家|哪个(?:公司|机构|单位|部门)|哪些(?:公司|机构|单位|部门)|谁")),
]
_KIND_EVIDENCE = {
    "clock": re.compile(r"(?<![\d.])(?:[01]?\d|2[0-4])\s*[:：]\s*[0-5]\d(?!\d)|"
                        r"(?<![\d.第])(?:[01]?\d|2[0-4])\s*点(?:\s*[0-5]?\d\s*分|半|整|钟|前|后|之前|以前|以后|至|到|—|-|～|~)|"
                        r"(?:[上下中]午|[早晚]上|凌晨|每[日天])\s*(?:[01]?\d|2[0-4])\s*点|全天"),
    "day": re.compile(r"\d{1,2}\s*[日号]|\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|当天|次日|T\+\d"),
    "time": re.compile(r"\d{4}\s*年|\d{1,2}\s*月|\d+\s*日|\d+\s*个?\s*(?:天|工作日|交易日|小时|分钟|秒|周|月|年)|当天|次日|"
                       r"T\+\d|\d{1,2}:\d{2}|[一二两三四五六七八九十]+个?(?:天|工作日|交易日|周|月|年|小时)|[秒分]级|每[日天周月年]|"
                       r"实时|定期|每个|\d+\s*\*\s*\d+"),
    "quantity": re.compile(r"\d|[一二两三四五六七八九十百千万亿几数]+\s*(?:个|家|项|笔|次|人|名|篇|种|类|倍|亿|万|千|百|余|成|级)|"
                           r"上百|上千|数百|数千|数十|若干|全部|所有|[十百千万亿]级"),
    "place": re.compile(r"省|市|区|县|路|街|号|大厦|广场|大道|园区|香港|北京|上海|深圳|境内|境外"),
    "code": re.compile(r"[A-Za-z0-9][A-Za-z0-9\-.]{2,}|\d{3,}"),
    "phone": re.compile(r"\d{5,}|\d{3,4}-\d{3,}|\[PHONE_"),
    "agent": re.compile(r"[\u4e00-\u9fffA-Za-z]{2,12}(?:公司|交易所|银行|集团|中心|协会|研究院|大学|委员会|局|部|部门)|"
                        r"[\u4e00-\u9fff]{2,6}(?:证券|基金|期货)|人员|团队|小组|员工|客户|投资者|交易员|\[NAME_"),
}
_CN_NUM = "一二三四五六七八九十"
_CODE = re.compile(r"[a-z0-9]+(?:[-_/][a-z0-9]+)+(?![a-z0-9])")
_NUMERAL = r"(?:\d+(?:[.,]\d+)*|[一二两三四五六七八九十百千万亿]+|上[百千万亿]|数[十百千万亿]|几[十百千万])"
# The unit a "how many/much" question names fixes what an answer must hold: 多少笔 → "300 笔", 多少钱 → "… 元"
_MEASURE_ASKED = re.compile(r"(?:多少|几)\s*(个百分点|个点|[人名家笔项条次篇种类只户位款份套台张件倍岁点])")
_HOW_MANY_NOT_WHEN = r"(?:多少|几)(?![点天号月年日周]|个(?:工作日|交易日|月|小时|星期)|小时|分钟)"  # 几点, 几天: a time
_MONEY_ASKED = re.compile(r"多少钱|花了多少|花费多少|罚多少|多少万|多少元|(?:资金|金额|费用|预算|补贴|手续费|违约金|投资额)"
                          r"[^，。？?]{0,6}" + _HOW_MANY_NOT_WHEN + r"|" + _HOW_MANY_NOT_WHEN
                          + r"[^，。？?]{0,4}(?:资金|金额|费用|预算|补贴|手续费|违约金)")
_PERCENT_ASKED = re.compile(r"百分之几|百分比|占比|比例[^，。？?]{0,4}(?:多少|几)|率[^，。？?]{0,8}(?:多少|几)")
_MEASURE_EVIDENCE = {
    "money": re.compile(_NUMERAL + r"\s*(?:余|多)?\s*(?:万|亿|千|百)?\s*(?:元|块)|" + _NUMERAL + r"\s*(?:万|亿)(?:美元|港元|人民币)"),
    "percent": re.compile(r"\d+(?:\.\d+)?\s*[%％]|百分之|[一二三四五六七八九]成|\d+(?:\.\d+)?\s*个?百分点"),
}
# "两家", "一只", "这套", "哪两项": a count or pointer frame around what is asked, not a thing the text names
_COUNT_FRAME = re.compile(r"^[一二两三四五六七八九十几哪每这那某各多]+[个家只项条种位名笔套件份点部类批]$")  # not 次: "多久一次" is a frequency
# An organisation named in full: a name and a legal or institutional suffix
_ORG = re.compile(r"([\u4e00-\u9fff]{2,12}?)(?:股份有限公司|有限责任公司|有限公司|证券公司|证券|银行|交易所|集团|基金公司|"
                  r"期货公司|保险公司|信托公司|研究院|事务所)")
_NOUN_TAGS = ("n", "vn", "an", "j", "eng", "nz", "nr", "ns", "nt", "x")  # not l/i: set phrases (逢年过节) say how
# Words that name the KIND of thing asked ("期限是多久", "比例是多少"): an answer holding that kind states them
_KIND_NOUNS = {
    "clock": frozenset("时间 时点 截止时间 时间点 几点".split()),
    "time": frozenset("期限 时限 时间 日期 时候 时点 频率 频次 周期 多久 时长 截止时间".split()),
    "day": frozenset("日期 时间 哪天 具体日期".split()),
    "quantity": frozenset("金额 数额 比例 比率 幅度".split()),
}


# ---------------------------------------------------------------- the knowledge base's read state

class Snapshot:
    """Everything a question reads, copied out of a `KBIndex` once: passages, their lower-cased text, each
    document's text and head (title + keywords), BM25 over words and over character bigrams, vectors, the
    learned vocabulary. Ingestion builds a new snapshot and swaps it in; readers keep the one they started with."""

    def __init__(self, index: KBIndex, vocab: Vocabulary, vectors: WordVectors | None = None):
        import bm25s
        import logging

        logging.getLogger("bm25s").setLevel(logging.WARNING)
        self.vocab = vocab
        self.ids: list[str] = index.chunk_ids()
        self.nodes = {cid: index.node(cid) for cid in self.ids}
        self.nodes = {cid: n for cid, n in self.nodes.items() if n is not None}
        self.ids = [cid for cid in self.ids if cid in self.nodes]
        self.text = {cid: squash_cjk_spaces(f"{n.metadata.get('heading', '')}\n{n.get_content()}".lower())
                     for cid, n in self.nodes.items()}
        self.heading = {cid: squash_cjk_spaces(n.metadata.get("heading", "").lower()) for cid, n in self.nodes.items()}
        self.source = {cid: n.metadata.get("source", "") for cid, n in self.nodes.items()}
        self.doc_ids: dict[str, list[str]] = {}
        for cid in self.ids:
            self.doc_ids.setdefault(self.source[cid], []).append(cid)
        self.doc_text = {src: "\n".join(self.text[c] for c in ids) for src, ids in self.doc_ids.items()}
        self.doc_intro = {src: self.text[ids[0]] for src, ids in self.doc_ids.items()}  # where a document says what it is
        self.doc_head = {src: (vocab.titles.get(src, "") + "\n" + " ".join(
            index.manifest.get(src, {}).get("keywords", [])[:12])).lower() for src in self.doc_ids}
        self.words = bm25s.BM25(k1=1.2, b=0.75)
        self.chars = bm25s.BM25(k1=1.2, b=0.75)
        if self.ids:
            self.words.index([index.tokens.get(cid, []) + index.manifest.get(self.source[cid], {}).get("keywords", [])
                              for cid in self.ids], show_progress=False)
            self.chars.index([char_bigrams(self.text[cid]) for cid in self.ids], show_progress=False)
        self.vector_ids = list(index.vector_ids)
        self.vectors = None if index.vectors is None else np.array(index.vectors, copy=True)
        self._df: dict[str, int] = {}
        self._df_lock = threading.Lock()
        self.word_vectors = vectors
        self.wordset = vectors.subset(w for toks in index.tokens.values() for w in toks
                                      if len(w) >= 2 and _CJK.search(w)) if vectors is not None else None

    @property
    def n(self) -> int:
        return max(1, len(self.ids))

    def df(self, term: str) -> int:
        """Passages containing `term` (memoised; the value never changes for a snapshot)."""
        d = self._df.get(term)
        if d is None:
            d = sum(1 for cid in self.ids if term in self.text[cid])
            with self._df_lock:
                self._df[term] = d
        return d

    def doc_df(self, term: str) -> int:
        """Documents containing `term` (memoised)."""
        key = "\x00" + term
        d = self._df.get(key)
        if d is None:
            d = sum(1 for txt in self.doc_text.values() if term in txt)
            with self._df_lock:
                self._df[key] = d
        return d

    def identifies(self, concept: "Concept", source: str) -> bool:
        """The concept names this document among the others: a name or a long code only it (or few documents)
        holds. A short code ("P3" of a table, "RTO") names the document only where it introduces itself (its first
        passage); deeper inside it is a field the answer must state."""
        words = (concept.term,) + concept.alts
        hit = [w for w in words if w in (self.doc_text if _CJK.search(w) or len(w) >= 5 else self.doc_intro).get(
            source, "")]
        return bool(hit) and len(self.doc_ids) > 1 and min(self.doc_df(w) for w in hit) <= max(1, len(self.doc_ids) // 3)

    def idf(self, df: int) -> float:
        return math.log(1 + (self.n - df + 0.5) / (df + 0.5))


def char_bigrams(text: str) -> list[str]:
    """Overlapping character bigrams of the Chinese runs, plus Latin/number words (for BM25 and coverage)."""
    out = []
    for run in re.findall(r"[\u4e00-\u9fff]+", text):
        out.extend(run[i:i + 2] for i in range(len(run) - 1)) if len(run) > 1 else out.append(run)
    out.extend(w.lower() for w in re.findall(r"[A-Za-z][A-Za-z0-9.\-]*|\d+(?:\.\d+)?", text))
    return out


# ---------------------------------------------------------------- stage 1: question analysis

@dataclass(frozen=True)
class Concept:
    """One piece of the question's meaning: its word, other words for it, and how much it tells (IDF)."""

    term: str
    alts: tuple[str, ...]
    weight: float
    seen: bool  # the knowledge base uses the word or one of its alternatives
    reader: bool = False  # a word of the reader's asking the knowledge base never uses ("补上", "中午")
    parts: tuple[str, ...] = ()  # an unseen compound the knowledge base states in its parts (电话录音 → 电话, 录音)
    kind_word: bool = False  # names the kind of thing asked ("期限" of "期限是多久"): the answer's kind states it
    near: tuple[tuple[str, float], ...] = ()  # the knowledge base's words near in meaning (拿主意 → 定夺), with similarity


@dataclass(frozen=True)
class Query:
    question: str
    text: str  # normalised (lower case, English finance words in Chinese)
    concepts: tuple[Concept, ...]
    kinds: tuple[str, ...]
    ordinal: int = 0
    measure: str = ""  # the unit asked for: "money", "percent" or a measure word ("笔", "家", "人")

    def holds_kind(self, text: str) -> bool:
        """The text holds what is asked: its kind, and the unit a "how many" question names."""
        return has_kind(text, self.kinds, self.text) and has_measure(text, self.measure, self.text)

    @property
    def terms(self) -> tuple[str, ...]:
        return tuple(c.term for c in self.concepts)


class QuestionAnalyzer:
    """Question → `Query`. Learned terms and short names found in the question stay whole; the rest is cut by
    jieba; stopwords, question words and lone characters go. Each concept gets its alternatives (learned names,
    general synonyms) and an IDF weight over the knowledge base's passages."""

    def analyze(self, question: str, snap: Snapshot) -> Query:
        text = squash_cjk_spaces(english_to_chinese(question).lower()).strip()
        kinds = answer_kinds(text)
        terms = self._terms(text, snap.vocab)
        light = self._light_words(text, terms)
        concepts = []
        kind_nouns = frozenset().union(*(_KIND_NOUNS.get(k, frozenset()) for k in kinds))
        for t in terms:
            alts = tuple(sorted(a for a in snap.vocab.alternatives(t) if a and a != t))
            df = snap.df(t)
            alt_df = max((snap.df(a) for a in alts), default=0)
            near = near_words(t, alts, snap)
            if near and not (df or alt_df):
                alt_df = snap.df(near[0][0])  # the reader's word for what the documents say another way
            seen = df > 0 or alt_df > 0
            parts = () if seen else compound_parts(t, snap)
            if parts:
                concepts.append(Concept(t, alts, max(snap.idf(snap.df(p)) for p in parts), True, parts=parts))
                continue
            weight = snap.idf(df if df > 0 else alt_df)
            reader = not seen and not self._names_a_thing(t, snap)
            if t in kind_nouns:
                concepts.append(Concept(t, alts, weight * 0.5, seen, reader, kind_word=True, near=near))
                continue
            if reader:
                weight *= 0.15  # an unseen verb, adverb or time word of the reader ("省下", "改过", "早上")
            elif t in light:
                weight *= 0.35  # the reader's verbs and adverbs ("设在", "不够", "实行") say how, not what
            elif not seen and len(t) >= 3 and _CJK.search(t):
                weight *= 1.2  # a name the knowledge base never uses is the strongest sign it cannot answer
            concepts.append(Concept(t, alts, weight, seen, reader, near=near))
        m = re.search(r"第([一二三四五六七八九十]|\d{1,2})(?:个|步|条|项|点|种|类|阶段)", text)
        ordinal = 0
        if m:
            ordinal = int(m.group(1)) if m.group(1).isdigit() else _CN_NUM.index(m.group(1)) + 1
        return Query(question, text, tuple(concepts), kinds, ordinal, asked_measure(text))

    @staticmethod
    def _names_a_thing(term: str, snap: Snapshot) -> bool:
        """Whether a word the knowledge base never uses names a thing (a noun, a name, a Latin term) rather than
        the reader's way of asking. Words jieba does not know ("会罚", "账上") count as things only when one of
        their characters is new to the knowledge base too."""
        if not _CJK.search(term):
            return True
        jieba_mod()
        import jieba.posseg as pseg

        tag = pseg.dt.word_tag_tab.get(term)
        if tag is not None:
            return tag.startswith(_NOUN_TAGS + ("q",)) and not tag.startswith("nrt")  # a unit (美元) is asked
        return any(snap.df(ch) == 0 for ch in term if _CJK.match(ch))

    @staticmethod
    def _light_words(text: str, terms: list[str]) -> set[str]:
        """Terms jieba tags as verbs, adverbs, pronouns, particles or conjunctions (not nouns or names)."""
        jieba_mod()
        import jieba.posseg as pseg

        flags = {w.lower(): f for w, f in pseg.cut(text)}
        return {t for t in terms if flags.get(t, "n")[:1] in ("v", "d", "r", "u", "c", "p", "a", "z", "y", "f")
                and flags.get(t) not in ("vn", "an")}

    @staticmethod
    def _terms(text: str, vocab: Vocabulary) -> list[str]:
        known = vocab.terms | set(vocab.aliases)
        spans: list[tuple[int, int]] = []
        i = 0
        while i < len(text):  # greedy longest learned term (3+ characters) at each position
            best = 0
            for j in range(min(len(text), i + 20), i + 2, -1):
                if text[i:j] in known:
                    best = j
                    break
            code = _CODE.match(text, i) if (i == 0 or not text[i - 1].isalnum()) else None
            if code and not best:
                best = code.end()  # a code stays whole: "cd-2024-03", not "cd", "2024", "03"
            if best:
                spans.append((i, best))
                i = best
            else:
                i += 1
        pieces: list[str] = []
        out: list[str] = []
        last = 0
        for a, b in spans:
            pieces.append(text[last:a])
            out.append(text[a:b])
            last = b
        pieces.append(text[last:])
        jb = jieba_mod()
        for piece in pieces:
            singles: list[str] = []  # a run of lone characters jieba could not join ("年", "假" of 年假) is one word
            for tok in list(jb.cut(piece)) + [""]:
                t = tok.strip().lower()
                if len(t) == 1 and _CJK.match(t) and t not in STOPWORDS and t not in FUNCTION_WORDS:
                    singles.append(t)
                    continue
                if len(singles) >= 2:
                    out.append("".join(singles))
                singles = []
                if not t or _PUNCT.match(t) or t in STOPWORDS or t in FUNCTION_WORDS or _QUESTION_WORD.match(t) \
                        or _COUNT_FRAME.match(t):
                    continue
                if len(t) == 1 and not t.isdigit():
                    continue
                out.append(t)
        return list(dict.fromkeys(out))


def near_words(term: str, alts: tuple[str, ...], snap: Snapshot) -> tuple[tuple[str, float], ...]:
    """Words of the knowledge base near the term in meaning (general word vectors), not merely containing it or
    contained in it; () without vectors."""
    if snap.word_vectors is None or not _CJK.search(term):
        return ()
    return tuple((w, s) for w, s in snap.word_vectors.near(term, snap.wordset)
                 if term not in w and w not in term and w not in alts and w not in STOPWORDS
                 and w not in FUNCTION_WORDS)


def compound_parts(term: str, snap: Snapshot) -> tuple[str, ...]:
    """The words of a compound the knowledge base never writes whole but uses each part of (书面报告 → 书面, 报告;
    软件著作权 → 软件, 著作权): a cover of the term by jieba's search cut, longest parts first, every part seen."""
    if len(term) < 3 or not _CJK.search(term):
        return ()
    jb = jieba_mod()
    subs = sorted({w for w in jb.cut_for_search(term) if 2 <= len(w) < len(term)}, key=len, reverse=True)
    cover, i = [], 0
    while i < len(term):
        nxt = next((w for w in subs if term.startswith(w, i)), None)
        if nxt is None:
            return ()
        cover.append(nxt)
        i += len(nxt)
    return tuple(cover) if len(cover) > 1 and all(snap.df(w) > 0 for w in cover) else ()


def other_organisation(question: str, answer: str) -> bool:
    """The question names a firm in full and the answer's sentence is about another: it opens with that firm's
    name (compared by the first two characters, which short names keep: 某某证券 → 某某). Other firms the sentence
    merely mentions (its shareholders, its partners) do not count."""
    asked = {m.group(1)[:2] for m in _ORG.finditer(question)}
    opening = re.sub(r"^[\W\d_a-z]*", "", answer.lower())
    opening = re.sub(r"^[^：:，。]{0,12}[：:]\s*", "", opening)  # a field label ("单位简介：")
    subject = _ORG.match(opening)
    return bool(asked) and subject is not None and subject.group(1)[:2] not in asked


def answer_kinds(question: str) -> tuple[str, ...]:
    """What the question asks for (a clock time, day, time, quantity, place, phone, code, agent); a phone number or
    code asked as "是多少" is that, not a quantity."""
    kinds = [name for name, pat in _ANSWER_KINDS if pat.search(question)]
    for specific in ("phone", "code", "clock", "day"):
        if specific in kinds:
            return (specific,)
    if "time" in kinds and "quantity" in kinds and re.search(r"(?:多少|几)个?(?:天|小时|分钟|工作日|交易日|年|月)|多久|多长时间",
                                                                 question):
        return ("time",)
    return tuple(kinds)


def asked_measure(question: str) -> str:
    """The unit a quantity question asks in: money, a percentage, or a measure word ("多少笔" → "笔")."""
    if _PERCENT_ASKED.search(question):
        return "percent"
    if _MONEY_ASKED.search(question):
        return "money"
    for m in _MEASURE_ASKED.finditer(question):
        if re.fullmatch(r"几\s*点", m.group(0)) and _CLOCK_ASKED.match(question, m.start()):
            continue  # "几点截止" asks a time of day (the clock kind), not a count of points ("跌了几点")
        return {"个百分点": "percent", "个点": "点"}.get(m.group(1), m.group(1))
    jieba_mod()
    import jieba.posseg as pseg

    toks = [(w, f) for w, f in pseg.cut(question) if w.strip()]
    for (w, _), (nxt, flag) in zip(toks, toks[1:]):
        if w in ("多少", "几") and flag == "q" and len(nxt) <= 3:
            return nxt  # a unit jieba knows: 多少美元, 几人月
    return ""


def has_measure(text: str, measure: str, question: str = "", tables: bool = True) -> bool:
    """Whether `text` states a figure in the asked unit (one the question does not already give); with `tables`,
    a bare number in a table cell counts (its column header carries the unit)."""
    if not measure:
        return True
    if tables and re.search(r"\|\s*(?!(?:19|20)\d\d\s*(?:\||$))\d+(?:\.\d+)?\s*(?:\||$)", text, re.M):
        return True  # a bare number in a table cell: its column header carries the unit
    rx = _MEASURE_EVIDENCE.get(measure) or re.compile(_NUMERAL + r"\s*(?:余|多)?\s*个?[\u4e00-\u9fff]{0,4}?" + measure)
    return any(m.group(0) not in question for m in rx.finditer(text))


def has_kind(text: str, kinds: tuple[str, ...], question: str = "") -> bool:
    """Whether `text` holds something of an asked kind that the question does not already say."""
    if not kinds:
        return True
    text = re.sub(r"(?m)^\s*(?:\d+(?:\.\d+)+|[（(]?\d{1,2}[)）.、])\s*", "", text)  # list numbers are not figures
    for k in kinds:
        for m in _KIND_EVIDENCE[k].finditer(text):
            if m.group(0) not in question:
                return True
    return False


# ---------------------------------------------------------------- stage 2: retrieval

class HybridRetriever:
    """BM25 over jieba words, BM25 over character bigrams (robust to the reader's word boundaries) and, with an
    embedder, dense vectors; rankings fused by reciprocal rank. Returns chunk id → fused score."""

    def __init__(self, embedder: Embedder | None = None, top: int = 60):
        self.embedder, self.top = embedder, top

    def retrieve(self, query: Query, snap: Snapshot) -> dict[str, float]:
        if not snap.ids:
            return {}
        words = tokenize(query.text) + [a for c in query.concepts for a in c.alts]
        rankings = [self._bm25(snap.words, [w for w in words if w in snap.words.vocab_dict], snap),
                    self._bm25(snap.chars, [b for b in char_bigrams(query.text) if b in snap.chars.vocab_dict], snap)]
        if self.embedder is not None and snap.vectors is not None and snap.vector_ids:
            q = np.asarray(self.embedder.embed([query.question])[0], dtype=np.float32)
            q /= np.linalg.norm(q) + 1e-12
            sims = snap.vectors @ q
            rankings.append([snap.vector_ids[i] for i in np.argsort(-sims)[:self.top]])
        fused: dict[str, float] = {}
        for ranking in rankings:
            for rank, cid in enumerate(ranking):
                fused[cid] = fused.get(cid, 0.0) + 1.0 / (RRF_K + rank + 1)
        return fused

    def _bm25(self, model, toks: list[str], snap: Snapshot) -> list[str]:
        if not toks:
            return []
        scores = model.get_scores(toks)
        idx = np.argsort(-scores)[:self.top]
        return [snap.ids[i] for i in idx if scores[i] > 0]


# ---------------------------------------------------------------- stage 3: coverage reranking

def match(concept: Concept, text: str) -> float:
    """How well `text` states a concept: the word 1, an alternative 0.9, all its parts 0.85, a word near in meaning
    its similarity (at most 0.85), most of its character bigrams a part."""
    if concept.term in text:
        return 1.0
    if any(a in text for a in concept.alts):
        return 0.9
    near = min(0.85, max((sim for w, sim in concept.near if w in text), default=0.0))
    if concept.parts:
        frac = sum(1 for p in concept.parts if p in text) / len(concept.parts)
        return max(near, 0.85 if frac == 1 else 0.5 * frac)
    t = concept.term
    if len(t) >= 3 and _CJK.search(t):
        grams = [t[i:i + 2] for i in range(len(t) - 1)]
        frac = sum(1 for g in grams if g in text) / len(grams)
        if frac >= 0.5:
            return max(near, 0.7 * frac * frac)
    return near


def qmatch(query: Query, concept: Concept, text: str) -> float:
    """`match`, and a word naming the asked kind ("期限") stated by a text that holds that kind ("3个工作日内")."""
    m = match(concept, text)
    if concept.kind_word and m < 0.9 and has_kind(text, query.kinds, query.text) and has_measure(
            text, query.measure, query.text, tables=False):
        return 0.9
    return m


@dataclass
class Evidence:
    chunk_id: str
    coverage: float  # share of the question's weight the passage (in its document's context) covers
    heading: float  # share covered by the passage's heading (what it is about)
    fused: float  # retrieval score
    matched: dict[str, float] = field(default_factory=dict)
    unit: str = ""  # the answer unit (filled by the extractor)
    answer: str = ""
    unit_coverage: float = 0.0
    field_coverage: float = 1.0  # the concepts that do not identify the document, stated in the passage itself
    unit_score: float = 0.0
    no_content: bool = False  # the answer unit is an empty form field or only masked personal data

    @property
    def rank_key(self) -> float:
        return self.coverage + 0.3 * self.heading + 0.25 * self.unit_score + 2.0 * self.fused


def doc_credit(c: Concept, src: str, snap: Snapshot) -> float:
    """What a concept stated elsewhere in the passage's document is worth: 0.85 when it identifies the document
    (its title, or a word only it or few documents hold — the question names the document, then asks a field),
    0.25 otherwise."""
    m = match(c, snap.doc_text[src])
    if not m:
        return 0.0
    if match(c, snap.doc_head[src]) >= 0.9 or snap.identifies(c, src):
        return 0.85 * m
    return 0.25 * m


class CoverageReranker:
    """Scores passages by the IDF-weighted share of the question's concepts they state: in the passage (or its
    heading) fully; elsewhere in the document by `doc_credit`."""

    def rerank(self, query: Query, snap: Snapshot, fused: dict[str, float]) -> list[Evidence]:
        total = sum(c.weight for c in query.concepts) or 1.0
        ids = snap.ids if len(snap.ids) <= SCAN_ALL else list(fused)
        doc_cache: dict[tuple[str, str], float] = {}
        out = []
        for cid in ids:
            text, src = snap.text[cid], snap.source[cid]
            matched, heading = {}, 0.0
            for c in query.concepts:
                m = qmatch(query, c, text)
                if m < 1.0:
                    key = (c.term, src)
                    if key not in doc_cache:
                        doc_cache[key] = doc_credit(c, src, snap)
                    m = max(m, doc_cache[key])
                matched[c.term] = m
                heading += c.weight * match(c, snap.heading[cid])
            cov = sum(c.weight * matched[c.term] for c in query.concepts) / total
            out.append(Evidence(cid, cov, heading / total, fused.get(cid, 0.0), matched))
        out.sort(key=lambda e: -e.rank_key)
        return out


# ---------------------------------------------------------------- stage 4: extraction

_FAQ_QUESTION = re.compile(r"^[*#\s]*(?:问\s*\d*\s*[：:]|Q\s*\d*\s*[：:.])?[^。！!；;]{4,60}[？?][*\s]*$", re.I)


def units_of(body: str) -> list[tuple[str, str]]:
    """(unit, its sub-heading context) pairs: sentences and table rows of a passage."""
    from otcdesk.knowledge.chunking import _heading_level

    out: list[tuple[str, str]] = []
    current, header = "", ""
    for line in body.split("\n"):
        s = line.strip()
        if not s:
            continue
        if " | " in s:  # a table row: the run's first row names the columns of the others
            if header:
                out.append((line, f"{current} {header}".strip()))
                continue
            header = s.lower()
        else:
            header = ""
        h = _heading_level(s)
        if h is not None:
            current = h[1].lower()
        elif _FAQ_QUESTION.match(s):
            current = s.strip("*# ").lower()  # an FAQ's question is the context of the answer lines below it
        pieces = split_sentences(line)
        if len(re.findall(r"(?:^|\s)[（(]\d{1,2}[)）]\s*\S", line)) >= 2:  # "(1) 名称: …  (2) 类型: …" on one line
            pieces = [x.strip() for p in pieces for x in re.split(r"\s+(?=[（(]\d{1,2}[)）]\s*\S)", p) if x.strip()]
        for u in pieces:
            out.append((u, current if u.strip().lower() != current else ""))
    return out


class SentenceExtractor:
    """The unit (sentence or table row) of a passage that answers: it states the question's concepts (those that
    only identify the document count little), holds the asked kind of thing, a label naming what is asked, new
    words beyond the question; empty form fields and masked personal data are passed over."""

    def extract(self, query: Query, snap: Snapshot, ev: Evidence) -> Evidence:
        node = snap.nodes[ev.chunk_id]
        units = units_of(node.get_content())
        if not units:
            return ev
        src = snap.source[ev.chunk_id]
        heading = snap.heading[ev.chunk_id]
        total = sum(c.weight for c in query.concepts) or 1.0
        credit = {c.term: doc_credit(c, src, snap) for c in query.concepts}
        weights = {c.term: c.weight * (0.5 if credit[c.term] >= 0.8 else 1.0) for c in query.concepts}
        wtotal = sum(weights.values()) or 1.0
        scored, locals_ = [], []
        for i, (u, ctx) in enumerate(units):
            ul = squash_cjk_spaces(u.lower())
            m_lab = re.match(r"^([^：:，。,]{1,12})[：:](?!(?<=\d[:：])\s*\d{2}(?!\d))(.*)$", ul, re.S)  # not "16:30"
            label, value = (m_lab.group(1), m_lab.group(2)) if m_lab else ("", ul)
            own = {c.term: qmatch(query, c, ul) for c in query.concepts}
            local = {c.term: max(own[c.term], 0.8 * match(c, ctx), 0.9 * match(c, heading)) for c in query.concepts}
            locals_.append((own, value))
            score = sum(weights[t] * m for t, m in local.items()) / wtotal
            cover = sum(c.weight * max(local[c.term], credit[c.term]) for c in query.concepts) / total
            lab = label.strip(" *#")
            lab = re.sub(r"^[（(]?\d+(?:\.\d+)*[)）.、]?\s*", "", lab)
            if lab and any(c.term == lab or lab in c.alts for c in query.concepts):
                score += 0.45  # the row's label is what is asked ("敲出价：…")
            elif lab and any(match(c, lab) >= 0.9 for c in query.concepts if weights[c.term] >= c.weight
                             and not re.fullmatch(r"[a-z0-9.\-]+", c.term)):
                score += 0.3  # the row's label names what is asked
            rest = value
            for t in sorted(query.terms, key=len, reverse=True):
                rest = rest.replace(t, "")
            rest = re.sub(r"[\W_\d.]+", "", rest)
            novelty = len(rest) / max(1, len(re.sub(r"[\W_]+", "", value)))
            raw = u.split("：", 1)[-1] if m_lab else u
            empty = not value.strip() or (TOKEN_RE.search(raw) and not re.sub(
                r"[\W_]+|电话|手机|邮箱|联系人|姓名|和|及|与", "", TOKEN_RE.sub("", raw)))
            if empty:
                score -= 1.5  # an empty form field, or only masked personal data: not the assistant's to give
            elif novelty < 0.2 and not (query.kinds and query.holds_kind(value)):
                score -= 0.5  # restates the question
            if query.kinds:
                score += 0.25 if query.holds_kind(value) else -0.25
            if query.ordinal and re.match(rf"^\s*(?:[（(]?{query.ordinal}[、.．)）]|第{_CN_NUM[query.ordinal - 1]})", u):
                score += 0.8
            if len(u) < 6:
                score -= 0.2
            scored.append((score, cover, i, bool(empty)))
        scored.sort(key=lambda x: (-x[0], x[2]))
        best_s, best_cov, best_i, ev.no_content = scored[0]
        fields = [c for c in query.concepts if credit[c.term] < 0.8 and not c.reader]
        if not fields:  # every named thing identifies the document: the answer unit must still state them
            fields = [c for c in query.concepts if not c.reader]
        if fields:
            ptext = snap.text[ev.chunk_id]
            ul = squash_cjk_spaces(units[best_i][0].lower())
            ev.field_coverage = sum(c.weight * max(qmatch(query, c, ul), 0.8 * match(c, ptext)) for c in fields) / (
                sum(c.weight for c in fields) or 1.0)
        picked = {best_i}
        if len(scored) > 1 and scored[1][0] >= max(0.05, 0.75 * best_s) and abs(scored[1][2] - best_i) == 1 \
                and len(units[best_i][0]) + len(units[scored[1][2]][0]) <= 220:
            picked.add(scored[1][2])
        if len(units[best_i][0]) < 20 and best_i + 1 < len(units) and len(picked) == 1:
            picked.add(best_i + 1)  # "1、首问负责原则。" is followed by what it means
        for i in clause_units(query, locals_, weights, {j for _, _, j, e in scored if e}):
            if i not in picked and sum(len(units[j][0]) for j in picked) + len(units[i][0]) <= 320:
                picked.add(i)  # "…几点截止？跟以前比有什么变化？": each asked part gets its own sentence
        parts = [units[i][0] for i in sorted(picked)]
        ev.answer = "".join(p if p.endswith(tuple("。！？；!?;")) else p + " " for p in parts).strip()
        ev.unit = units[best_i][0]
        ev.unit_score = best_s
        ev.unit_coverage = best_cov
        return ev


def clauses(query: Query) -> list[tuple[tuple[str, ...], tuple[str, ...]]]:
    """A question asking several things at once ("几点截止？跟以前比有什么变化？"), as (its concepts, its kinds)
    per asked part; [] for a question asking one thing."""
    parts = [p for p in re.split(r"[？?]+", query.text) if p.strip()]
    if len(parts) < 2:
        return []
    out = []
    for p in parts:
        terms = tuple(c.term for c in query.concepts if c.term in p)
        kinds = answer_kinds(p)
        if terms or kinds:
            out.append((terms, kinds))
    return out if len(out) >= 2 else []


def clause_units(query: Query, locals_: list[tuple[dict, str]], weights: dict[str, float], empty: set[int]
                 ) -> list[int]:
    """For each asked part of a compound question, the unit that best states that part's own concepts and holds
    its kind of answer (if any unit does so well enough)."""
    out = []
    for terms, kinds in clauses(query):
        own = [t for t in terms if weights.get(t, 0) > 0]
        if not own:
            continue  # "发给谁？" alone names nothing to find its sentence by
        best, best_s = None, 0.0
        for i, (local, value) in enumerate(locals_):
            if i in empty:
                continue
            s = sum(weights[t] * local[t] for t in own) / sum(weights[t] for t in own)
            if kinds:
                s += 0.25 if has_kind(value, kinds, query.text) else -0.25
            if s > best_s:
                best, best_s = i, s
        if best is not None and best_s >= 0.6:
            out.append(best)
    return out


# ---------------------------------------------------------------- stage 5: answerability

class Answerability:
    """ONE score in [0, 1]: how much of the question's meaning the best evidence covers — the passage in its
    document's context and the answer unit itself — discounted when the question asks for a kind of thing (a
    time, a figure, a code) that the answer does not hold. Refuse below `threshold_for(snapshot)`: the configured
    threshold, else the one calibrated on the development batches for the snapshot's matching."""

    def __init__(self, threshold: float | None = None):
        self.threshold = threshold

    def threshold_for(self, snap: Snapshot) -> float:
        """The configured threshold, else the one calibrated for the snapshot's matching (with or without vectors)."""
        if self.threshold is not None:
            return self.threshold
        return SEMANTIC_THRESHOLD if snap.word_vectors is not None else DEFAULT_THRESHOLD

    def score(self, query: Query, ev: Evidence) -> float:
        if not query.concepts or not ev.answer or ev.no_content:
            return 0.0  # nothing extracted, an empty form field, or only masked personal data
        s = 0.25 * ev.coverage + 0.35 * ev.unit_coverage + 0.4 * ev.field_coverage
        if query.kinds and not has_kind(ev.answer, query.kinds, query.text):
            s *= 0.7
        elif not has_measure(ev.answer, query.measure, query.text):
            s *= 0.7  # a figure, but not in the asked unit: "多少人" answered by "四类风险"
        if ev.unit_score < 0:
            s *= 0.8
        if other_organisation(query.text, ev.answer):
            s *= 0.6  # asked about one firm, the sentence is about another ("X的注册资本" answered by Y's)
        return round(max(0.0, min(1.0, s)), 4)


# ---------------------------------------------------------------- optional LLM stages

class LLMJudge:
    """Optional: for a borderline score the local LLM reads the passage and says whether it answers the question
    (是/否). Outside the band, or on any model error, the lexical decision stands."""

    def __init__(self, llm: LLMClient, band: float = 0.12, timeout: float | None = None):
        self.llm, self.band, self.timeout = llm, band, timeout

    def judge(self, question: str, passage: str, score: float, threshold: float) -> bool | None:
        if abs(score - threshold) > self.band:
            return None
        messages = [{"role": "system", "content": "判断资料是否直接给出了问题的答案。只回答“是”或“否”。"},
                    {"role": "user", "content": f"资料：{passage}\n\n问题：{question}\n资料是否给出了答案？"}]
        try:
            text = (self.llm.complete_text(messages, timeout=self.timeout) or "").strip()
        except Exception:
            return None
        if text.startswith("是"):
            return True
        if text.startswith("否"):
            return False
        return None


class GroundedGenerator:
    """Optional: the LLM answers from the cited passages; the answer is kept only when every number and named
    entity in it occurs in them (`groundedness`), else the extractive answer stands with the reason."""

    def __init__(self, llm: LLMClient, timeout: float | None = None):
        self.llm, self.timeout = llm, timeout

    def generate(self, question: str, passages: list[str], result: dict) -> dict:
        from otcdesk.knowledge.answer import groundedness

        context = "\n\n".join(f"[{i + 1}] {p}" for i, p in enumerate(passages))
        messages = [
            {"role": "system", "content": "你是证券公司场外衍生品业务的知识助手。只根据给出的资料回答，简洁准确，"
                                          "保留数字和单位；资料中没有答案时只回答“无法回答”。"},
            {"role": "user", "content": f"资料：\n{context}\n\n问题：{question}\n回答："},
        ]
        try:
            text = (self.llm.complete_text(messages, timeout=self.timeout) or "").strip()
        except Exception as exc:
            return {**result, "llm_rejected": f"llm error: {exc.__class__.__name__}"}
        ok, unsupported = groundedness(text, "\n".join(passages))
        if not text or "无法回答" in text:
            return {**result, "llm_rejected": "model declined"}
        if not ok:
            return {**result, "llm_rejected": "unsupported: " + "、".join(unsupported[:5])}
        return {**result, "answer": text, "mode": "generated"}


# ---------------------------------------------------------------- the pipeline

def cite(snap: Snapshot, cid: str, score: float) -> dict:
    node = snap.nodes[cid]
    md = node.metadata
    return {"source": md.get("source", ""), "text": node.get_content(), "score": round(float(score), 4),
            "chunk_id": cid, "heading": md.get("heading", ""), "position": md.get("position")}


class AnswerPipeline:
    """analyze → retrieve → rerank → extract → answerability (→ judge) (→ generate); stateless."""

    def __init__(self, embedder: Embedder | None = None, llm: LLMClient | None = None,
                 threshold: float | None = None, llm_timeout: float | None = None, judge: bool = False,
                 extract_top: int = 6):
        self.analyzer = QuestionAnalyzer()
        self.retriever = HybridRetriever(embedder)
        self.reranker = CoverageReranker()
        self.extractor = SentenceExtractor()
        self.answerability = Answerability(threshold)
        self.judge = LLMJudge(llm, timeout=llm_timeout) if (llm is not None and judge) else None
        self.generator = GroundedGenerator(llm, llm_timeout) if llm is not None else None
        self.extract_top = extract_top

    def threshold(self, snap: Snapshot) -> float:
        return self.answerability.threshold_for(snap)

    def evidence(self, question: str, snap: Snapshot) -> tuple[Query, list[Evidence]]:
        """The analysed question and its ranked evidence (the leading passages extracted)."""
        query = self.analyzer.analyze(question, snap)
        if not query.concepts or not snap.ids:
            return query, []
        fused = self.retriever.retrieve(query, snap)
        ranked = self.reranker.rerank(query, snap, fused)
        top = [self.extractor.extract(query, snap, ev) for ev in ranked[:self.extract_top]]
        top.sort(key=lambda e: -(e.rank_key + 0.3 * self.answerability.score(query, e)
                                 - (0.4 if query.kinds and not query.holds_kind(e.answer) else 0.0)))
        return query, top + ranked[self.extract_top:]

    def run(self, question: str, snap: Snapshot, k: int = 5) -> dict:
        query, ranked = self.evidence(question, snap)
        if not ranked:
            return self._refuse(query, None, "no key terms" if not query.concepts else "empty knowledge base")
        best = ranked[0]
        score = self.answerability.score(query, best)
        decided_by = "answerability"
        threshold = self.threshold(snap)
        ok = score >= threshold
        if self.judge is not None:
            verdict = self.judge.judge(question, snap.nodes[best.chunk_id].get_content(), score, threshold)
            if verdict is not None:
                ok, decided_by = verdict, "llm judge"
        if not ok:
            return self._refuse(query, best, f"answerability {score:.2f} below {threshold:.2f}", score)
        src = snap.source[best.chunk_id]
        cites = [cite(snap, best.chunk_id, score)]
        for ev in ranked[1:self.extract_top]:
            if len(cites) >= min(k, 3):
                break
            if snap.source[ev.chunk_id] == src and ev.coverage >= threshold:
                cites.append(cite(snap, ev.chunk_id, ev.coverage))
        result = {"answer": best.answer, "refused": False, "citations": cites, "mode": "extractive",
                  "reason": decided_by, "coverage": score, "answerability": score,
                  "missing_terms": [t for t, m in best.matched.items() if m < 0.5], "key_terms": list(query.terms)}
        if self.generator is not None:
            result = self.generator.generate(question, [c["text"] for c in cites], result)
        return result

    def _refuse(self, query: Query, best: Evidence | None, reason: str, score: float = 0.0) -> dict:
        return {"answer": REFUSAL, "refused": True, "citations": [], "mode": "refusal", "reason": reason,
                "coverage": score, "answerability": score,
                "missing_terms": [t for t, m in best.matched.items() if m < 0.5] if best else [],
                "key_terms": list(query.terms)}
