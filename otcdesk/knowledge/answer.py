"""Answering from retrieved passages: extractive (no model) or generated (LLM) with a groundedness check.

Decision, in order (each refusal names its reason in the result):

1. Query terms: English form words mapped to the filings' (lead applicant → 牵头申报单位), jieba key words,
   institution names and quoted titles merged into one term, document-defined short names (简称) resolved,
   adjacent pairs the KB uses as one phrase added. A name the KB does not hold (a firm, a pilot's city, a
   compound label) is refused at once.
   Each document has an *identity* header (form title, filing date, project number and name, lead applicant):
   a question term found there, or a role word tying it to the document ("海通证券牵头的", "2024年6月填报的"),
   counts as a topic of every passage of that document, so only the asked field must be found locally.
2. Every passage of the best-retrieved documents is scored by *coverage*: the IDF-weighted share of the
   terms it supports (in the passage 1, in its table section or as a topic of its document 0.9, elsewhere in
   the document 0.2). A passage lacking a distinctive term (a rare noun the document never uses, a named
   institution or place outside its section, the question's head noun, a detail specific to the document,
   a counted action, a form label other documents have) sorts last; if even the best one lacks it, refuse.
3. A reader step scores the sentences/rows of the leading passages (label match, sub-heading context,
   ordinals, answer type, novelty against the question) and the best passage wins.
4. Final checks: the answer holds the asked kind of thing (time, quantity with its classifier, place, code,
   agent), names the question's other agents for a when-question, is not an attribute of another name
   ("五矿资本（股票代码…）"), is not masked personal data, not an empty form field, and states the asked
   currency, work unit (人月) or granularity (哪一天 needs a day).

With an LLM the answer is regenerated from the cited passages and kept only if every number and named
entity in it occurs in them.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from llama_index.core.schema import NodeWithScore

from otcdesk.knowledge.chunking import _heading_level
from otcdesk.knowledge.index import KBIndex
from otcdesk.knowledge.masking import TOKEN_RE
from otcdesk.knowledge.protocols import Embedder, LLMClient, Reranker
from otcdesk.knowledge.text import jieba_mod, squash_cjk_spaces, key_terms, numbers_in, split_sentences, sub_terms

REFUSAL = "知识库中没有找到能回答这个问题的依据，无法回答。"
DEFAULT_THRESHOLD = 0.5
SCAN_ALL_CHUNKS = 5000
READER_TOP = 8
ASPECT_MIN = 0.5
_WANTS_NUMBER = re.compile(r"多少|几|哪一?年|何时|什么时候|时间|日期|比例|金额|规模|数量|百分|编号|代码|号码|电话")
_ANSWER_TYPE = re.compile(
    r"^(?:时间|日期|时候|地点|地址|名称|名字|项目名称|数量|金额|数字|内容|情况|方式|类型|编号|项目编号|登记号|号码|代码|"
    r"批文|文号|称为|级别|等级|奖项|频率|周期|比例|规模|要求|作用|目的|原因|特点|区别|步骤|流程|条件)$")
SYNONYMS = {
    "每天": ("日均", "每日"), "每日": ("日均", "每天"), "日均": ("每天", "每日"), "每年": ("年均",),
    "人力": ("人数",), "公司": ("单位",), "单位": ("公司",), "成立": ("设立", "创立"),
    "地址": ("住所", "地点"), "日期": ("时间",), "批文": ("函", "文号"), "称为": ("也称", "又称", "简称", "称作", "叫做"), "编号": ("号",),
    "登记号": ("登字", "登记"), "准确率": ("正确率",), "合作": ("联合",), "上线": ("投产",),
    "客户": ("投资者",), "投资者": ("客户",), "电话": ("热线",), "热线": ("电话",), "股票代码": ("证券代码",),
    "证券代码": ("股票代码",), "注册资本": ("注册资金",), "员工": ("雇员",), "营收": ("营业收入",),
    "荣誉": ("奖项", "奖", "案例", "称号"), "奖项": ("奖", "荣誉"), "级别": ("级",), "耗时": ("时间",),
    "安排": ("计划", "日程"), "位于": ("地址", "位于"),
    "客服": ("客户服务",), "客服热线": ("客户服务热线", "客服电话", "热线"), "客服电话": ("客户服务热线", "客服热线"),
    "场外期权": ("场外衍生品",), "网址": ("网站",), "名字": ("名称",), "官方": ("网址", "网站"), "网站": ("网址",), "KYC": ("准入",), "kyc": ("准入",),
}
_STRONG_POS = ("n", "nr", "ns", "nt", "nz", "nrt", "nrfg", "eng", "j", "x", "vn", "l", "i", "t")
_ANSWER_TYPES = [
    ("time", re.compile(r"何时|什么时候|哪一?年|哪一?天|哪个月|哪月|日期|多久|多长时间|时间")),
    ("quantity", re.compile(r"多少|几|多大|多高|多长|比例|金额|数量|规模|占比|比率")),
    ("place", re.compile(r"哪里|在哪|地址|位于|哪条路|哪个城市|哪座城市")),
    ("phone", re.compile(r"电话|热线|传真|手机")),
    ("code", re.compile(r"代码|编号|号码|登记号|备案号|许可证号")),
    ("agent", re.compile(r"哪家|哪个(?:公司|机构|单位|部门)|哪些(?:公司|机构|单位|部门)|谁")),
]
_TYPE_EVIDENCE = {
    "time": re.compile(r"\d{4}\s*年|\d{1,2}\s*月|\d+\s*日|\d+\s*个?\s*(?:天|工作日|交易日|小时|分钟|秒|周|月|年)|当天|次日|T\+\d|"
                       r"[一二两三四五六七八九十]+个?(?:天|工作日|交易日|周|月|年)|[秒分]级|小时级|分钟级|每[日周月年]"),
    "quantity": re.compile(r"\d|[一二两三四五六七八九十百千万亿几数]+\s*(?:个|家|项|笔|次|人|名|篇|种|类|大|倍|亿|万|千|百|余|"
                           r"成|层|级|期|批|线|档|步|轮|条|张|套|位|阶段|方面|点)|上百|上千|数百|数千|数十|若干|全部|所有"),
    "place": re.compile(r"省|市|区|县|路|街|号|大厦|广场|大道|园区|香港|北京|上海|深圳|境内|境外"),
    "code": re.compile(r"[A-Za-z0-9][A-Za-z0-9\-.]{2,}|\d{3,}"),
    "phone": re.compile(r"\d{5,}|\d{3,4}-\d{3,}|\[PHONE_"),
    "agent": re.compile(r"[\u4e00-\u9fffA-Za-z]{2,12}(?:公司|交易所|银行|集团|中心|协会|研究院|大学|委员会|"
                        r"监管局|管理局|总部|事业部)|[\u4e00-\u9fff]{2,6}(?:证券|基金|期货)(?![\u4e00-\u9fff])|"
                        r"人员|团队|小组|员工|客户|投资者|交易员|开发者|\[NAME_"),
}
_CN_NUM = "一二三四五六七八九十"
_FUNCTION_CHARS = set("后前时中内外上下的了在和与及或等由对向从将把被是为于以")
_LIGHT_VERBS = set("获得 取得 进行 采用 使用 实现 提供 包括 包含 负责 属于 设置 设立 开展 具有 拥有 达到 需要 涉及 支持 完成 "
                   "建立 成为 位于 用于 通过 得到 获 有 做 给 让 应 可 能 会 要".split())
_MASK_ONLY = r"[\W_]+|电话|手机|邮箱|联系人|姓名|身份证|卡号|账号"
_LATIN_OR_NUM = re.compile(r"^[a-z0-9][a-z0-9.\-+]*$")
_ENTITY_SUFFIX = re.compile(r"(公司|证券|交易所|银行|基金|期货|集团|中心|协会|研究院|大学|委员会|管理局|监管局)$")
# "由哪家券商牵头": the noun after 哪家 names the kind of agent asked for (the answer), not a detail to find
_ASKED_AGENT = re.compile(r"(?:哪家|哪一家|哪个|哪些)(券商|证券公司|公司|机构|单位|企业|银行|交易所)")
# "海通证券牵头的项目", "2024年6月填报的项目": a role word after a name or date describes the document
_ROLE_OF_DOC = re.compile(r"(牵头|申报|填报|主导|公示)的")
_DATE_TAIL = re.compile(r"(\d{4}\s*年(?:\s*\d{1,2}\s*月)?(?:\s*\d{1,2}\s*[日号])?)\s*$")


def _norm_date(text: str) -> str:
    """Spaces and leading zeros dropped: "2022年01月18日" and "2022 年 1 月" compare."""
    return re.sub(r"(?<!\d)0(\d)", r"\1", re.sub(r"\s+", "", text))


_CURRENCY = re.compile(r"美元|美金|港元|港币|欧元|日元|英镑|澳元|新加坡元|瑞士法郎|人民币|韩元|卢布")
_CURRENCY_CANON = {"美金": "美元", "港币": "港元"} | {c: c for c in
                   "美元 港元 欧元 日元 英镑 澳元 新加坡元 瑞士法郎 人民币 韩元 卢布".split()}
# a firm named in the question: two to four characters before 证券/基金/期货/银行, not 证券公司/证券业务
_FIRM_NAME = re.compile(r"([\u4e00-\u9fff]{2,4})(证券|基金|期货|银行|保险|信托)(?!公司|业务|行业|期货|市场|交易|机构|经营|投资)")
_NAME_BREAK = "的了在和与及或由对向从将把被是为于以哪几何谁什么各每该本其里中多少家有设"
_PILOT_CITY = re.compile(r"([\u4e00-\u9fff]{2,3}?)(?:市)?(?:资本市场)?(?:金融科技创新|金融科技)?试点")
_WANTS_DAY = re.compile(r"哪一?天|几号|几月几[日号]|哪一?日")
_WORK_UNIT = re.compile(r"(?:多少|几)\s*(人月|人天|人日|人年|工时|工日|人时)")
_IDENTITY_LABELS = ("填报时间", "项目编号", "项目名称", "牵头申报单位")


@dataclass
class Candidate:
    node: NodeWithScore
    coverage: float
    missing: list[str] = field(default_factory=list)
    rank: int = 0
    order: tuple = ()


class Answerer:
    """Retrieve, decide (answer or refuse), extract or generate, cite."""

    def __init__(self, index: KBIndex, llm: LLMClient | None = None, embedder: Embedder | None = None,
                 reranker: Reranker | None = None, threshold: float = DEFAULT_THRESHOLD,
                 llm_timeout: float | None = None):
        self.index, self.llm, self.embedder, self.reranker = index, llm, embedder, reranker
        self.threshold = threshold
        self.llm_timeout = llm_timeout
        self._df: dict[str, int] = {}
        self._doc_text: dict[str, str] = {}
        self._topic: dict[tuple[str, str], bool] = {}
        self._sections: dict[str, dict[str, str]] = {}
        self._phrases: set[str] = set()
        self._pos: dict[str, str] = {}
        self._entities: set[str] = set()
        self._titles: dict[str, bool] = {}
        self._title_next: dict[str, str] = {}
        self._sent_freq = None
        self._doc_hit: dict[tuple[str, str], bool] = {}
        self._sec_hit: dict[tuple[str, int], bool] = {}
        self._boiler: dict[str, float] = {}
        self._spread: dict[tuple[str, str], float] = {}
        self._share: dict[tuple[str, str], float] = {}
        self._qtypes: list[str] = []
        self._question = ""
        self._alias_map: dict[str, str] | None = None
        self._quoted: set[str] | None = None
        self._quoted_in_q: set[str] = set()
        self._phrase_parts: dict[str, tuple[str, str]] = {}
        self._identity: dict[str, str] = {}
        self._roles: list[tuple[str, str]] = []
        self._ident_hit: dict[tuple[str, str], bool] = {}
        self._names_doc: dict[tuple[str, str], bool] = {}

    # ---- term statistics ---------------------------------------------------------------------
    def _n_chunks(self) -> int:
        return max(1, sum(len(i["chunk_ids"]) for i in self.index.manifest.values()))

    def df(self, term: str) -> int:
        if term not in self._df:
            self._df[term] = sum(1 for cid in self.index.chunk_ids() if term in self.index.lower_text(cid))
        return self._df[term]

    def idf(self, term: str) -> float:
        n, d = self._n_chunks(), self.df(term)
        return math.log(1 + (n - d + 0.5) / (d + 0.5))

    def doc_text(self, source: str) -> str:
        if source not in self._doc_text:
            ids = self.index.manifest.get(source, {}).get("chunk_ids", [])
            self._doc_text[source] = "\n".join(self.index.lower_text(c) for c in ids)
        return self._doc_text[source]

    def is_topic(self, term: str, source: str) -> bool:
        """A word the document is about (its firm or project): in several of its passages, rare elsewhere.
        An institution counts under its short name too (中国银河证券股份有限公司 → 银河证券); so does a
        name in the document's identity header (its project, lead applicant, filing date)."""
        if self.in_identity(term, source):
            return True
        if _ENTITY_SUFFIX.search(term):
            short = re.sub(r"(?:股份有限公司|有限责任公司|有限公司)$", "", term)
            short = re.sub(r"^(?:中国|上海|北京|深圳)", "", short)
            if short != term and len(short) >= 3 and self._is_topic(short, source, named=True):
                return True
        return self._is_topic(term, source)

    def _is_topic(self, term: str, source: str, named: bool = False) -> bool:
        key = (term, source)
        if key not in self._topic:
            ids = self.index.manifest.get(source, {}).get("chunk_ids", [])
            n = sum(1 for c in ids if term in self.index.lower_text(c) and self.boilerplate(c) < 0.5)
            # an institution is a topic only when it is the document's main subject, not a partner named
            # in one section (上交所技术有限责任公司 in 海通证券's filing)
            named = named or term in self._entities or _ENTITY_SUFFIX.search(term)
            # only names can be a document's subject; a common noun repeated across sections
            # (注册资本 in each company's profile) is an attribute, not the topic
            pos = self._pos.get(term, "x")
            nameish = named or pos.startswith(("x", "nz", "nt", "nr", "ns", "eng", "j", "l")) or term in self._phrases
            need = 5 if named else 3
            # with one document there is nothing to tell apart: every word must be found locally
            several = len(self.index.manifest) > 1
            self._topic[key] = several and bool(nameish) and n >= need and n >= 0.5 * self.df(term)
        return self._topic[key]

    def identity(self, source: str) -> str:
        """The document's identity, a contextual header every passage of it carries for matching (never
        quoted as an answer): its form title, filing date, project number and name, lead applicant (with
        short names), so "海通证券的大模型项目的填报时间" finds the header's date although 海通证券 is
        stated on another page."""
        if source not in self._identity:
            ids = self.index.manifest.get(source, {}).get("chunk_ids", [])
            text = "\n".join(self.index.lower_text(c) for c in ids)
            parts: list[str] = []
            head = self.index.lower_text(ids[0]) if ids else ""
            parts += [ln for ln in head.splitlines()[:4] if "试点" in ln or "公示表" in ln][:1]
            for label in _IDENTITY_LABELS:
                for m in re.finditer(label + r"[^\S\n]*[：:]?[^\S\n]*([^\n]{2,80})", text):
                    value = re.split(r"\s{2,}|\t|[，,；;。]|\s\d+(?:\.\d+)+\s*", m.group(1).strip())[0].strip()
                    if len(value) >= 4 and not re.match(r"^[(（]", value):
                        parts.append(value)  # values only: the asked field itself must be found in the passage
                        if label == "牵头申报单位":
                            short = re.sub(r"(?:股份有限公司|有限责任公司|有限公司)$", "", value)
                            parts.append(short)
                            parts.append(re.sub(r"^(?:中国|上海|北京|深圳)", "", short))
                        break
            self._identity[source] = squash_cjk_spaces("\n".join(parts))
        return self._identity[source]

    def in_identity(self, term: str, source: str) -> bool:
        """A name that identifies the document (in its identity header, not a word used everywhere), or
        a role word tying such a name or date to the document ("海通证券牵头的", "2024年6月填报的")."""
        key = (term, source)
        if key not in self._ident_hit:
            self._ident_hit[key] = self._in_identity(term, source)
        return self._ident_hit[key]

    def _in_identity(self, term: str, source: str) -> bool:
        for role, before in self._roles:
            if self._names_document(before, source):
                m = _DATE_TAIL.search(before)
                if term == role or (m and term.isdigit() and term in re.findall(r"\d+", m.group(1))):
                    return True
        return self._names_in_identity(term, source)

    def _names_in_identity(self, term: str, source: str) -> bool:
        if not term or _ANSWER_TYPE.match(term):
            return False
        ident = self.identity(source)
        title = ident.split("\n", 1)[0]
        if self._pos.get(term, "").startswith("ns") and term in title:
            return True  # the pilot's city in the form's title
        if self.df(term) > 0.25 * self._n_chunks() and len(term) < 4:
            return False
        full = self.aliases().get(term)
        return term in ident or bool(full and any(len(v) >= 4 and v in full for v in ident.splitlines()))

    def _names_document(self, before: str, source: str) -> bool:
        """Does the question text just before a role word name this document (its date or a name)?"""
        key = (before, source)
        if key not in self._names_doc:
            self._names_doc[key] = self._names_document_uncached(before, source)
        return self._names_doc[key]

    def _names_document_uncached(self, before: str, source: str) -> bool:
        if re.search(r"(?:哪|几|何|什么|谁|多少)\S{0,3}$", before):
            return False  # "是哪天填报的": the role word is what is asked
        ident = _norm_date(self.identity(source))
        m = _DATE_TAIL.search(before)
        if m:
            return _norm_date(m.group(1)) in ident
        words = [w for w in key_terms(before)] if before.strip() else []
        return bool(words) and self._names_in_identity(words[-1].lower(), source)

    def section_text(self, chunk_id: str, source: str) -> str:
        """Text of the passages sharing this passage's top two heading levels (a table section)."""
        if source not in self._sections:
            groups: dict[str, list[str]] = {}
            key_of: dict[str, str] = {}
            for cid in self.index.manifest.get(source, {}).get("chunk_ids", []):
                node = self.index.node(cid)
                heading = node.metadata.get("heading", "") if node else ""
                key = node.metadata.get("section") if node and "section" in node.metadata else " > ".join(
                    heading.split(" > ")[:2])
                key_of[cid] = key
                groups.setdefault(key, []).append(cid)
            texts = {k: "\n".join(self.index.lower_text(c) for c in v) for k, v in groups.items()}
            self._sections[source] = {cid: texts[k] for cid, k in key_of.items()}
        return self._sections[source].get(chunk_id, "")

    def query_terms(self, question: str) -> tuple[str, ...]:
        """Key terms of the question, with institution names merged into one term
        (上海+商汤+智能+科技+有限公司 → 上海商汤智能科技有限公司) and adjacent pairs that the
        knowledge base uses as one phrase (投入+资金 → 投入资金) added."""
        import jieba.posseg as pseg

        jieba_mod()
        # per-question state: what counts as a name, phrase or topic depends on this question only
        self._entities, self._phrases, self._phrase_parts = set(), set(), {}
        self._quoted_in_q, self._pos, self._topic = set(), {}, {}
        self._qtypes = self.answer_types(question)
        self._question = question
        self._roles = [(m.group(1), question[:m.start()].lower()) for m in _ROLE_OF_DOC.finditer(question)]
        self._ident_hit = {}
        for w, flag in pseg.cut(question):
            self._pos.setdefault(w.lower(), flag)
        q = question.lower()
        terms = list(key_terms(question))
        # merge runs of terms that name one thing the KB knows: an institution (上海商汤智能科技有限公司)
        # or a long title quoted from a document (安全语料构建与评估系统研究)
        pos: list[tuple[int, int]] = []
        cursor = 0
        for t in terms:
            at = q.find(t, cursor)
            at = at if at >= 0 else q.find(t)
            pos.append((at, at + len(t)))
            cursor = max(cursor, at + len(t)) if at >= 0 else cursor
        merged: list[str] = []
        i = 0
        while i < len(terms):
            found = None
            for j in range(min(len(terms), i + 10), i + 1, -1):
                joined = "".join(terms[i:j])
                raw = q[pos[i][0]:pos[j - 1][1]] if pos[i][0] >= 0 and pos[j - 1][0] >= pos[i][0] else ""
                if joined in q and _ENTITY_SUFFIX.search(joined) and len(joined) >= 4 and self.df(joined) > 0:
                    found = (j, joined)
                elif j - i >= 3 and len(raw) >= 8 and raw.count(" ") == 0 and self.is_title(raw):
                    found = (j, raw)
                if found:
                    break
            if found:
                merged.append(found[1])
                self._entities.add(found[1])
                i = found[0]
                # a title cut inside a word (…共享生态|建设项目 vs the KB's …共享生态建设): absorb the word
                nxt = self._title_next.get(found[1], "")
                if i < len(terms) and len(terms[i]) >= 2 and nxt.startswith(terms[i][:2]):
                    i += 1
            else:
                merged.append(terms[i])
                i += 1
        # a two-character word the KB never uses, whose edge character belongs to its neighbour
        # (后单|节点 where the KB writes 单节点), is a segmentation artifact: re-cut it
        fixed: list[str] = []
        for i, t in enumerate(merged):
            if len(t) == 3 and not _LATIN_OR_NUM.match(t):
                if t[-1] in "对的在和与及或由向从将把被为于以" and self.df(t[:-1]) > 0:
                    t = t[:-1]  # 系统对 → 系统 (jieba glues the preposition on)
                elif t[0] in "对的在和与及或由向从将把被为于以" and self.df(t) == 0 and self.df(t[1:]) > 0:
                    t = t[1:]
            if len(t) == 2 and self.df(t) == 0 and not _LATIN_OR_NUM.match(t):
                nxt = merged[i + 1] if i + 1 < len(merged) else ""
                prv = fixed[-1] if fixed else ""
                if nxt and t[0] in _FUNCTION_CHARS and t[1] + nxt in q and self.df(t[1] + nxt) > 0:
                    merged[i + 1] = t[1] + nxt
                    continue
                if prv and t[1] in _FUNCTION_CHARS and prv + t[0] in q and self.df(prv + t[0]) > 0:
                    fixed[-1] = prv + t[0]
                    continue
            fixed.append(t)
        merged = fixed
        # a name the documents quote (“日日新”) that the question uses, however jieba cut it
        for name in self.quoted_names():
            if name in q and name not in merged and len(name) >= 3:
                inside = [t for t in merged if t in name]
                if inside and all(t in name for t in inside):
                    merged = [t for t in merged if t not in name or t == name] + [name]
                    self._entities.add(name)
                    self._quoted_in_q.add(name)
        for t in merged:
            if t in self.aliases():
                self._entities.add(t)
            if _ENTITY_SUFFIX.search(t) and len(t) >= 4 or self._pos.get(t, "").startswith(("nt", "nr", "ns")):
                self._entities.add(t)
        # "项目叫什么名字", "项目是什么类型": 项目 is a stop word, but with the label it is the form's field
        m_lab = re.search(r"项目(?:叫|的|是|属于)?(?:什么|哪种|哪个)?(名字|名称|类型|编号|简介)", q)
        if m_lab:
            label = "项目" + {"名字": "名称"}.get(m_lab.group(1), m_lab.group(1))
        elif re.search(r"项目(?:叫|称为|名为)(?:什么|啥)", q):
            label = "项目名称"
        else:
            label = ""
        if label:
            if label not in merged and self.df(label) > 0:
                merged.append(label)
        phrases = []
        for a, b in zip(merged, merged[1:]):
            ph = a + b
            if ph in q and self.df(ph) > 0 and ph not in merged:
                phrases.append(ph)
                self._phrase_parts[ph] = (a, b)
        self._phrases.update(phrases)
        return tuple(merged + phrases)

    def quoted_names(self) -> set[str]:
        """Names the documents put in quotes or title marks: “日日新”, 《隐私计算金融应用白皮书(2022)》."""
        if self._quoted is None:
            names: set[str] = set()
            for cid in self.index.chunk_ids():
                for m in re.finditer(r"[“《「]([^”》」\n]{2,16})[”》」]", self.index.lower_text(cid)):
                    names.add(m.group(1).strip())
            self._quoted = names
        return self._quoted

    def aliases(self) -> dict[str, str]:
        """Short names the documents define: 深圳证券通信有限公司（简称“深证通”） → {深证通: 深圳证券通信有限公司}."""
        if self._alias_map is None:
            pat = re.compile(r"([\u4e00-\u9fffa-z（）()]{4,40}?(?:公司|交易所|银行|集团|中心|协会))\s*[（(]"
                             r"(?:以下)?简称[：:]?\s*[“\"]?([^”\"）)，,]{2,10})[”\"]?[）)]")
            found: dict[str, str] = {}
            for cid in self.index.chunk_ids():
                for m in pat.finditer(self.index.lower_text(cid)):
                    alias = m.group(2).strip()
                    if len(alias) >= 3 and alias not in ("本公司", "公司", "我公司", "技术公司", "交易所"):
                        found.setdefault(alias, m.group(1))
            self._alias_map = found
        return self._alias_map

    def _doc_share(self, term: str, source: str) -> float:
        """Share of the document's passages that contain `term`."""
        key = (term, source)
        if key not in self._share:
            ids = self.index.manifest.get(source, {}).get("chunk_ids", [])
            self._share[key] = (sum(1 for c in ids if term in self.index.lower_text(c)) / len(ids)) if ids else 0.0
        return self._share[key]

    def _in_doc(self, term: str, source: str) -> bool:
        key = (term, source)
        if key not in self._doc_hit:
            self._doc_hit[key] = term in self.doc_text(source)
        return self._doc_hit[key]

    def _in_section(self, term: str, chunk_id: str, source: str) -> bool:
        text = self.section_text(chunk_id, source)
        key = (term, id(text))
        if key not in self._sec_hit:
            self._sec_hit[key] = term in text
        return self._sec_hit[key]

    def boilerplate(self, chunk_id: str) -> float:
        """Share of a passage made of sentences repeated in 3+ passages (forms, pledges, disclaimers)."""
        if self._sent_freq is None:
            from collections import Counter

            freq: Counter = Counter()
            for cid in self.index.chunk_ids():
                freq.update({re.sub(r"\W+", "", x) for x in split_sentences(self.index.lower_text(cid))})
            self._sent_freq = freq
        if chunk_id not in self._boiler:
            sents = [re.sub(r"\W+", "", x) for x in split_sentences(self.index.lower_text(chunk_id))]
            total = sum(len(x) for x in sents) or 1
            self._boiler[chunk_id] = sum(len(x) for x in sents if len(x) >= 8 and self._sent_freq[x] >= 3) / total
        return self._boiler[chunk_id]

    def is_title(self, text: str) -> bool:
        """True when the KB names something with `text`: quoted, or the value of a 名称 row."""
        if text not in self._titles:
            pat = re.compile(r"(?:名称[：:][^\n]{0,30}|[“《「\"][^”》」\"\n]{0,8})" + re.escape(text))
            self._titles[text] = False
            if self.df(text) > 0:
                for c in self.index.chunk_ids():
                    lt = self.index.lower_text(c)
                    m = pat.search(lt) if text in lt else None
                    if m:
                        self._titles[text] = True
                        self._title_next[text] = lt[m.end():m.end() + 4]
                        break
        return self._titles[text]

    def is_asked_kind(self, term: str) -> bool:
        m = _ASKED_AGENT.search(self._question)
        return bool(m and m.group(1) == term)

    def weight(self, term: str) -> float:
        if self.is_asked_kind(term):
            return 0.3 * self.idf(term)
        if term in self._phrases:
            a, b = self._phrase_parts.get(term, (term, term))
            return 0.7 * min(self.idf(term), max(self.idf(a), self.idf(b)))
        if self._is_verbish(term):
            return 0.4 * self.idf(term)  # verbs are paraphrased freely (降到/将至, 位于/在)
        return self.idf(term)

    def _is_verbish(self, term: str) -> bool:
        pos = self._pos.get(term, "n")
        return pos.startswith(("v", "d", "a", "p", "c", "u", "r", "m", "q", "f")) and not pos.startswith("vn")

    def credit(self, term: str, chunk_id: str, source: str) -> float:
        """How well a passage supports one term: in it 1, in its section or a topic of its document 0.9,
        elsewhere in its document 0.2 (synonyms count 0.9 of that); a word the KB never uses gets
        partial credit for its parts."""
        best = 0.0
        full = self.aliases().get(term)
        variants = [(term, 1.0)] + ([(full, 1.0)] if full else []) + [(syn, 0.9) for syn in SYNONYMS.get(term, ())]
        for cand, factor in variants:
            if cand in self.index.lower_text(chunk_id):
                c = 1.0
            elif self._in_section(cand, chunk_id, source):
                c = 0.9
            elif self._in_doc(cand, source):
                c = 0.9 if self.is_topic(cand, source) else 0.2
            else:
                c = 0.0
            best = max(best, c * factor)
        if best == 0.0 and self.df(term) == 0 and len(term) >= 3:
            parts = sub_terms(term)
            text = self.index.lower_text(chunk_id)
            best = 0.5 * sum(1 for p in parts if p in text) / len(parts) if parts else 0.0
        return best

    def coverage(self, terms: tuple[str, ...], chunk_id: str, source: str) -> tuple[float, list[str]]:
        """IDF-weighted share of `terms` the passage supports, and the distinctive terms it lacks:
        a rare noun not in the passage's section (and not a topic of its document), a phrase its
        document never uses, or a detail of the question none of whose words the passage's section holds."""
        total = got = 0.0
        missing = []
        rare = max(3, 0.1 * self._n_chunks())
        noun_aspects: list[tuple[float, float]] = []
        verb_aspects: list[tuple[float, float]] = []
        for t in terms:
            w = self.weight(t)
            c = self.credit(t, chunk_id, source)
            total += w
            got += c * w
            if t in self._phrases:
                a, b = self._phrase_parts.get(t, ("", ""))
                specific = any(self._pos.get(p, "n").startswith(("n", "x", "eng", "j")) and not _ANSWER_TYPE.match(p)
                               and self.df(p) <= rare for p in (a, b))
                if c == 0.0 and specific and not any(syn in self.doc_text(source) for syn in SYNONYMS.get(t, ())):
                    missing.append(t)
                continue
            if ((t in self._entities and (_ENTITY_SUFFIX.search(t) or t in self._quoted_in_q)
                 or self._pos.get(t, "").startswith(("ns", "nr", "nt"))) and c < 0.5 and not _LATIN_OR_NUM.match(t)):
                missing.append(t)  # an institution named in the question must be in the passage's section
                continue
            if self.is_asked_kind(t):
                continue
            if _ANSWER_TYPE.match(t):
                if len(t) >= 4 and c == 0.0 and self.df(t) > 0:
                    missing.append(t)  # a form label (项目编号) other documents have and this one lacks
                continue
            if self.df(t) <= rare and self._pos.get(t, "n").startswith(_STRONG_POS) and c == 0.0:
                missing.append(t)
            if t not in self._entities and not self.is_topic(t, source) and self._doc_share(t, source) <= 0.4:
                # details: words specific within the document (not 风险/系统 on every page of a risk filing)
                if not self._is_verbish(t):
                    noun_aspects.append((w, c))
                elif t not in _LIGHT_VERBS:
                    verb_aspects.append((w, c))
        # with no noun detail, the question's own verbs must be found (light verbs such as 获得 excepted)
        aspects = noun_aspects or verb_aspects
        aspect_w = sum(w for w, _ in aspects)
        aspect_got = sum(w for w, c in aspects if c >= 0.9)
        if aspect_w and aspect_got / aspect_w < ASPECT_MIN:
            missing.append("(detail)")
        # the head of the question ("年度运维预算" → 预算): its last specific noun must be found near the answer
        heads = [t for t in terms if t not in self._phrases and t not in self._entities and not self._is_verbish(t)
                 and not _ANSWER_TYPE.match(t) and not self.is_asked_kind(t)
                 and not self.is_topic(t, source) and not _LATIN_OR_NUM.match(t)
                 and self._pos.get(t, "n").startswith(("n", "vn", "x", "j", "l", "t"))]
        if heads and self._doc_share(heads[-1], source) <= 0.4:
            head = heads[-1]
            text = self.index.lower_text(chunk_id)
            variants = (head, self.aliases().get(head, head)) + tuple(SYNONYMS.get(head, ()))
            if not any(v in text for v in variants):
                missing.append(head)
            else:
                # a verb glued to the head ("验收标准" cut as 验收|标准) is part of what is asked
                q = self._question.lower()
                i = terms.index(head)
                prev = terms[i - 1] if i > 0 else ""
                if prev and self._is_verbish(prev) and prev not in _LIGHT_VERBS and (prev + head) in q \
                        and self.credit(prev, chunk_id, source) < 0.9:
                    missing.append(prev)
        # "投入了多少资金": the action that is being counted must be stated near the answer
        m_act = re.search(r"([\u4e00-\u9fff]{2})了?(?:多少|几)", self._question)
        if m_act and m_act.group(1) in terms and self._is_verbish(m_act.group(1)) and m_act.group(1) not in _LIGHT_VERBS \
                and self.credit(m_act.group(1), chunk_id, source) < 0.9:
            missing.append(m_act.group(1))
        # "哪一年上市": for a when-question the event itself must be stated near the answer
        if "time" in self._qtypes and verb_aspects and noun_aspects:
            vw = sum(w for w, _ in verb_aspects)
            if sum(w for w, c in verb_aspects if c >= 0.9) / vw < ASPECT_MIN:
                missing.append("(event)")
        return (got / total if total else 0.0), missing

    @staticmethod
    def hard_terms(terms: tuple[str, ...]) -> list[str]:
        """Numbers, codes and Latin words: if the question names one, the evidence must contain it."""
        return [t for t in terms if _LATIN_OR_NUM.match(t)]

    # ---- main entry --------------------------------------------------------------------------
    def candidates(self, question: str, k: int = 8) -> tuple[tuple[str, ...], list[Candidate]]:
        """Score passages by coverage (all of them in a small KB, else those of the best-retrieved
        documents); passages lacking a distinctive term sort last; the question's details found in
        the passage itself, then retrieval rank, break ties."""
        terms = self.query_terms(question)
        hits = self.index.hybrid(question, k=30, embedder=self.embedder, reranker=self.reranker)
        rank_of = {h.node.node_id: r for r, h in enumerate(hits)}
        if self._n_chunks() <= SCAN_ALL_CHUNKS:
            docs = sorted(self.index.manifest)
        else:
            docs = list(dict.fromkeys(h.node.metadata.get("source", "") for h in hits))[:5]
        cands = []
        for src in docs:
            aspect_w = {t: self.weight(t) for t in terms
                        if t not in self._entities and not self.is_topic(t, src) and t not in self._phrases}
            all_w = {t: self.weight(t) for t in terms}
            aspect_total = sum(aspect_w.values()) or 1.0
            all_total = sum(all_w.values()) or 1.0
            for cid in self.index.manifest.get(src, {}).get("chunk_ids", []):
                cov, missing = self.coverage(terms, cid, src)
                if cov < 0.3 and cid not in rank_of:
                    continue
                text = self.index.lower_text(cid)
                direct = sum(w for t, w in aspect_w.items() if t in text) / aspect_total
                direct_all = sum(w for t, w in all_w.items() if t in text) / all_total
                ents = [t for t in terms if t in self._entities]
                ent_here = (sum(1 for t in ents if any(v in text or self._in_section(v, cid, src)
                                                       for v in (t, self.aliases().get(t, t)))) / len(ents)
                            if ents else 1.0)
                nws = hits[rank_of[cid]] if cid in rank_of else NodeWithScore(node=self.index.node(cid), score=0.0)
                c = Candidate(nws, cov, missing, rank_of.get(cid, 99))
                node = nws.node
                own = (node.metadata.get("heading", "") or "").split(" > ")[-1].lower()
                head_hit = sum(w for t, w in all_w.items() if t in own) / all_total if own else 0.0
                c.order = (bool(missing), -(cov + 0.3 * direct + 0.1 * direct_all + 0.15 * ent_here + 0.15 * head_hit
                                            + 0.02 / (1 + c.rank) - 0.4 * self.boilerplate(cid)))
                cands.append(c)
        cands.sort(key=lambda c: c.order)
        # reader step: among the leading passages, prefer the one holding a unit that answers
        head = [c for c in cands[:READER_TOP] if not c.missing]
        if len(head) > 1:
            for c in head:
                _, _, unit_score = self._best_units(question, terms, c.node)
                c.order = (False, c.order[1] - 0.5 * unit_score)
            head.sort(key=lambda c: c.order)
            cands = head + [c for c in cands if c not in head]
        return terms, cands

    def ask(self, question: str, k: int = 5) -> dict:
        """Answer `question` (CONTRACTS: answer, refused, citations) with extras for the console."""
        question = english_terms_to_chinese(question.strip())
        terms, cands = self.candidates(question, k)
        if not terms or not cands:
            return self._refuse("no_terms" if not terms else "no_hits", terms)
        unknown = self.unknown_names(question, terms)
        if unknown:
            return self._refuse("unknown_name", terms, cands[0], unknown)
        best = cands[0]
        source = best.node.node.metadata.get("source", "")
        local = self.index.lower_text(best.node.node.node_id) + self.section_text(best.node.node.node_id, source)
        ident = re.sub(r"\s+", "", self.identity(source))
        # numbers of a date that names the document ("2024年6月填报的") are the document's, not the passage's
        doc_date_nums = {n for role, before in self._roles if _DATE_TAIL.search(before)
                         and self._names_document(before, source)
                         for n in re.findall(r"\d+", _DATE_TAIL.search(before).group(1))}
        # a project number ("BJ-SD-202404", "CD-2024-03") names the document: its parts need not be local
        doc_code_parts = {p for code in re.findall(r"[a-z0-9]+(?:-[a-z0-9]+)+", question.lower()) if code in ident
                          for p in code.split("-")}
        hard_missing = [t for t in self.hard_terms(terms) if t not in local and not (
            re.fullmatch(r"(?:19|20)\d\d", t) and re.search(t[2:] + r"\s*年", local)) and t not in doc_date_nums
            and not (re.search(r"[a-z]|\d{5,}", t) and t in ident) and t not in doc_code_parts]
        for t in self.hard_terms(terms):
            # a year asked about that the evidence only names as the end of a span ("2005-2021年累计")
            if not re.fullmatch(r"(?:19|20)\d\d", t) or t not in local:
                continue
            span = rf"\d{{4}}\s*年?\s*[-—~至到]\s*{t}"
            if not re.search(span, question) and t not in re.sub(span, "", local):
                hard_missing.append(t)
        if hard_missing or best.missing:
            return self._refuse("missing_term", terms, best, hard_missing)
        if best.coverage < self.threshold:
            return self._refuse("low_coverage", terms, best)
        answer, sentence = self.extract(question, terms, best.node)
        if not answer:
            return self._refuse("empty_field", terms, best)
        if not self.has_type(answer, self.answer_types(question), question) and not self._label_answers(
                sentence, terms):
            return self._refuse("answer_type", terms, best)
        m_tail = re.search(r"([^\s：:；;，,]{2,20})[：:]\s*$", answer.strip())
        if m_tail and any(t in m_tail.group(1) and t not in answer.strip()[:m_tail.start()].lower()
                          for t in terms if len(t) >= 2 and not _LATIN_OR_NUM.match(t)):
            return self._refuse("empty_field", terms, best)  # "1.1.2 联合申报单位：" with nothing after it
        if _WANTS_DAY.search(question) and re.search(r"\d", answer) and not re.search(r"\d\s*[日号]", answer):
            return self._refuse("answer_unit", terms, best)  # "哪一天" is not answered by "2013年2月"
        m_unit = _WORK_UNIT.search(question)
        if m_unit and m_unit.group(1) not in answer:
            return self._refuse("answer_unit", terms, best)  # "多少人月" is not answered by "30-40人"
        asked_cur = {_CURRENCY_CANON[c] for c in _CURRENCY.findall(question)} - {"人民币"}
        if asked_cur and not asked_cur & {_CURRENCY_CANON[c] for c in _CURRENCY.findall(answer)}:
            return self._refuse("answer_unit", terms, best)  # "多少美元" is not answered by "130.642亿元"
        if self._attribute_of_other(sentence, terms, question):
            return self._refuse("other_entity", terms, best)
        m_cls = re.search(r"(?:多少|几)\s*([块台家个笔次人名项篇张条套只份位种类所座辆枚])", question)
        cls = m_cls.group(1) if m_cls else ""
        cls_pat = "[个\u4e00-\u9fff]" if cls == "个" else cls  # 个 is generic: "五阶段" answers "几个阶段"
        if cls and not re.search(r"(?:\d|[一二两三四五六七八九十百千万亿几数余多上])\s*" + cls_pat, answer) and not (
                re.search(r"\d", answer) and cls + "数" in best.node.node.get_content()):  # a table headed "笔数"
            return self._refuse("answer_unit", terms, best)  # "多少块GPU" is not answered by "10-15 分钟"
        if "time" in self._qtypes or "quantity" in self._qtypes:
            # who did what, when or how much: the names the question gives must be in the answering sentence
            named = [t for t in terms if (t in self._entities or self._pos.get(t, "").startswith(("j", "nt", "nr", "ns")))
                     and t not in self._phrases]
            named.sort(key=lambda t: question.lower().find(t) if t in question.lower() else len(question))
            names = [t for t in named[1:] if not self.is_topic(t, source)]  # the first is the subject
            ans_l = squash_cjk_spaces(sentence.lower())
            if any(t not in ans_l and self.aliases().get(t, t) not in ans_l for t in names):
                return self._refuse("answer_subject", terms, best)
            # the subject itself: in the answering sentence, its passage or section, or the document's identity
            # ("华夏基金的成立时间" is not answered by "成立以信息技术中心牵头的交接小组" in 中信证券's filing)
            heading = squash_cjk_spaces((best.node.node.metadata.get("heading", "") or "").lower())
            subj = named[0] if named else ""
            if subj and not any(v in ans_l or v in heading or v in local
                                for v in (subj, self.aliases().get(subj, subj))) and not self.in_identity(subj, source):
                return self._refuse("answer_subject", terms, best)
        if TOKEN_RE.search(sentence) and not re.sub(_MASK_ONLY, "", TOKEN_RE.sub("", sentence.split("：")[-1])):
            # the evidence is personal data that was masked at ingestion: not the assistant's to give
            return self._refuse("masked_personal_data", terms, best)
        result = {
            "answer": answer,
            "refused": False,
            "citations": self._citations(best, cands, k),
            "mode": "extractive",
            "coverage": round(best.coverage, 3),
            "key_terms": list(terms),
        }
        if self.llm is not None:
            self._generate(question, result, cands)
        return result

    def unknown_names(self, question: str, terms: tuple[str, ...]) -> list[str]:
        """Names the question relies on that no document holds: a firm (平安证券, while the KB has 海通证券),
        a pilot by its city (成都…试点, while the forms are Shanghai's, Beijing's and Shenzhen's), a compound
        form label no form has (类型代码)."""
        q = question.lower()
        out = []
        for m in _FIRM_NAME.finditer(q):
            prefix, suffix = m.group(1), m.group(2)
            prefix = re.split(r"[" + _NAME_BREAK + r"]", prefix)[-1]
            if len(prefix) < 2 or (len(prefix) >= 3 and self.df(prefix) > 0):
                continue  # "行业云证券共享": a word the KB uses, not a firm
            if not any(self.df(prefix[i:] + suffix) > 0 or prefix[i:] in self.aliases()
                       for i in range(len(prefix) - 1)):
                out.append(prefix + suffix)
        m_city = _PILOT_CITY.search(q)
        if m_city and len(self.index.manifest) > 0:
            city = m_city.group(1)[-2:]
            if self._pos.get(city, "").startswith("ns") and not any(city in self.identity(src).split("\n", 1)[0] for src in self.index.manifest):
                out.append(city + "试点")
        for a, b in zip(terms, terms[1:]):
            if _ANSWER_TYPE.match(a) and _ANSWER_TYPE.match(b) and (a + b) in q and self.df(a + b) == 0:
                out.append(a + b)
        return out

    def _refuse(self, reason: str, terms, best: Candidate | None = None, missing=None) -> dict:
        return {
            "answer": REFUSAL,
            "refused": True,
            "citations": [],
            "mode": "refusal",
            "reason": reason,
            "coverage": round(best.coverage, 3) if best else 0.0,
            "missing_terms": list(dict.fromkeys((missing or []) + (best.missing if best else []))),
            "key_terms": list(terms),
        }

    @staticmethod
    def _cite(nws: NodeWithScore) -> dict:
        md = nws.node.metadata
        return {
            "source": md.get("source", ""),
            "text": nws.node.get_content(),
            "score": float(nws.score or 0.0),
            "chunk_id": nws.node.node_id,
            "heading": md.get("heading", ""),
            "position": md.get("position"),
        }

    def _citations(self, best: Candidate, cands: list[Candidate], k: int) -> list[dict]:
        """The answer's passage first, then other well-covered passages of the same document."""
        out = [self._cite(best.node)]
        src = best.node.node.metadata.get("source")
        for c in cands[1:]:
            if len(out) >= min(k, 3):
                break
            if c.node.node.metadata.get("source") == src and c.coverage >= self.threshold:
                out.append(self._cite(c.node))
        return out

    # ---- extraction --------------------------------------------------------------------------
    def _label_answers(self, unit: str, terms: tuple[str, ...]) -> bool:
        """A "label：value" unit whose label names what the question asks (客户最大损失：…)."""
        m = re.match(r"^([^：:]{1,20})[：:]", unit)
        if not m:
            return False
        label = m.group(1).lower()
        return any(t in label for t in terms if t not in self._entities and not self._is_verbish(t)
                   and not _LATIN_OR_NUM.match(t) and len(t) >= 2)

    def _attribute_of_other(self, unit: str, terms: tuple[str, ...], question: str) -> bool:
        """True when the asked attribute is stated in parentheses for another name than the one asked
        about: "五矿资本（股票代码：600390）" does not answer "五矿证券的股票代码"."""
        ents = [t for t in terms if t in self._entities]
        if not ents:
            return False
        for t in terms:
            if t in self._entities or t in self._phrases or self._is_verbish(t):
                continue
            for m in re.finditer(r"([\u4e00-\u9fffA-Za-z]{2,12})[（(]" + re.escape(t) + r"\s*[：:]", unit.lower()):
                owner = m.group(1)
                if not any(e in owner for e in ents):
                    return True
        return False

    @staticmethod
    def answer_types(question: str) -> list[str]:
        """What kind of thing the question asks for (time, quantity, place, phone, code, agent); a phone
        number or a code asked as "是多少" is that, not a quantity."""
        kinds = [name for name, pat in _ANSWER_TYPES if pat.search(question)]
        for specific in ("phone", "code"):
            if specific in kinds:
                return [specific]
        return kinds

    @staticmethod
    def has_type(text: str, kinds: list[str], question: str = "") -> bool:
        """Whether `text` holds something of the asked kind that the question does not already say."""
        if not kinds:
            return True
        text = re.sub(r"(?m)^\s*(?:\d+(?:\.\d+)+|[（(]?\d{1,2}[)）.、])\s*", "", text)  # list numbers
        text = re.sub(r"[；;。]\s*(?:[（(]?\d{1,2}[)）.、])\s*", "。", text)
        text = re.sub(r"(?:^|(?<=\s))[（(]\d{1,2}[)）]", " ", text)  # "… (1) 项目的主要应用场景": an item number
        for k in kinds:
            for m in _TYPE_EVIDENCE[k].finditer(text):
                if m.group(0) not in question:
                    return True
        return False

    def _best_units(self, question: str, terms: tuple[str, ...], nws: NodeWithScore):
        """(units, ranked (score, index) pairs, best score) of a passage for this question."""
        body = nws.node.get_content()
        src = nws.node.metadata.get("source", "")
        wants_num = bool(_WANTS_NUMBER.search(question))
        kinds = self.answer_types(question)
        m_ord = re.search(r"第([一二三四五六七八九十]|\d{1,2})(?:个|步|条|项|点|种|类|阶段)", question)
        ordinal = 0
        if m_ord:
            g = m_ord.group(1)
            ordinal = int(g) if g.isdigit() else _CN_NUM.index(g) + 1
        units: list[str] = []
        line_of: list[int] = []
        context_lines: list[str] = []
        context: list[str] = []
        current = ""
        for line in body.split("\n"):
            context_lines.append(line)
            h = _heading_level(line.strip()) if line.strip() else None
            if h is not None and h[0] >= 3:
                current = line.strip().lower()
            pieces = split_sentences(line)
            if len(re.findall(r"(?:^|\s)[（(]\d{1,2}[)）]\s*\S", line)) >= 2:
                # "(1) 单位名称: …  (2) 单位类型: …" on one line: one unit per numbered field
                pieces = [x.strip() for p in pieces for x in re.split(r"\s+(?=[（(]\d{1,2}[)）]\s*\S)", p) if x.strip()]
            for u in pieces:
                line_of.append(len(context_lines))
                units.append(u)
                context.append(current if u.strip().lower() != current else "")
        if not units:
            return [], [], -1.0
        ids = self.index.manifest.get(src, {}).get("chunk_ids", [])
        n_doc = max(1, len(ids))

        def spread(t: str) -> float:  # words on most of the document's pages tell its sentences apart poorly
            key = (t, src)
            if key not in self._spread:
                n = sum(1 for c in ids if t in self.index.lower_text(c))
                self._spread[key] = min(1.0, max(0.2, 1.0 - n / n_doc))
            return self._spread[key]

        weights = {t: self.weight(t) * spread(t) * (0.25 if (self.is_topic(t, src) or t in self._entities) else 1.0)
                   for t in terms}
        total = sum(weights.values()) or 1.0
        q_terms = sorted(set(terms) | {p for t in terms for p in sub_terms(t)}, key=len, reverse=True)
        scored = []
        for i, u in enumerate(units):
            ul = squash_cjk_spaces(u.lower())
            m_lab = re.match(r"^([^：:]{1,30})[：:](.*)$", ul, re.S)
            label, value = (m_lab.group(1), m_lab.group(2)) if m_lab else ("", ul)
            if not value.strip() and len(label) > 6 and re.search(r"\d", label):
                label, value = "", ul  # a lead-in sentence ("本项目已获得共 11 项软著：")
            score = sum(w for t, w in weights.items() if t in ul) / total
            score += 0.5 * sum(w for t, w in weights.items() if t not in ul and t in context[i]) / total
            rest = value
            for t in q_terms:
                rest = rest.replace(t, "")
            rest = re.sub(r"[\W_\d.]+", "", rest)
            novelty = len(rest) / max(1, len(re.sub(r"[\W_]+", "", value)))
            if label and any(t in label for t in terms if weights.get(t, 0) and not re.fullmatch(r"\d+", t)
                             and t not in self._entities and not self.is_topic(t, src)):
                score += 0.3  # the row's label names what is asked
            if not value.strip() or re.fullmatch(r"[^：:\d]{0,20}[：:]\s*", u):
                score -= 1.0  # an empty form field
            elif TOKEN_RE.search(value) and not re.sub(_MASK_ONLY, "", TOKEN_RE.sub("", value)):
                score -= 1.5  # only masked personal data: not the assistant's to give
            elif novelty < 0.2 and not (wants_num and re.search(r"\d", value)):
                score -= 0.5
            if wants_num and re.search(r"\d", value):
                score += 0.15
            if kinds:
                score += 0.2 if self.has_type(value, kinds, question) else -0.2
            if ordinal and re.match(rf"^\s*(?:[（(]?{ordinal}[、.．)）]|第{_CN_NUM[ordinal - 1]}[步条项个点是])", u):
                score += 0.8  # "第一个原则" → the unit numbered 1
            if len(u) < 6:
                score -= 0.2
            scored.append((score, i))
        scored.sort(key=lambda x: (-x[0], x[1]))
        self._line_of = line_of
        return units, scored, scored[0][0]

    def extract(self, question: str, terms: tuple[str, ...], nws: NodeWithScore) -> tuple[str, str]:
        """The sentence(s) or table row(s) of the passage that answer, numbers and units intact.

        Units are scored by the question's details they contain (the document's topic words count
        little); a unit that only restates the question (a "名称：<the entity asked about>" row) or
        an empty form field is passed over. The best unit is returned, with the runner-up when it
        scores close (a short answer that misses is worse than two sentences that hold it)."""
        units, scored, best_s = self._best_units(question, terms, nws)
        line_of = getattr(self, "_line_of", [])
        if not units:
            return "", ""
        best_i = scored[0][1]
        if best_s < -0.5:
            return "", ""
        picked = {best_i}
        if len(scored) > 1 and scored[1][0] >= max(0.05, 0.6 * best_s) and len(units[best_i]) + len(
                units[scored[1][1]]) <= 260:
            picked.add(scored[1][1])
        if len(units[best_i]) < 25 and best_i + 1 < len(units) and len(picked) == 1:
            picked.add(best_i + 1)
        if (best_i > 0 and best_i - 1 not in picked and len(units[best_i - 1]) <= 15 and len(line_of) == len(units)
                and line_of[best_i - 1] == line_of[best_i]):
            picked.add(best_i - 1)  # "1、首问负责原则。" introduces the sentence that explains it
        parts = [units[i] for i in sorted(picked)]
        ans = "".join(p if p.endswith(tuple("。！？；!?;")) else p + " " for p in parts).strip()
        return ans, units[best_i]

    # ---- generation --------------------------------------------------------------------------
    def _generate(self, question: str, result: dict, cands: list[Candidate]) -> None:
        passages = [c.node for c in cands[:3] if c.coverage >= self.threshold * 0.8] or [cands[0].node]
        context = "\n\n".join(f"[{i + 1}] ({p.node.metadata.get('source')}) {p.node.get_content()}"
                              for i, p in enumerate(passages))
        messages = [
            {"role": "system", "content": "你是证券公司场外衍生品业务的知识助手。只根据给出的资料回答，简洁准确，"
                                          "保留数字和单位；资料中没有答案时只回答“无法回答”。"},
            {"role": "user", "content": f"资料：\n{context}\n\n问题：{question}\n回答："},
        ]
        try:
            text = (self.llm.complete_text(messages, timeout=self.llm_timeout) or "").strip()
        except Exception as exc:  # the extractive answer stands
            result["llm_rejected"] = f"llm error: {exc.__class__.__name__}"
            return
        passage_text = "\n".join(p.node.get_content() for p in passages)
        ok, unsupported = groundedness(text, passage_text)
        if not text or "无法回答" in text:
            result["llm_rejected"] = "model declined"
        elif not ok:
            result["llm_rejected"] = "unsupported: " + "、".join(unsupported[:5])
        else:
            result["answer"] = text
            result["mode"] = "generated"
            result["citations"] = [self._cite(p) for p in passages]


