"""Message → ParseResult: segmentation, grouping, cartesian expansion, conventions, clarification."""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from functools import lru_cache

from .extract import (MASK, Frame, Work, extract_aliases, extract_codes, extract_notional, extract_shorthand,
                      extract_strikes, extract_tenors, extract_terms, extract_words, structure_hint)
from .lexicon import Corrector, default_corrector
from .pool import UnderlyingPool, default_pool
from .text import normalize

FIELD_ORDER = ["underlying", "underlying_name", "structure", "option_type", "tenor", "strike_pct", "upper_strike_pct",
               "strike_level", "barrier_pct", "lower_barrier_pct", "barrier_type", "rebate_pct", "participation_pct",
               "payout_pct", "ko_pct", "ki_pct", "ko_stepdown_pct", "coupon_pct", "coupon_barrier_pct",
               "lockup_months", "ko_observation", "moneyness", "notional", "side", "quote"]
INTENTS = ("quote", "order", "knowledge", "other")
# two-letter product codes that are safe to read standalone (upper case); others need a contract month (rb2510)
SAFE_LATIN_CODES = {"AU", "AG", "CU", "AL", "ZN", "NI", "RB", "HC", "RU", "JM", "CF", "SR", "TA", "MA", "SA", "FG", "SC",
                    "PP", "EG", "UR", "LC", "IF", "IC", "IH", "IM"}
_DOMAIN = re.compile(r"期权|雪球|凤凰|鲨|气囊|敲入|敲出|票息|行权|波动率|保证金|希腊|delta|gamma|vega|平值|实值|虚值|看涨|看跌|"
                     r"价差|二元|障碍|参与率|派息|锁定期|场外|收益凭证|对冲|降敲|观察|结构|产品|报价|有效期|说明书|标的|股票|个股|北交所|交易时间|snowball|option|knock|barrier|coupon|strike", re.I)

