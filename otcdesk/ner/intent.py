"""What a message is: a quote request, an order (or a change to one), a question about the products (knowledge) or
other talk.

Intents: `quote`, `order`, `amend` (改限价10, 名义本金改成300万), `cancel` (撤单), `order_status` (订单状态, 下单了吗),
`holdings` (查持仓), `unwind` (平掉 T…, 第一笔全平, 提前终止), `knowledge`, `other`.

`RULES` is an ordered table, read first match wins: each rule has a name, a condition over `Facts`, the intent it
gives and why. The conditions read cues (phrases of data/cues.csv: request verbs, order words, questions, talk about
positions or the market…) and what the clauses hold (underlyings, terms, tenors, numbers, conversation words).
A request needs evidence (a tenor, a number, a request verb, or a known underlying with call/put, strike or
structure words); talk wins over that evidence when there is no request verb.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

from .fields import Frame
from .order_terms import OrderTerms
from .vocabulary import Pattern, Vocabulary

SHAPE_FIELDS = {"structure", "ko_pct", "ki_pct", "barrier_pct", "lower_barrier_pct", "upper_strike_pct", "coupon_pct",
                "participation_pct", "payout_pct", "rebate_pct"}
_GREETING = Pattern(r"^{greeting}", re.I)


def known(g: Frame) -> bool:
    """The clause names an underlying the pool knows."""
    return any(code != "?" for code, _ in g.underlyings)


class Facts:
    """What the rules read about one message: its cues (computed once each) and its clauses."""

    def __init__(self, text: str, groups: list[Frame], clauses: dict, vocab: Vocabulary,
                 terms: OrderTerms | None = None):
        self.text, self.groups, self.vocab = text, groups, vocab
        self.terms = terms or OrderTerms()  # what the message says of an order (order_terms.py)
        self.tenor: bool = clauses["tenor"]  # a clause names a tenor
        self.numbers: bool = clauses["numbers"]  # a size, KO/KI, coupon, barrier or a strike other than ATM
        self.chat: int = clauses["chat"]  # words no rule read that are neither request filler nor desk terms
        self._cues: dict[str, bool] = {}

    def cue(self, name: str) -> bool:
        if name not in self._cues:
            self._cues[name] = self.vocab.cue(name).search(self.text) is not None
        return self._cues[name]

    @cached_property
    def ask(self) -> bool:
        """A request verb (报价, 询价, 多少钱…) that is not a remark about quotes."""
        return self.cue("ask") and not self.cue("remark")

    @cached_property
    def know(self) -> bool:
        return self.cue("know")

    @cached_property
    def question(self) -> bool:
        return self.know or self.cue("question")

    @cached_property
    def domain(self) -> bool:
        return self.cue("domain")

    @cached_property
    def greeting(self) -> bool:
        return self.vocab.rx(_GREETING).search(self.text) is not None

    @cached_property
    def content(self) -> bool:
        """A clause group with request content (underlying, call/put, structure, strike or KO/KI/barrier levels)."""
        return any(g.has_request_content() for g in self.groups)

    @cached_property
    def confirmed(self) -> bool:
        """Confirmation words without a request verb or an injected instruction."""
        return self.cue("confirm") and not self.ask and not self.cue("injection")

    @cached_property
    def known(self) -> bool:
        return any(known(g) for g in self.groups)

    @cached_property
    def underlying(self) -> bool:
        return any(g.underlyings for g in self.groups)

    @cached_property
    def shaped(self) -> bool:
        """More than a lone strike, level or size: an underlying, call/put or a structure's terms."""
        return any(g.underlyings or g.option_types or set(g.scalars) & SHAPE_FIELDS for g in self.groups)

    @cached_property
    def named(self) -> bool:
        return any(g.underlyings or g.option_types or "structure" in g.scalars for g in self.groups)

    @cached_property
    def typed(self) -> bool:
        """Call/put or a structure named (an execution word such as VWAP may look like an unknown name)."""
        return any(g.option_types or "structure" in g.scalars for g in self.groups)

    @cached_property
    def priced(self) -> bool:
        """A known underlying with call/put or a strike."""
        return any(known(g) and (g.option_types or g.strikes) for g in self.groups)

    @cached_property
    def evidence(self) -> bool:
        """What a request needs: a known underlying with terms, a tenor, a number or a request verb."""
        terms = any(g.option_types or g.strikes or "structure" in g.scalars for g in self.groups)
        return (terms and self.known) or self.tenor or self.numbers or self.ask

    @cached_property
    def narrative(self) -> bool:
        """Talk about a position or the market, or a yes/no question without numbers."""
        return self.cue("narrative") or (not self.numbers and self.cue("ends_with_ma"))


@dataclass(frozen=True)
class Rule:
    name: str
    when: Callable[[Facts], bool]
    intent: str
    why: str


