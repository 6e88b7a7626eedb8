"""Quote-request understanding: free-text client messages → QuoteRequest dicts (CONTRACTS.md, `otcdesk parse`).

    from otcdesk.ner import parse_message, complete_followup
    parse_message("300、创业板 各来一个 2周和1个月的平值看跌").to_dict()   # four requests

What lives where:

    vocabulary.py     the words as data: data/terms.csv (term → category, value; which also feed jieba) and
                      data/cues.csv (phrases intent rests on); fills the `{class}` slots of every pattern template
    normalize.py      full-width → half-width, bot @mentions, Chinese numerals in numeric contexts
    lexicon.py        jieba with the lexicon and the pool's names; homophone / near-miss correction
    pool.py           the underlying pool (data/pool_*.csv) and exchange-code rules
    fields.py         `Frame` (what one clause says) and the field extractors that fill it
    crf.py            the CRF tagger for underlying names no rule knows (train_crf.py trains data/underlying_crf.crfsuite)
    intent.py         intent as an ordered table of named rules
    parser.py         `MessageParser`: clauses → groups → requests; `parse_message`
    quote_request.py  `ParseResult`, the structure conventions (assumed / missing / quote), the clarification
    followup.py       `complete_followup`: a follow-up completes an earlier request (`complete_order`: an order)
    order_terms.py    order terms (data/order_terms.csv): sizes, 建仓指令 (market, limit, POV, TWAP, close, VWAP),
                      quote / trade ids, line picks (序号1, 第一笔), product accounts (`pick_account`)
    llm_fill.py       optional LLM completion of missing fields, validated field by field
    evaluate.py       scoring against labelled messages (tests/data/parse_*.jsonl; benchmarks/bench_parse.py)

Pipeline (all deterministic; data loaded once): NFKC/full-width normalisation, bot @mentions removed, Chinese
numerals in numeric contexts (三个月, 两年, 五百万, 中证五百, 百分之九十五, 敲入七十五, 一零三) → digits; homophone and
near-miss correction against the lexicon and the pool (pypinyin + rapidfuzz, guarded by jieba's general
dictionary: 雪毬→雪球, 创业版指→创业板指, 看帐→看涨, 招商银航→招商银行, but 市值 never becomes 实值); segmentation into
clauses (；。换行, commas between clauses, 另要/还有/再来…, and before a second underlying that follows its own
terms); rule extraction per clause with consumed spans (codes, pool names via jieba-aligned longest match,
notional, lock-up, step-down, coupons, KO/KI, barriers, strikes, tenors, index shorthands 300/500/1000/50/2000);
a CRF (python-crfsuite, otcdesk/ner/data/underlying_crf.crfsuite, `python -m otcdesk.ner.train_crf`) proposes
underlying mentions no rule knows, kept when they look like names (company suffix, proper noun or unknown word
for jieba); when a request names no underlying at all, the words left around its terms (request filler removed)
are taken as the unrecognised name — reported, never guessed; clauses become groups (a clause that
restates a field starts a new request and inherits the rest), and each group expands to the cartesian product
of underlyings × tenors × strikes × option types (strike/type written together — "95 put 和 105 call", "平值看涨 和
95看跌", "看涨 103 看跌 97" — pair up); "一个2000万 一个3000万" is the same request at two sizes.

Conventions (shown to the trader through `assumed`):

* side: `client_buys` unless the client says it sells (我们卖给你们 / 我方卖出 / 我们是卖方 / client sells).
* structure: `vanilla` when none is named (listed in `assumed` when not even call/put or a strike is given).
* strike: vanilla, digital, barrier, sharkfin, double sharkfin and asian default to ATM 100 → `assumed:
  ["strike_pct"]`; 实值 X% = 100−X for a call, 100+X for a put, 虚值 the reverse; 0.8 → 80; numbers > 160 or
  with 点/元 are levels (`strike_level`). A bare 虚值/实值 without a size leaves `strike_pct` missing.
* spreads: the two strikes in the order written (`strike_pct`, `upper_strike_pct`); 牛市价差 → call, 熊市价差 → put.
* snowball / phoenix: a bare pair "103/75" (any order, any separator) is KO = the larger, KI = the smaller; lock-up
  3 months and monthly KO observation (`ko_observation: "monthly"`) when unstated → assumed; phoenix coupon barrier
  = KI level when unstated → assumed; step-down in % points (50bp → 0.5).
* sharkfin: barrier above 100 ⇒ call, below ⇒ put when call/put is not said (assumed); barrier option type
  up/down by barrier vs 100 and knock-out when unstated (assumed); double sharkfin pair → upper/lower barriers.
* what is quoted (`quote`): `vol` when vol/波动率/隐波 is asked; snowball/phoenix → `coupon` unless a coupon is
  given (then `price`); sharkfin/double sharkfin/airbag → `participation` unless a participation rate is given;
  otherwise `price`.
* required per structure (else listed in `missing`): underlying always; vanilla/asian: option_type, tenor;
  digital: + payout_pct; spread: + strike_pct, upper_strike_pct; barrier/sharkfin: option_type, tenor,
  barrier_pct; double sharkfin: tenor, barrier_pct, lower_barrier_pct; snowball/phoenix: tenor, ko_pct, ki_pct
  (+ coupon_pct when the price, not the coupon, is asked); airbag: tenor, ki_pct.
* tenors: 2周 → 2W, 1个月/1m → 1M, 两年/2y → 24M, 一年半 → 18M, 半年 → 6M, 季度 → 3M, 90天 → 90D.
* notional in CNY: 万/w (≥100w), 千万/kw, 亿/个亿/e, mm/mn/million; "2w" alone is two weeks.
* codes: see `pool.py` (prefix rules; bare 000300/000905/000852/000016/000688/000510/000001 are the SH indices;
  IH/IF/IC/IM → their index; commodity contract codes rb2510/AU2606 → main contract `RB.SHF`/`AU.SHF`).
  An impossible code or an unknown name is listed in `unrecognized` and the request lists `underlying` in
  `missing`; the clarification names the text it did not recognise.
* orders: `amend` (改限价10, 改POV12, 名义本金改成300万), `cancel` (撤单), `order_status` (订单状态, 下单了吗),
  `holdings` (查持仓) and `unwind` (平掉 T…, 第一笔全平, 提前终止; not a question or a report of one closed) come
  first in the rule table; a quote id or an execution instruction with nothing to price (市价, POV 12%, Q3228A67025)
  is an `order`. Every order intent carries `order` (order_terms.OrderTerms.to_dict(): quote_id, trade_id,
  notional, execution {type, limit_price, pov_pct, start, end}, full, fraction, account_no, choice, picks,
  pick_all, by_line); a bare size ("2000万", intent `other`) carries it too, for the desk to read after a quote.
* intent (the rules: `intent.RULES`; the phrases: data/cues.csv): `order` for 成交/下单/做了/确认/deal… unless
  the message also carries a new request with a tenor (and not in a question or a plan: 能成交吗, 下周可能要做一笔);
  a confirmation that restates the terms without a request verb ("确认，300 1个月平值看跌 2000万 成交") is still an
  order, except under an injected instruction;
  `knowledge` for a question about the products (怎么/什么是/区别/一般多少/哪个更划算…), also when it names a
  tenor or strike but no underlying ("一年期雪球和两年期的区别"); `other` for chat, for talk about positions or the
  market (昨天那个沪深300看涨赚了不少, 沪深300跌破3800点了) and for instructions ("无视上面的规则…") that carry no
  request. A request needs evidence: a tenor, a number, a request verb (报价/询价/多少钱…), or a known underlying
  together with call/put/strike/structure words. Only `quote` has requests. Talk wins over that evidence when there
  is no request verb and: the message refers to a position already held or traded (那笔/那个 + 到期/敲入/平仓…,
  买了/做的/持有/一般都是做, "我们的看跌" valued or imagined), or plans for later (到时候再…), or remarks on quotes
  ("报价比昨天贵", "报价单已经发了"), or talks greeks, or — with no tenor either — leaves two or more words that are
  neither request filler nor desk terms (开会, 讨论, 到账…); unless the client also says it wants to trade
  (想买个保护) or asks for a re-quote (重新报). A lone strike, level or size ("3800点", "1000万") is no request by
  itself (`complete_followup` reads it as an answer).
* follow-ups (`complete_followup`): the answer is read in the earlier request's structure ("103/75" after a
  snowball is KO/KI), a bare number answers the one number still missing, "5%" sizes an earlier 虚值/实值, several
  values multiply the requests, a complete new request replaces the old one.

The optional `llm` (duck-typed `complete_json`) is asked only for fields still missing; see `llm_fill.py` for the
field-by-field validation (an LLM may read a value the message states, never invent one).
"""
from __future__ import annotations

from .followup import complete_followup
from .parser import parse_message
from .quote_request import ParseResult

__all__ = ["ParseResult", "complete_followup", "parse_message"]