_SEGMENT_SPLIT = re.compile(r"[;；。\n!?！？&]+|\s+and\s+(?!(?:calls?|puts?|[cp])(?![a-z]))|(?<!\d)[,，]\s*|[,，](?!\s*\d)\s*|(?=另外|另要|另来|另加|另再|另需|还有|再来|再要|再加|再报|以及|此外|also\b)")
_NEW_GROUP_MARK = re.compile(r"^\s*(另外|另要|另来|另加|另再|另需|还有|再来|再要|再加|再报|以及|此外|also)")
_LIST_MARK = re.compile(r"(?m)^\s*(?:\d{1,2}\s*[.、)）](?!\d)|[①-⑳]|[-*•·>]+)\s*")
_TERMS_BETWEEN = re.compile(r"看涨|看跌|认购|认沽|(?<![a-z])(?:call|put)|平值|atm|虚值|实值|\d+\s*(?:个月|月|周|年|天|[mwyd](?![a-z]))|%|雪球|鲨鱼|凤凰|价差", re.I)
_COMPANY_LIKE = re.compile(r"([\u4e00-\u9fff]{1,6}(?:(指数|集团|科技|股份|控股|银行|证券)|能源|医药|电子|材料|实业|矿业|化工|智能|生物|传媒|食品|汽车|电气|半导体))")
_LEFTOVER = re.compile(r"[\u4e00-\u9fffA-Z]{2,}")
_FILLER = set("""帮我 帮忙 麻烦 请 请问 报个 报一下 报下 询价 询 一下 老板 老师 您好 你好 谢谢 价格 报价 多少 多少钱 期权 标的 期限
规模 名义 本金 名本 结构 方向 类型 行权 行权价 各来 一个 来个 来 大概 现在 今天 我们 你们 我 你 客户 想 要 做 买 卖 需要 急 尽快 看下
看看 问下 一笔 都 和 及 也 还有 另外 再 了 吗 呢 吧 啊 哈 好 辛苦 早上好 各位 兄弟 能否 提供 给个 帮 看 问 求 价 个 下 的 是 有 没有
能 可以 不 一 什么 这个 那个 那 这 报 发 给 找 问问 了解 咨询 需求 一份 能不能 不知道 大约 左右 目前 最新 实时 双边 买价 卖价 费率
元 万 亿 月 年 周 天 点 期 档 张 手 吨 份 先 等 快 慢 急急 急需 下午 上午 中午 今晚 明天 尽早 早 晚 期权费 对应 适合 合适 按照 按 照
询一下 帮忙看下 各报 各 报给 发我 谢 多谢 感谢 辛苦了 总 经理 王总 李总 张总 刘总 陈总 先生 女士 同学 朋友 团队 我司 贵司 你司 公司
权利金 保证金 成本 预算 交易 成交 下单 确认 执行 报单 他 她 它 在 就 还 把 被 让 向 从 对 与 跟 或 些 种 位 次 条 笔 嗯 哦
呀 嘛 啦 哇 噢 额 诶 您 咱 咱们 大家 其他 其它 怎么 如何 为什么 多久 几 哪 哪个 哪些 请教 谢啦 包括 以及 然后 同样 同上 一样
最近 当前 本周 下周 本月 下月 今年 明年 马上 立刻 稍后 回头 尽量 希望 打算 准备 考虑 试试 试 先看 看一下 报一个 来一个""".split())
_ORDER = re.compile(r"做一笔|按(?:你们|你|贵司)?(?:刚才|之前|上次)?(?:报|给)的(?:价格?|报价)?做|按\s*\d+(?:\.\d+)?\s*%\s*(?:的价格?)?\s*做|就?按(?:这个|此|你的|刚才的)?(?:价格?|报价)?做|^\s*做\s*[，,\s]|(?:^|[\s,，])做吧?\s*[!！。]?\s*$|(?:^|[，,。!！\s])确认(?:[，,。!！\s]|$)|做\s*\d+(?:\.\d+)?\s*(?:万|亿|kw|w|e|mm)|下单|确认成交|成交(?!量|额|均价|价格?[是多])|做了|就做|做这笔|做这个|按这个做|按此做|可以做|落单|确认交易|执行吧|就这个吧|就这么定|(?<![a-z])(?:book(?: it)?|deal|done|confirm(?:ed)?)(?![a-z])", re.I)
_KNOW = re.compile(r"([\u4e00-\u9fff])(?<!能)[不没]\1|做不做|能不能做|几点|哪个|有什么|优势|劣势|好处|几号|几天|支持哪些|不一样|有啥|了解|说明书|资料|哪些|风险|还是|多久|多长时间|有效期|一般|通常|合适|哪个好|哪个更|好不好|建议|推荐|还能做吗|能做吗|什么时候|什么叫|什么情况|怎么|怎样|如何|为什么|为啥|什么是|是什么|什么意思|啥意思|啥是|区别|有何不同|不同点|原理|规则|含义|定义|解释|介绍|科普|适合什么|风险点|风险在哪|会不会|能不能提前|是否|吗\s*[?？]?\s*$|呢\s*[?？]?\s*$|what is|how does|how do|why", re.I)
_ASK = re.compile(r"询价|(?<![汇通回申简预情电])(?:报价(?!单)|报个价|报一下|报个|报下)|来一个|来个|来一组|来两个|给个价|给个报价|什么价|多少钱|价格多少|怎么卖|quote|px|price|报给我|帮忙报|帮我报|求报|看看价", re.I)
_INJECTION = re.compile(r"无视|忽略|ignore|规则|指令|prompt|系统提示|system", re.I)
_NOT_ORDER = re.compile(r"(?:做|成交)了\s*[\d一二两三四五六七八九十几多]+\s*笔|下单(?:系统|流程|时间|渠道)|如果|合适的话|的话|成交的|下单的|确认书|成交了?\s*\d+(?:\.\d+)?\s*万?\s*[张手]|可能|到时候|下周|打算|计划|不做|不成交|不下单|先不|暂不|算了|吗\s*[?？]?\s*$|[?？]\s*$|能不能|能否|查一?下|查询|帮我查|哪些|什么|是否|哪个")
_EARLIER = re.compile(r"上次|之前|刚才|再发|重发|发一下|发我|报价单")
_NARRATIVE = re.compile(r"昨天|前天|上周|上个月|上次|之前|以前|刚才|后来|那个|那笔|赚|亏|涨了|跌了|跌破|涨破|突破|存续|到期了|"
                        r"可能要|到时候|下周|回头|改天|年报|财报|了吗|今天.{0,8}(?:涨|跌|波动)|(?:敲出|敲入|行权|结算|到期)了|"
                        r"快(?:要)?(?:敲|到期)|[跌涨]成|收益不错|压力|支撑|阻力|站上|失守|反弹|回调|大涨|大跌|紧张|新高|新低|贴水|升水|"
                        r"差点|险些|差一点|到账|敲出的|敲入的|降到|涨到|升到|跌到|卖得|买得|主要(?:买|卖|做)|开会|讨论|会议|复盘|头寸|持仓")
# a position the client already holds ('300 2周的那笔今天到期', '我那个3个月的看跌快到期了'): even with a tenor
# and terms this is talk about it, unless a new quote is asked for
_POSITION = re.compile(r"那笔|那单|这笔|那个|有一笔|之前(?:买|做|报)的|(?:买|做|报|询)的那")
# a trade already done ('客户上周买了一个月的平值看涨', '我们去年做的两年期雪球', '300的看涨卖了快2个亿'): with no
# request verb, the message talks about it
_PAST_TRADE = re.compile(r"(?<![想要需准备打算])(?:买|卖|做|成交)(?:了|的(?!是|话))|(?:还有|快|将|要|下周|下个月|今天|明天|本周|这周)\S{0,4}到期|持有的?|空头|多头|还剩|一般都|都是做|一直(?:做|买|卖)|通常都|主要(?:买|卖|做)")
# a confirmation that restates the terms ('确认，300 1个月平值看跌 2000万 成交') books a trade, it asks for no quote
_CONFIRM = re.compile(r"确认|成交|下单|就这么定|按报的|(?<![a-z])(?:book|deal|done)(?![a-z])", re.I)
_SHAPE_FIELDS = {"structure", "ko_pct", "ki_pct", "barrier_pct", "lower_barrier_pct", "upper_strike_pct", "coupon_pct",
                 "participation_pct", "payout_pct", "rebate_pct"}