# English words staff mix into questions, mapped to the words the (Chinese) filings use
_EN_TERMS = [
    (r"lead\s+applicants?|lead\s+(?:institution|unit|firm)", "牵头申报单位"),
    (r"joint\s+applicants?|co-?applicants?", "联合申报单位"),
    (r"project\s+(?:number|no\.?|id)", "项目编号"), (r"project\s+name", "项目名称"),
    (r"project\s+type", "项目类型"), (r"filing\s+date|date\s+of\s+filing|filed", "填报时间"),
    (r"registered\s+capital", "注册资本"), (r"registered\s+address", "注册地址"),
    (r"(?:unified\s+social\s+)?credit\s+code", "统一社会信用代码"),
    (r"budget|funding|investment", "投入资金"), (r"headcount|man-?power|staff(?:ing)?", "投入人力"),
    (r"how\s+many", "多少"), (r"how\s+much", "多少"), (r"which\s+day|what\s+date|when", "哪天"),
    (r"haitong(?:\s+securities)?", "海通证券"), (r"(?:china\s+)?galaxy(?:\s+securities)?", "银河证券"),
    (r"citic\s+securities", "中信证券"), (r"csc(?:\s+financial)?|china\s+securities", "中信建投"),
    (r"cffex", "中金所"), (r"sensetime", "商汤"), (r"project", "项目"), (r"people|persons?", "人"),
]
_EN_RE = [(re.compile(r"(?<![a-z])(?:" + pat + r")(?![a-z])", re.I), zh) for pat, zh in _EN_TERMS]