RULES: tuple[Rule, ...] = (
    Rule("cancel", lambda f: f.cue("cancel") and not f.cue("cancel_not") and not (f.content and f.tenor),
         "cancel", "撤单/取消订单 withdraws the client's pending order (not a question about cancelling)"),
    Rule("order_status", lambda f: f.cue("order_status") and not f.content and not f.cue("status_not"),
         "order_status", "asks where the client's order stands (订单状态, 下单了吗, 成交了吗), not talk about a past trade"),
    Rule("holdings", lambda f: f.cue("holdings") and not f.content,
         "holdings", "查持仓: the client's live trades"),
    Rule("amend", lambda f: f.cue("amend") and f.terms.changes and not (f.content and f.tenor)
         and not f.cue("not_order"),
         "amend", "改限价10, 改POV12, 名义本金改成300万: changes the terms of a pending order"),
    Rule("unwind", lambda f: f.cue("unwind") and not f.cue("unwind_not") and not (f.content and f.tenor),
         "unwind", "平掉 T…, 第一笔全平, 提前终止: closes a live trade (not a question or a report of one closed)"),
    Rule("order", lambda f: f.cue("order") and (not (f.content and f.tenor) or f.confirmed) and not f.cue("not_order"),
         "order", "成交/下单/确认 books a trade, unless it brings a new request with a tenor (a restated confirmation "
                  "still books) or is a question or a plan (能成交吗, 下周可能要做一笔)"),
    Rule("order_terms", lambda f: (f.terms.quote_id or f.terms.instructed or (f.terms.picks and f.terms.changes))
         and not f.known and not f.typed and not f.tenor and not f.ask and not f.question and not f.cue("not_order"),
         "order", "a quote id or an execution instruction (市价, 限价 X, POV, TWAP…) with nothing to price"),
    Rule("own_position_valued", lambda f: f.cue("own_position") and f.cue("hypothetical") and not f.cue("requote"),
         "other", "values or imagines the client's own position (如果300跌到3700，我们的看跌大概值多少钱)"),
    Rule("greeks_question", lambda f: f.cue("greeks") and not f.ask and not f.tenor and f.question,
         "knowledge", "a question about greeks, no request verb or tenor"),
    Rule("greeks_talk", lambda f: f.cue("greeks") and not f.ask and not f.tenor,
         "other", "talks greeks (沪深300平值看涨的delta大概0.5吧)"),
    Rule("typical_price", lambda f: f.cue("typical") and not f.ask and not f.tenor and not f.numbers and f.domain,
         "knowledge", "what a product usually costs (看涨期权的期权费一般多少), nothing pinning down a request"),
    Rule("plan", lambda f: f.cue("plan") and not f.tenor,
         "other", "a request for later (到时候再找你们报价)"),
    Rule("position_talk", lambda f: not f.ask and not f.cue("requote") and not f.cue("want") and (
        (f.cue("position") and f.cue("position_event")) or f.cue("past_trade")),
         "other", "a position held or a trade done (那笔今天到期, 客户上周买了…), no request verb, re-quote or wish to trade"),
    Rule("chat_question", lambda f: not f.ask and not f.tenor and f.chat >= 2 and f.domain and f.question
         and not f.cue("past") and not f.cue("earlier"),
         "knowledge", "a question about the products among conversation words"),
    Rule("chat", lambda f: not f.ask and not f.tenor and f.chat >= 2,
         "other", "conversation around the terms (今天下午开会讨论中证500雪球的对冲), no request verb or tenor"),
    Rule("bare_value_question", lambda f: not f.ask and not f.tenor and not f.shaped and f.domain and f.question
         and not f.cue("earlier"),
         "knowledge", "a question about the products that names no underlying, call/put or structure terms"),
    Rule("bare_value", lambda f: not f.ask and not f.tenor and not f.shaped,
         "other", "a lone strike, level or size (3800点, 1000万): an answer complete_followup reads, or a remark"),
    Rule("product_question", lambda f: not f.ask and f.cue("know_strong") and not f.known and f.domain,
         "knowledge", "a question about the products even with a tenor or strike (一年期雪球和两年期的区别)"),
    Rule("off_topic_question", lambda f: not f.ask and f.cue("know_strong") and not f.known,
         "other", "a question (区别, 为什么…) about something other than the products"),
    Rule("injection", lambda f: f.cue("injection") and not f.named,
         "other", "an instruction (无视上面的规则…) that carries no request"),
    Rule("narrative_question", lambda f: not f.tenor and not f.ask and f.narrative and f.question and f.domain
         and not f.cue("past"),
         "knowledge", "a question about the products phrased as talk, without a tenor or request verb"),
    Rule("narrative", lambda f: not f.tenor and not f.ask and f.narrative,
         "other", "talk about a position or the market (昨天那个沪深300看涨赚了不少, 沪深300跌破3800点了)"),
    Rule("earlier_quote", lambda f: f.know and f.domain and not f.tenor and not f.numbers and not f.ask and not f.priced
         and f.cue("earlier"),
         "other", "asks about a quote already given (上次, 报价单), not a new request"),
    Rule("product_knowledge", lambda f: f.know and f.domain and not f.tenor and not f.numbers and not f.ask
         and not f.priced,
         "knowledge", "a question about the products with nothing that prices a request"),
    Rule("no_evidence_question", lambda f: not f.evidence and f.domain and f.question and not f.cue("earlier"),
         "knowledge", "a question about the products without request evidence"),
    Rule("no_evidence", lambda f: not f.evidence,
         "other", "no underlying with terms, tenor, number or request verb: talk about products, not a request"),
    Rule("request", lambda f: f.content or (f.ask and (f.tenor or f.underlying)),
         "quote", "request content, or a request verb with a tenor or an underlying"),
    Rule("short_ask", lambda f: f.ask and len(f.text) <= 30 and not f.greeting and not f.cue("injection")
         and not f.know and not f.cue("earlier") and not f.cue("not_asking"),
         "quote", "a short request for a price (帮忙报个价) whose terms follow"),
    Rule("past_question", lambda f: f.know and f.domain and f.cue("past"),
         "other", "a question about the client's own past or others' remarks"),
    Rule("knowledge", lambda f: f.know and f.domain,
         "knowledge", "a question about the products"),
    Rule("other", lambda f: True,
         "other", "nothing above"),
)


def decide(facts: Facts) -> Rule:
    """The first rule whose condition holds."""
    return next(rule for rule in RULES if rule.when(facts))