# the client's own position, valued or imagined ('如果明天300跌到3700，我们的看跌大概值多少钱'): not a new quote even
# with a price word
_OWN_POSITION = re.compile(r"(?:我们|客户|我|你们)(?:的|持有的|手上的)(?:看涨|看跌|雪球|鲨鱼鳍|凤凰|期权|持仓|头寸|仓位)")
_HYPOTHETICAL = re.compile(r"如果|假如|要是|假设|跌到|涨到|值多少|估值|盈亏")
# a request for later ('下周可能要做一笔300的看跌，到时候再找你们报价')
_PLAN = re.compile(r"(?:到时候|回头|改天|之后|以后)再")
# greeks of a product ('沪深300平值看涨的delta大概0.5吧'): talk or a knowledge question, not a request
_GREEKS = re.compile(r"(?<![a-z])(?:delta|gamma|vega|theta|rho)(?![a-z])|希腊字母|希腊值", re.I)
# what a product usually costs ('沪深300看涨期权的期权费一般多少'): a knowledge question when no tenor or number pins
# down a request
_TYPICAL = re.compile(r"(?:一般|通常|平均|大概都)(?:来说)?(?:是|在|要)?(?:多少|几)")
_WANT = re.compile(r"(?:想|要|需要|打算|准备)(?:再|个|一个)?(?:买|卖|做|加仓|对冲|保护)")  # '有一笔多头，想买个保护'
_REQUOTE = re.compile(r"重新报|再报|重报|更新一下|刷新")
_POSITION_EVENT = re.compile(r"了结|提前终止|到期|敲出|敲入|行权|结算|赚|亏|平仓|有效|不做|估值|确认书|展期")
# questions about the products that a tenor or strike does not turn into a request ('一年期雪球和两年期的区别',
# '95看跌和90看跌哪个更划算', '3个月的期权能提前平仓吗')
_KNOW_STRONG = re.compile(r"区别|什么意思|啥意思|是什么|什么是|怎么算|哪个更|哪个好|哪个划算|划算|提前平仓|提前终止|提前了结|原理|为什么|为啥")
# the desk's side of the conversation or a receipt: '报价收到了', '稍后给您报价'
_NOT_ASKING = re.compile(r"转(?:发)?给(?:客户|他们|领导|老板)|给客户了|询价的|特别多|很多|好多|比较多|不做|不询|不需要|暂停|先不|收到|稍后|晚点|待会|给您|内部|讨论|已经报|报过|报了")
# '今天300的报价比昨天贵了': a remark about quotes, not a request for one
_REMARK = re.compile(r"比(?:别家|人家|其他家?|别人|同行)|报价(?:好|真|挺|太|很|有点|也)|报价是|报的是|对吧|是吧|比(?:昨天|前天|上周|之前|上次)|贵了|便宜了|偏高|偏低|太高|太低|高了|低了|怎么这么")
_PAST = re.compile(r"卖得|买得|他们说|客户说|还在考虑|我们的|客户的|昨天|前天|上周|上个月|上次|之前|以前|刚才|后来|那个|那笔|存续|到期了|了吗|今天")
_GREETING = re.compile(r"^(你好|您好|hi|hello|早上好|早|晚安|谢谢|多谢|感谢|thanks?|thx|ok|好的|收到|辛苦|在吗|嗯|哈哈)", re.I)

FIELD_LABEL = {
    "underlying": "标的是哪个",
    "option_type": "看涨还是看跌",
    "tenor": "期限多长",
    "strike_pct": "行权价多少",
    "upper_strike_pct": "价差的另一个行权价多少",
    "barrier_pct": "障碍价（敲出价）多少",
    "lower_barrier_pct": "下方障碍价多少",
    "barrier_type": "障碍类型（向上/向下，敲出/敲入）",
    "ko_pct": "敲出价多少",
    "ki_pct": "敲入价多少",
    "coupon_pct": "票息多少",
    "payout_pct": "赔付比例多少",
    "structure": "什么结构",
}


@dataclass
class ParseResult:
    """Parsed message: intent, requests (QuoteRequest dicts), clarification question."""

    intent: str = "other"
    requests: list[dict] = field(default_factory=list)
    clarification: str | None = None
    unrecognized: list[str] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = {"intent": self.intent, "requests": [dict(r) for r in self.requests], "clarification": self.clarification}
        if self.unrecognized:
            d["unrecognized"] = list(self.unrecognized)
        d.update(self.extra)
        return d

    @property
    def complete(self) -> bool:
        return bool(self.requests) and all(not r.get("missing") for r in self.requests)