def english_terms_to_chinese(question: str) -> str:
    """Replace the English form vocabulary and firm names in a mixed question by the filings' words."""
    if not re.search(r"[A-Za-z]{3,}", question):
        return question
    out = question
    for rx, zh in _EN_RE:
        out = rx.sub(zh, out)
    if out == question:
        return question  # nothing of the form's vocabulary: leave codes and product names (GLEBA, RPA) alone
    out = re.sub(r"(?<![a-z])(?:were|was|are|is|to|the|of|for|in|did|does|do)(?![a-z])", " ", out, flags=re.I)
    return re.sub(r"(?<=[\u4e00-\u9fff])\s+(?=[\u4e00-\u9fff?？])", "", out).strip()


def answer_entities(answer: str) -> list[str]:
    """Named things in an answer: Latin words/codes, institution names and 《titles》."""
    jb = jieba_mod()
    import jieba.posseg as pseg  # noqa: F401 - ensures the POS tagger is loaded with our dictionary

    ents: list[str] = []
    ents += re.findall(r"《[^》]{1,40}》", answer)
    ents += [w for w in re.findall(r"[A-Za-z][A-Za-z0-9.\-]{1,}", answer)]
    for w, flag in pseg.cut(answer):
        if len(w) >= 2 and (flag in ("nt", "nr", "ns", "nz") or _ENTITY_SUFFIX.search(w)):
            ents.append(w)
    del jb
    return list(dict.fromkeys(ents))


def groundedness(answer: str, passages: str) -> tuple[bool, list[str]]:
    """Every number and named entity in `answer` must occur in `passages`; returns (ok, unsupported)."""
    compact = re.sub(r"\s+", "", passages).replace(",", "")
    lower = compact.lower()
    unsupported = [n for n in numbers_in(answer) if n.rstrip("%") not in compact]
    for e in answer_entities(answer):
        e2 = re.sub(r"\s+", "", e)
        if e2.lower() not in lower:
            unsupported.append(e)
    return (not unsupported), unsupported
