"""Test helpers for booking: approved order (and unwind) review items as the desk graph leaves them, with lines
from the real parser and pricer, stored through the repositories. No graph runs here: the items are what an
approved order looks like (CONTRACTS Part 2 `order`), so TradeService can be tested on its own."""
from __future__ import annotations

import io
import uuid
from datetime import date, timedelta
from functools import lru_cache

from otcdesk.app.models import ReviewItem, utcnow
from otcdesk.app.repositories import transaction

SNOWBALL = "中证500 雪球 1年 ko103 ki75"
VANILLA = "沪深300 1个月 平值看跌"
VALUATION = date(2026, 12, 1)  # the quotes are priced as of this (trading) day, whatever day the tests run
NOW = "2026-12-01T10:00:00+08:00"  # the service clock of the tests: the same trading day, market hours


@lru_cache(maxsize=8)
def _priced(text: str) -> tuple:
    """The quote's request and priced lines (cached: the FD pricing of a snowball takes a second)."""
    from otcdesk.app.quoting import price_request
    from otcdesk.ner import parse_message

    requests = parse_message(text).requests
    assert requests, text
    return tuple(requests), tuple(price_request(r, valuation_date=VALUATION) for r in requests)


def priced_lines(text: str = SNOWBALL) -> list[dict]:
    import copy

    return copy.deepcopy(list(_priced(text)[1]))


def add_quote(engine, text: str = SNOWBALL, *, chat_id: str = "demo", sender_id: str = "c-zhang",
              sender_name: str = "张经理", age_s: float = 30.0) -> str:
    """A sent quote item priced `age_s` seconds ago; returns its id."""
    requests, lines = _priced(text)
    qid = "Q" + uuid.uuid4().hex[:10].upper()
    created = utcnow() - timedelta(seconds=age_s)
    with transaction(engine) as tx:
        tx.reviews.add_once(ReviewItem(
            id=qid, thread_id=f"thread-{qid}", inbound_id=None, kind="quote", channel="sim", chat_id=chat_id,
            sender_id=sender_id, sender_name=sender_name, text=text, requests=list(requests), lines=list(lines),
            draft_reply="报价", final_reply="报价", status="sent", created_at=created,
            expires_at=created + timedelta(minutes=2), decided_by="trader1", decided_at=created))
    return qid


def add_order(engine, quote_id: str | None, *, notional: float = 20_000_000.0, execution: dict | None = None,
              account: str | None = None, text: str = SNOWBALL, chat_id: str = "demo", sender_id: str = "c-zhang",
              sender_name: str = "张经理", approve: bool = True, by: str = "trader1", kind: str = "order",
              order: dict | None = None, lines: list | None = None, detail: dict | None = None) -> str:
    """An order item on `quote_id` (approved by `by` unless `approve` is False); returns its id."""
    rid = "Q" + uuid.uuid4().hex[:10].upper()
    now = utcnow()
    order = order if order is not None else {
        "quote_id": quote_id, "notional": notional,
        "execution": {"type": "market", "limit_price": None, "pov_pct": None, "start": None, "end": None,
                      **(execution or {})},
        "account": account}
    with transaction(engine) as tx:
        tx.reviews.add_once(ReviewItem(
            id=rid, thread_id=f"thread-{rid}", inbound_id=None, kind=kind, channel="sim", chat_id=chat_id,
            sender_id=sender_id, sender_name=sender_name, text=f"{notional / 1e4:g}万 确认下单",
            requests=[], lines=priced_lines(text) if lines is None else lines, draft_reply="收到，下单确认中",
            created_at=now, expires_at=now + timedelta(minutes=2), order=order, ref_id=quote_id, detail=detail))
        if approve:
            assert tx.reviews.decide(rid, "approved", by, now, final_reply="收到，下单确认中")
    return rid


def add_unwind(engine, trade_id: str, *, notional: float | None, execution: dict | None = None,
               chat_id: str = "demo", sender_id: str = "c-zhang", approve: bool = True, detail: dict | None = None
               ) -> str:
    """An approved unwind item for `trade_id`; returns its id."""
    order = {"trade_id": trade_id, "notional": notional,
             "execution": {"type": "market", "limit_price": None, "pov_pct": None, "start": None, "end": None,
                           **(execution or {})}}
    return add_order(engine, trade_id, kind="unwind", order=order, lines=[], chat_id=chat_id, sender_id=sender_id,
                     approve=approve, detail=detail, notional=notional or 0.0)


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