class MessageParser:
    """Deterministic parser; the pool, lexicon, jieba and CRF are loaded once."""

    def __init__(self, pool: UnderlyingPool | None = None, corrector: Corrector | None = None, tagger=None):
        self.pool = pool or default_pool()
        self.corrector = corrector or default_corrector()
        self.cn_aliases = self.pool.chinese_aliases()
        latin = sorted(self.pool.latin_aliases(), key=len, reverse=True)
        latin = [a for a in latin if len(a) >= 3 or a in SAFE_LATIN_CODES]
        self.latin_rx = re.compile(r"(?<![A-Za-z0-9])(" + "|".join(re.escape(a) for a in latin) + r")(?![A-Za-z0-9])", re.I)
        self.tagger = tagger

    # ------------------------------------------------------------------ public
    def parse(self, text: str) -> ParseResult:
        norm = normalize(text)
        fixed, _fixes = self.corrector.correct(norm)
        fixed = _LIST_MARK.sub("", fixed)
        groups, unknown, stats = self._groups(fixed)
        intent = self._intent(fixed, groups, stats)
        res = ParseResult(intent=intent)
        if intent != "quote":
            if intent == "order":
                order = {}
                for g in groups:
                    if "notional" in g.scalars:
                        order["notional"] = g.scalars["notional"]
                if order:
                    res.extra["order"] = order
            return res
        res.unrecognized = list(dict.fromkeys(unknown))
        res.requests = self._expand(groups)
        if not res.requests:
            res.requests = [self._finish({})]
        res.clarification = clarification_for(res.requests, res.unrecognized)
        return res

    # ------------------------------------------------------------------ internals
    def _segment_frame(self, seg: str, hint: str | None, unknown: list) -> Frame:
        fr = Frame()
        w = Work(seg)
        tokens = self.corrector.cut(seg)
        bounds, acc = {0}, 0
        for t in tokens:
            acc += len(t)
            bounds.add(acc)
        extract_codes(w, fr, self.pool, unknown)
        extract_aliases(w, fr, self.pool, self.cn_aliases, self.latin_rx, bounds)
        own = structure_hint(seg)
        if own:
            fr.scalars["structure"] = own
        structure = own or hint
        extract_notional(w, fr)
        extract_terms(w, fr, structure)
        extract_strikes(w, fr, structure)
        extract_tenors(w, fr)
        extract_shorthand(w, fr)
        extract_words(w, fr)
        leftover = _LEFTOVER.search(w.text) is not None  # the CRF only matters where no rule consumed the text
        spans = self.tagger.unknown_spans(w.text, seg) if self.tagger is not None and leftover else []
        if not spans:
            spans = [m.group(1) for m in _COMPANY_LIKE.finditer(w.text)
                     if m.group(1) not in self.corrector.vocab and (not fr.underlyings or m.group(2))]
        fr.leftover = self._leftover_names(w.text, fr) if not spans and not fr.underlyings else []
        fr.chat_words = self._chat_words(w.text)
        for span in spans:
            fr.underlyings.append((seg.find(span), ("?", span)))
            unknown.append(span)
        fr.underlyings.sort(key=lambda x: x[0])
        seen, uls = set(), []
        for _, (code, name) in fr.underlyings:
            key = code if code != "?" else "?" + name
            if key not in seen:
                seen.add(key)
                uls.append((code, name))
        fr.underlyings = uls
        fr.strikes = list(dict.fromkeys(fr.strikes))
        fr.option_types = list(dict.fromkeys(fr.option_types))
        if _ASK.search(seg):
            fr.asks.add("ask")
        return fr

    def _chat_words(self, masked: str) -> list[str]:
        """Words no rule consumed that are neither request filler nor desk terms (开会, 讨论, 到账, 紧张…)."""
        text = re.sub(r"[\x01\s,，。.:：;；!！?？()（）\[\]【】<>《》\"'“”‘’、/|*#+=~\-\d]+", " ", masked)
        return [t for t in self.corrector.cut(text) if len(t) >= 2 and re.fullmatch(r"[\u4e00-\u9fff]+", t)
                and t not in _FILLER and t not in self.corrector.vocab]

    def _leftover_names(self, masked: str, fr: Frame) -> list[str]:
        """Text no rule consumed, minus request filler words: in a clause with request terms and no known
        underlying, what is left is most likely the name of an underlying the pool does not know."""
        from .crf import looks_like_name

        text = re.sub(r"[\x01\s,，。.:：;；!！?？()（）\[\]【】<>《》\"'“”‘’、/|*#+=~\-]+", " ", masked)
        chunks, cur = [], []
        for tok in self.corrector.cut(text):
            if tok.strip() == "" or tok in _FILLER or tok in self.corrector.vocab or re.fullmatch(r"[a-z]+", tok):
                if cur:
                    chunks.append("".join(cur))
                    cur = []
                continue
            cur.append(tok)
        if cur:
            chunks.append("".join(cur))
        chunks = [c for c in chunks if len(c) >= 2 and re.search(r"[\u4e00-\u9fffA-Z]", c)]
        named = [c for c in chunks if looks_like_name(c, self.corrector)]
        return [(c, c in named) for c in chunks]

    def _split_by_underlyings(self, seg: str) -> list[str]:
        """'茅台 1M 平值call 宁德 1M 平值put' → two segments: cut before an underlying that follows request terms."""
        legs = _SPACED_SLASH.split(seg)
        if len(legs) > 1 and all(_LEG_TYPE.search(x) and _TENOR_TOKEN.search(x) for x in legs):
            return [q for x in legs for q in self._split_by_underlyings(x)]  # '300 1M ATM P / 500 2W 105C'
        fr = Frame()
        w = Work(seg)
        extract_codes(w, fr, self.pool, [])
        extract_aliases(w, fr, self.pool, self.cn_aliases, self.latin_rx, None)
        if len(fr.underlyings) < 2:
            return _split_by_tenor_type(seg)
        starts = sorted(p for p, _ in fr.underlyings)
        cuts = [0]
        for a, b in zip(starts, starts[1:]):
            if _TERMS_BETWEEN.search(seg[a:b]) and _TERMS_BETWEEN.search(seg[b:]):
                cuts.append(b)
        cuts.append(len(seg))
        parts = [seg[x:y] for x, y in zip(cuts, cuts[1:]) if seg[x:y].strip()]
        return [q for p in parts for q in _split_by_tenor_type(p)]

    def _groups(self, text: str):
        unknown: list[str] = []
        hint = structure_hint(text)
        groups: list[Frame] = []
        ask = bool(_ASK.search(text)) and not _REMARK.search(text)
        stats = {"order": bool(_ORDER.search(text)), "know": bool(_KNOW.search(text)), "ask": ask,
                 "content": False, "tenor": False, "numbers": False}
        segments = []
        for s in _SEGMENT_SPLIT.split(text):
            if s and s.strip():
                segments.extend(self._split_by_underlyings(s))
        frames = []
        for seg in segments:
            prev_struct = next((f.scalars["structure"] for f in reversed(frames) if "structure" in f.scalars), None)
            frames.append(self._segment_frame(seg, prev_struct or hint, unknown))
        if not any(u for f in frames for u in f.underlyings):
            # no underlying named anywhere: words left over around the request terms name one the pool lacks —
            # a name-like chunk (proper noun, unknown word, company suffix), or the only chunk of a clear request
            cands = [(f, c, named) for f in frames for c, named in f.leftover]
            clear = any(f.tenors for f in frames) and any(f.option_types or "structure" in f.scalars for f in frames)
            pick = next(((f, c) for f, c, named in cands if named), None)
            if pick is None and clear and len(cands) == 1:
                pick = cands[0][:2]
            if pick:
                pick[0].underlyings.append(("?", pick[1]))
                unknown.append(pick[1])
        stats["chat"] = sum(len(f.chat_words) for f in frames)
        for seg, fr in zip(segments, frames):
            d = fr.defines()
            if fr.has_request_content() or "ask" in fr.asks:
                stats["content"] = True
            if fr.tenors:
                stats["tenor"] = True
            if any(k in fr.scalars for k in ("notional", "ko_pct", "ki_pct", "coupon_pct", "barrier_pct")) or \
                    [k for k in fr.strikes if k != ("pct", 100) and k[1] is not None]:
                stats["numbers"] = True
            if not d and not fr.asks:
                continue
            cur = groups[-1] if groups else None
            forced = bool(_NEW_GROUP_MARK.match(seg))
            if cur is None:
                groups.append(fr)
                continue
            cd = cur.defines() - cur.inherited
            # a forced break ('以及', '还有') after a clause that only named underlyings continues the list
            conflict = forced and bool(cd - {"underlying"})
            if "underlying" in d and "underlying" in cd and (cd - {"underlying", "notional", "side", "quote"}):
                conflict = True
            for k in ("tenor", "option_type", "strike", "structure"):
                if k in d and k in cd:
                    conflict = True
            if not conflict:
                _merge_into(cur, fr)
            else:
                groups.append(_inherit(cur, fr))
        # message-wide scalars (notional, side) reach every group that lacks them
        for key in ("notional", "side"):
            vals = {g.scalars[key] for g in groups if key in g.scalars}
            if len(vals) == 1:
                v = vals.pop()
                for g in groups:
                    g.scalars.setdefault(key, v)
        return groups, unknown, stats

    def _intent(self, text: str, groups: list[Frame], stats: dict) -> str:
        content = any(g.has_request_content() for g in groups)
        confirmed = _CONFIRM.search(text) and not stats["ask"] and not _INJECTION.search(text)
        if stats["order"] and (not (content and stats["tenor"]) or confirmed) and not _NOT_ORDER.search(text):
            return "order"
        domain = bool(_DOMAIN.search(text))
        if _OWN_POSITION.search(text) and _HYPOTHETICAL.search(text) and not _REQUOTE.search(text):
            return "other"
        if _GREEKS.search(text) and not stats["ask"] and not stats["tenor"]:
            return "knowledge" if stats["know"] or re.search(r"多少|[?？吗呢]\s*$", text) else "other"
        if _TYPICAL.search(text) and not stats["ask"] and not stats["tenor"] and not stats["numbers"] and domain:
            return "knowledge"
        if _PLAN.search(text) and not stats["tenor"]:
            return "other"
        if not stats["ask"] and not _REQUOTE.search(text) and not _WANT.search(text) and (
                (_POSITION.search(text) and _POSITION_EVENT.search(text)) or _PAST_TRADE.search(text)):
            return "other"
        if not stats["ask"] and not stats["tenor"] and stats.get("chat", 0) >= 2:
            # no request verb, no tenor, and words of a conversation around the terms ('今天下午开会讨论中证500雪球
            #的对冲'): talk, not a request
            question = stats["know"] or re.search(r"多少|[?？吗呢]\s*$", text)
            return "knowledge" if domain and question and not _PAST.search(text) and not _EARLIER.search(text) else "other"
        if not stats["ask"] and not stats["tenor"] and not any(
                g.underlyings or g.option_types or set(g.scalars) & _SHAPE_FIELDS for g in groups):
            # only a strike, a level or a size ('3800点', '1000万'): an answer to an earlier question (read by
            # complete_followup) or a remark, not a request by itself
            question = stats["know"] or re.search(r"多少|[?？吗呢]\s*$", text)
            return "knowledge" if domain and question and not _EARLIER.search(text) else "other"
        if not stats["ask"] and _KNOW_STRONG.search(text) and not any(_known(g) for g in groups):
            return "knowledge" if domain else "other"
        if _INJECTION.search(text) and not any(g.underlyings or g.option_types or "structure" in g.scalars for g in groups):
            return "other"
        if not stats["tenor"] and not stats["ask"] and (
                _NARRATIVE.search(text) or (not stats["numbers"] and re.search(r"吗\s*[?？]?\s*$", text))):
            # talk about a position or the market ("昨天那个沪深300看涨赚了不少"), not a new request
            question = stats["know"] or re.search(r"多少|[?？吗呢]\s*$", text)
            return "knowledge" if question and domain and not _PAST.search(text) else "other"
        priced = any(_known(g) and (g.option_types or g.strikes) for g in groups)
        if stats["know"] and domain and not stats["tenor"] and not stats["numbers"] and not stats["ask"] and not priced:
            return "other" if _EARLIER.search(text) else "knowledge"
        terms = any(g.option_types or g.strikes or "structure" in g.scalars for g in groups)
        strong = (terms and any(_known(g) for g in groups)) or stats["tenor"] or stats["numbers"] or stats["ask"]
        if not strong:  # no underlying, tenor, number or request verb: talk about products, not a request
            question = stats["know"] or re.search(r"多少|[?？吗呢]\s*$", text)
            return "knowledge" if domain and question and not _EARLIER.search(text) else "other"
        if content or (stats["ask"] and (stats["tenor"] or any(g.underlyings for g in groups))):
            return "quote"
        if stats["ask"] and len(text) <= 30 and not _GREETING.match(text) and not _INJECTION.search(text) \
                and not stats["know"] and not _EARLIER.search(text) and not _NOT_ASKING.search(text):
            return "quote"
        if stats["know"] and domain:
            return "other" if _PAST.search(text) else "knowledge"
        return "other"

    def _expand(self, groups: list[Frame]) -> list[dict]:
        out = []
        for g in groups:
            if not (g.has_request_content() or g.tenors or "ask" in g.asks):
                continue
            uls = g.underlyings or [None]
            tenors = g.tenors or [None]
            strikes = g.strikes or [None]
            ots = g.option_types or [None]
            if len(g.pairs) >= 2 and len({o for _, o in g.pairs}) >= 2:  # '95 put 和 105 call': pairs, not a product
                combos = [(u, t, k, o) for u in uls for t in tenors for k, o in g.pairs]
            else:
                combos = list(itertools.product(uls, tenors, strikes, ots))
            sizes = g.scalars.get("_notionals")
            if sizes:
                combos = [c for c in combos for _ in sizes]
            for i, (u, t, k, o) in enumerate(combos):
                req = dict(g.scalars)
                req.pop("_notionals", None)
                if sizes:
                    req["notional"] = sizes[i % len(sizes)]
                if u is not None:
                    code, name = u
                    if code == "?":
                        req["_unknown"] = name
                    else:
                        req["underlying"] = code
                        nm = name or self.pool.name_of(code)
                        if nm:
                            req["underlying_name"] = nm
                if t:
                    req["tenor"] = t
                if o:
                    req["option_type"] = o
                if k:
                    kind, v = k
                    if kind == "pct":
                        req["strike_pct"] = v
                    elif kind == "level":
                        req["strike_level"] = v
                    elif o and v is not None:
                        req["strike_pct"] = _money(kind, v, o)
                    else:
                        req["_moneyness"] = (kind, v)
                req["_asks"] = set(g.asks)
                fin = self._finish(req)
                if fin not in out:  # the same request written twice is one request
                    out.append(fin)
        return out

    def _finish(self, req: dict) -> dict:
        return finish_request(req)


_SPACED_SLASH = re.compile(r"\s+[/|｜]\s+")
_LEG_TYPE = re.compile(r"看涨|看跌|认购|认沽|(?<![a-z])(?:calls?|puts?)(?![a-z])|(?<![a-z])(?:\d+\s*)?[cp](?![a-z])|雪球|鲨鱼|凤凰|价差", re.I)
_TENOR_TOKEN = re.compile(r"(?<![\d.])\d+(?:\.\d+)?\s*(?:个月|个星期|周|年|天|[mwyd](?![a-z]))|半年", re.I)
_TYPE_TOKEN = re.compile(r"看涨|看跌|认购|认沽|(?<![a-z])(?:calls?|puts?)(?![a-z])", re.I)


def _split_by_tenor_type(seg: str) -> list[str]:
    """'1个月 平值看涨 3个月 平值看跌' → two clauses, when tenors and call/put words alternate."""
    tenors = [m.start() for m in _TENOR_TOKEN.finditer(seg)]
    types = [m.start() for m in _TYPE_TOKEN.finditer(seg)]
    if len(tenors) < 2 or len(types) < 2:
        return [seg]
    events = sorted([(p, "t") for p in tenors] + [(p, "o") for p in types])
    kinds = "".join(k for _, k in events)
    if kinds not in ("to" * (len(kinds) // 2), "ot" * (len(kinds) // 2)) or len(kinds) % 2:
        return [seg]
    starts = [p for i, (p, _) in enumerate(events) if i % 2 == 0][1:]
    cuts = [0] + starts + [len(seg)]
    return [seg[x:y] for x, y in zip(cuts, cuts[1:]) if seg[x:y].strip()]


def _known(g: Frame) -> bool:
    return any(code != "?" for code, _ in g.underlyings)


def _money(kind: str, x: float, ot: str) -> float:
    sign = -1 if (kind == "itm") == (ot == "call") else 1
    v = 100 + sign * x
    return int(v) if v == int(v) else round(v, 6)


def _merge_into(cur: Frame, fr: Frame) -> None:
    for key, attr in (("underlying", "underlyings"), ("tenor", "tenors"), ("strike", "strikes"), ("option_type", "option_types")):
        if key in cur.inherited and getattr(fr, attr):
            setattr(cur, attr, [])
            cur.inherited.discard(key)
    for k in list(fr.scalars):
        if k in cur.inherited:
            cur.scalars.pop(k, None)
            cur.inherited.discard(k)
    cur.underlyings += [u for u in fr.underlyings if u not in cur.underlyings]
    cur.tenors += [t for t in fr.tenors if t not in cur.tenors]
    cur.strikes += [k for k in fr.strikes if k not in cur.strikes]
    cur.option_types += [o for o in fr.option_types if o not in cur.option_types]
    for k, v in fr.scalars.items():
        cur.scalars.setdefault(k, v)
    cur.asks |= fr.asks
    cur.pairs += fr.pairs


def _inherit(prev: Frame, fr: Frame) -> Frame:
    new = Frame(list(fr.underlyings), list(fr.tenors), list(fr.strikes), list(fr.option_types), dict(fr.scalars),
                set(fr.asks), list(fr.pairs))
    same_structure = fr.scalars.get("structure", prev.scalars.get("structure")) == prev.scalars.get("structure")
    inh = new.inherited
    if not new.underlyings and prev.underlyings:
        new.underlyings = list(prev.underlyings)
        inh.add("underlying")
    if same_structure:
        for key, attr in (("tenor", "tenors"), ("strike", "strikes"), ("option_type", "option_types")):
            if not getattr(new, attr) and getattr(prev, attr):
                setattr(new, attr, list(getattr(prev, attr)))
                inh.add(key)
        for k, v in prev.scalars.items():
            if k not in new.scalars:
                new.scalars[k] = v
                inh.add(k)
        new.asks |= prev.asks
    else:
        for k in ("notional", "side"):
            if k in prev.scalars and k not in new.scalars:
                new.scalars[k] = prev.scalars[k]
                inh.add(k)
    return new


def finish_request(req: dict) -> dict:
    """Apply structure conventions: defaults (→ assumed), required fields (→ missing), what is quoted."""
    req = dict(req)
    asks = req.pop("_asks", set())
    unknown = req.pop("_unknown", None)
    moneyness = req.pop("_moneyness", None)
    assumed: list[str] = []
    missing: list[str] = []
    st = req.get("structure")
    if not st:
        st = "vanilla"
        req["structure"] = st
        if not req.get("option_type") and "strike_pct" not in req:
            assumed.append("structure")
    ot = req.get("option_type")
    if st in ("snowball", "phoenix", "airbag", "double_sharkfin"):
        if st != "airbag":
            req.pop("option_type", None)
        ot = req.get("option_type")
    if st != "barrier":
        req.pop("barrier_type", None)  # 上敲出/下敲出 name the barriers of sharkfins, not a barrier option's type
    if st == "sharkfin" and not ot and "barrier_pct" in req:
        req["option_type"] = "call" if req["barrier_pct"] > 100 else "put"
        assumed.append("option_type")
    if st == "barrier" and "barrier_pct" in req and "barrier_type" not in req:
        req["barrier_type"] = ("up" if req["barrier_pct"] > 100 else "down") + "_out"
        assumed.append("barrier_type")
    if st in ("vanilla", "digital", "barrier", "sharkfin", "asian", "double_sharkfin"):
        if "strike_pct" not in req and "strike_level" not in req and moneyness is None:
            req["strike_pct"] = 100
            assumed.append("strike_pct")
    required = {"vanilla": ["option_type", "tenor"],
                "asian": ["option_type", "tenor"],
                "digital": ["option_type", "tenor", "payout_pct"],
                "spread": ["option_type", "tenor", "strike_pct", "upper_strike_pct"],
                "barrier": ["option_type", "tenor", "barrier_pct"],
                "sharkfin": ["option_type", "tenor", "barrier_pct"],
                "double_sharkfin": ["tenor", "barrier_pct", "lower_barrier_pct"],
                "snowball": ["tenor", "ko_pct", "ki_pct"],
                "phoenix": ["tenor", "ko_pct", "ki_pct"],
                "airbag": ["tenor", "ki_pct"]}[st]
    if moneyness is not None and (moneyness[1] is None or not req.get("option_type")):
        missing.append("strike_pct")
        req["moneyness"] = moneyness[0]  # 'otm'/'itm' without a size: a follow-up "5%" completes it
    if st in ("snowball", "phoenix"):
        if "lockup_months" not in req:
            req["lockup_months"] = 3
            assumed.append("lockup_months")
        req.setdefault("ko_observation", "monthly")
        assumed.append("ko_observation")
        if st == "phoenix" and "coupon_barrier_pct" not in req and "ki_pct" in req:
            req["coupon_barrier_pct"] = req["ki_pct"]
            assumed.append("coupon_barrier_pct")
    # what is asked
    if "vol" in asks:
        quote = "vol"
    elif st in ("snowball", "phoenix"):
        quote = "coupon" if "coupon_pct" not in req else "price"
    elif st in ("sharkfin", "double_sharkfin", "airbag"):
        quote = "participation" if "participation_pct" not in req and ("price" not in asks or "participation" in asks) else "price"
    elif "participation" in asks and "participation_pct" not in req:
        quote = "participation"
    elif "coupon" in asks and st == "digital" and "payout_pct" not in req:
        quote = "price"
    else:
        quote = "price"
    req["quote"] = quote
    if st in ("snowball", "phoenix") and quote != "coupon" and "coupon_pct" not in req:
        required = required + ["coupon_pct"]
    if st == "digital" and "payout_pct" not in req and quote == "price":
        pass
    req.setdefault("side", "client_buys")
    if "underlying" not in req:
        missing.insert(0, "underlying")
    for f in required:
        if req.get(f) is None and f not in missing:
            missing.append(f)
    out = {k: req[k] for k in FIELD_ORDER if k in req and req[k] is not None}
    out["missing"] = missing
    out["assumed"] = assumed
    if unknown:
        out["unrecognized_underlying"] = unknown
    return out


def clarification_for(requests: list[dict], unrecognized: list[str]) -> str | None:
    """One short question covering everything missing (None when nothing is)."""
    parts: list[str] = []
    missing = []
    for r in requests:
        for f in r.get("missing", []):
            if f not in missing:
                missing.append(f)
    if not missing:
        return None
    if unrecognized:
        names = "、".join(f"「{u}」" for u in unrecognized)
        parts.append(f"没有识别出标的{names}，请提供标的代码或全称")
        missing = [m for m in missing if m != "underlying"]
    asks = [FIELD_LABEL.get(m, m) for m in missing]
    if asks:
        parts.append("请问" + "、".join(asks))
    return "；".join(parts) + "？"


@lru_cache(maxsize=1)
def default_parser() -> MessageParser:
    from .crf import load_default_tagger

    return MessageParser(tagger=load_default_tagger())
