"""TradeService: books an approved order item (four eyes), the second approval, unwinds and the trade view.

The desk graph calls it through `agents.desk.TradingPort` (`book`, `unwind`, `unwind_quote`): a refusal (stale
quote, institution not approved, bad notional, …) is an answer with `error` and `code`, audited; the
`*_or_raise` variants raise `workflows.trade.LifecycleError` instead. The HTTP routes (`app.routes.trades`) call
`list`, `get`, `approve_second` and `confirmation_pdf`; `holdings` lists a group's live trades.

Booking (`book`) freezes the order's terms and persists the trade in ONE unit of work: the trade row, its first
lifecycle step (`new` → `live` or `pending_second_approval`, decided by `workflows.trade.fire`) and the audit
entry commit together, so a crash leaves no trade or one whole trade. The trade id is derived from the order
item's id ("T" + 10 hex) and `trade.order_review_id` is unique, so a repeated or concurrent booking of one
item books once and answers with that trade.

Frozen terms: trade date = the clock's today rolled to the next trading day of the product's exchange calendar;
`start_date` = trade date, `maturity_date` on that calendar, the knock-out / coupon observation dates
(`ko_observation_dates`, `coupon_observation_dates`, informational: pricing recomputes them from the same
calendar), `initial_price` = the current spot for market / limit / POV / TWAP executions, or pending
(`initial_price_pending`, no `initial_price` in the product) when the hedge is built at the close or by VWAP:
the fixing service fills it from the start date's close. Coupon and other solved fields come from the quoted
line; `premium_cny` = price_pct / 100 × notional (positive: the client pays).

Effects after a persisted step (`after` of the lifecycle table): `confirm` renders the confirmation PDF
(`confirmation.py`) under `<data dir>/confirmations/` and records its SHA-256 and the terms snapshot it was
drawn from as a `trade_event` row of type `confirmed` (idempotent; re-run by a repeated `book` or on download
when a crash or a missing font skipped it). Above the four-eyes limit the client hears nothing until a risk
user other than the booker approves (`approve_second`): that step, the booking message queued to the outbox
under the order item's id and their audit entries commit together.

Unwinds (`unwind`): the approved `unwind` item's trade is closed through the machine (full) or its notional
reduced (partial), with a `trade_event` of type `unwound` whose `cash_cny` is what the desk pays the client
(negative: the client pays), priced by `unwind_quote` (the book's fair value on today's market minus the
unwind margin) unless the item carries the quote the client was shown (`detail.unwind_quote`).
"""
from __future__ import annotations

import hashlib
import logging
import math
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from otcdesk.app.clock import CN_TZ
from otcdesk.app.models import ReviewItem, TradeEventRow, TradeRow
from otcdesk.app.repositories import transaction
from otcdesk.app.trading.confirmation import ConfirmationError, ConfirmationStore, confirmation_terms, \
    execution_text, initial_price_text, sha256
from otcdesk.workflows.trade import STATES, LifecycleError, TradeContext, fire

log = logging.getLogger(__name__)

EXECUTION_TYPES = ("market", "limit", "pov", "twap", "close", "vwap")
PENDING_INITIAL = frozenset({"close", "vwap"})  # 建仓 at the close or by VWAP: initial price from the close
BOOKABLE_REVIEW = frozenset({"approved", "sent"})
CONFIRMED = "confirmed"  # trade_event type of the confirmation record (not a lifecycle event)
UNWOUND = "unwound"
MAX_LISTED_DATES = 60  # observation dates listed in the product (daily schedules are described, not listed)
_NON_PRODUCT = ("missing", "assumed")


def trade_id_for(order_review_id: str) -> str:
    """The trade id of an order item: deterministic, so a repeated booking finds the same trade."""
    return "T" + hashlib.sha1(f"trade:{order_review_id}".encode()).hexdigest()[:10].upper()


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite gives naive UTC back
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _cn_amount(n: float) -> str:
    """20000000 → 2000万元; 150000000 → 1.5亿元."""
    if abs(n) >= 1e8:
        return f"{n / 1e8:,.4g}亿元"
    if abs(n) >= 1e4:
        return f"{n / 1e4:,.6g}万元"
    return f"{n:,.2f}元"


class TradeService:
    """Books, approves, unwinds and shows trades. Built from explicit dependencies:

    - `engine`, `events` (app.events.EventBus: publishes kind `trade`), `outbox` (app.desk.outbox.OutboxDispatcher:
      its bus is woken when a booking message is queued), `clock` (app.clock.Clock: what "today" is);
    - `four_eyes_notional`, `quote_valid_s` (settings); `data_dir`: confirmations go to `<data_dir>/confirmations`;
    - `pricer`: `pricing_engine.api.price` (doc → result) by default; `market`: underlying → the `market` object
      of CONTRACTS (spot, vol, rate, div) or None, `app.market.market_for` by default;
    - `unwind_margin(structure, remaining_days) -> % of notional` (default: 0);
    - `desk_party`: the desk's name on confirmations; `cjk_font`: OTCDESK_CJK_FONT;
    - `fault(step)`: called between the steps of a booking (tests inject crashes there).
    """

    def __init__(self, engine: Engine, events, outbox, clock, *, four_eyes_notional: float, quote_valid_s: float,
                 data_dir: Path | str, pricer: Callable[[dict], dict] | None = None,
                 market: Callable[[str], dict | None] | None = None,
                 unwind_margin: Callable[[str, int], float] | None = None, desk_party: str = "本公司",
                 cjk_font: str | None = None, fault: Callable[[str], None] | None = None,
                 on_live: Callable[[str], None] | None = None, on_unwound: Callable[[str], None] | None = None):
        from otcdesk.app.market import market_for
        from otcdesk.pricing_engine.api import price

        self.engine = engine
        self.events = events
        self.outbox = outbox
        self.clock = clock
        self.four_eyes_notional = float(four_eyes_notional)
        self.quote_valid_s = float(quote_valid_s)
        self.pricer = pricer or price
        self.market = market or market_for
        self.unwind_margin = unwind_margin
        self.desk_party = desk_party
        self.confirmations = ConfirmationStore(Path(data_dir) / "confirmations", cjk_font)
        self.fault = fault or (lambda step: None)
        self.on_live = on_live or (lambda trade_id: None)  # e.g. the risk book folds the live trade in
        self.on_unwound = on_unwound or (lambda trade_id: None)  # e.g. the risk book revalues without it

    # ---- the desk graph's TradingPort: refusals are answers ({"error", "code"}), audited -----------------------
    def book(self, review_id: str, by: str) -> dict:
        """Book the approved `order` item `review_id`: → {"trade_id", "status", "message"}; `message` is the
        client's booking confirmation (None while the trade waits for its second approval). Idempotent.
        A refused booking answers {"trade_id": None, "status": None, "message": None, "error", "code"}."""
        return self._answer("book", review_id, by, lambda: self.book_or_raise(review_id, by))

    def unwind(self, review_id: str, by: str) -> dict:
        """Unwind as the approved `unwind` item says (see `unwind_or_raise`); a refusal answers {"error", "code"}."""
        return self._answer("unwind", review_id, by, lambda: self.unwind_or_raise(review_id, by))

    def unwind_quote(self, trade_id: str, notional: float | None = None) -> dict:
        """See `unwind_quote_or_raise`; a trade that cannot be unwound answers {"error", "code"}."""
        try:
            return self.unwind_quote_or_raise(trade_id, notional)
        except LifecycleError as exc:
            return {"error": exc.message, "code": exc.code, "trade_id": trade_id}

    def refusal(self, review_id: str) -> str | None:
        """Why approving the pending order or unwind item `review_id` now would be refused, or None (also None
        for other kinds, and for an item the graph will not book: incomplete, refused or stale — approving
        those sends their question or refusal). Reads only; the review service asks before it decides."""
        try:
            with transaction(self.engine) as tx:
                item = tx.reviews.get(review_id)
                detail = (item.detail or {}) if item is not None else {}
                if item is None or item.kind not in ("order", "unwind") or not item.order or \
                        detail.get("missing") or detail.get("refused") or detail.get("stale"):
                    return None
                if item.kind == "unwind":
                    self._check_unwind(tx, item)
                    return None
                self._check_order_item(item, review_id, approved=False)
                quote = self._check_client(tx, item)
            self._check_fresh(item, quote)
        except LifecycleError as exc:
            return exc.message
        return None

    def _check_client(self, tx, item: ReviewItem) -> ReviewItem | None:
        """The quote an order refers to, after checking the institution may trade and the quote was given in
        this chat group."""
        inst = tx.clients.institution_of(item.channel, item.chat_id, item.sender_id)
        if inst is None or inst.kyc_status != "approved" or not inst.can_trade:
            raise LifecycleError("forbidden", "the client's institution is not approved for trading (KYC)")
        quote = tx.reviews.get(item.ref_id) if item.ref_id else None
        if quote is not None and (quote.channel, quote.chat_id) != (item.channel, item.chat_id):
            raise LifecycleError("forbidden", f"quote {quote.id} was not given in this chat group")
        return quote

    @staticmethod
    def _check_unwind(tx, item: ReviewItem) -> TradeRow:
        """The live trade an unwind item names, after checking it was booked for this chat group and the
        notional to unwind is not above what is live."""
        order = item.order or {}
        trade_id = order.get("trade_id") or item.ref_id
        row = tx.trades.get(trade_id) if trade_id else None
        if row is None:
            raise LifecycleError("not_found", f"unwind {item.id} refers to no trade ({trade_id!r})")
        if (row.channel, row.chat_id) != (item.channel, item.chat_id):
            raise LifecycleError("forbidden", f"trade {trade_id} was not booked for this chat group")
        if row.status != "live":
            raise LifecycleError("conflict", f"trade {trade_id} is {row.status}; only a live trade is unwound")
        requested = order.get("notional")
        if requested is not None and not 0 < float(requested) <= row.notional + 1e-6:
            raise LifecycleError("invalid", f"unwind notional {float(requested):,.0f} exceeds the live "
                                            f"{row.notional:,.0f}")
        return row

    def _answer(self, action: str, review_id: str, by: str, run: Callable[[], dict]) -> dict:
        try:
            return run()
        except LifecycleError as exc:
            with transaction(self.engine) as tx:
                tx.audit.record(by, f"trade.{action}_refused", f"review:{review_id}",
                                {"code": exc.code, "reason": exc.message})
            return {"trade_id": None, "status": None, "message": None, "error": exc.message, "code": exc.code}

    # ---- booking ------------------------------------------------------------------------------------------
    def book_or_raise(self, review_id: str, by: str) -> dict:
        """`book`, raising LifecycleError (code not_found | conflict | forbidden | invalid) when refused."""
        done = self._booked(review_id)
        if done is not None:
            return done
        with transaction(self.engine) as tx:
            item = tx.reviews.get(review_id)
            self._check_order_item(item, review_id)
            quote = self._check_client(tx, item)
            institution = tx.clients.institution_of(item.channel, item.chat_id, item.sender_id).name
        self._check_fresh(item, quote)
        row = self._freeze(item, institution, by)
        dest, after = fire("new", "book", TradeContext(notional=row.notional,
                                                       four_eyes_notional=self.four_eyes_notional))
        row.status = dest
        try:
            with transaction(self.engine) as tx:
                tx.trades.add(row)
                self.fault("trade.added")
                tx.trades.record_step(row.id, "book", "new", dest, by, role="trader", at=row.booked_at,
                                      detail={"order_review_id": review_id, "notional": row.notional,
                                              "four_eyes_notional": self.four_eyes_notional})
                self.fault("transition.recorded")
                tx.audit.record(by, "trade.book", f"trade:{row.id}",
                                {"order_review_id": review_id, "status": dest, "quote_id": row.quote_id,
                                 "notional": row.notional, "price_pct": row.price_pct,
                                 "premium_cny": row.premium_cny, "product": row.product,
                                 "execution": row.execution, "account": row.account,
                                 "initial_price_pending": row.initial_price_pending})
                self.fault("audited")
        except IntegrityError:  # booked concurrently from the same item: that trade is the answer
            done = self._booked(review_id)
            if done is not None:
                return done
            raise
        self.fault("committed")
        self._run_effects(row.id, after, by)
        self._publish(row.id)
        return self._result(row)

    def _booked(self, review_id: str) -> dict | None:
        """The answer for an item booked already (finishing a confirmation a crash skipped), else None."""
        with transaction(self.engine) as tx:
            row = tx.trades.for_order(review_id)
            if row is None:
                return None
            needs_confirmation = row.status != "pending_second_approval" and not self._confirmed(tx, row.id)
        if needs_confirmation:
            self._run_effects(row.id, ("confirm",), row.booked_by)
        return self._result(row)

    def _result(self, row: TradeRow) -> dict:
        message = None if row.status == "pending_second_approval" else booking_message(_row_dict(row))
        return {"trade_id": row.id, "status": row.status, "message": message}

    @staticmethod
    def _check_order_item(item: ReviewItem | None, review_id: str, approved: bool = True) -> None:
        if item is None:
            raise LifecycleError("not_found", f"no review item {review_id}")
        if item.kind != "order":
            raise LifecycleError("conflict", f"review item {review_id} is a {item.kind} item, not an order")
        if approved and item.status not in BOOKABLE_REVIEW:
            raise LifecycleError("conflict", f"order {review_id} is {item.status}; only an approved order is booked")
        order = item.order or {}
        notional = order.get("notional")
        if not isinstance(notional, (int, float)) or isinstance(notional, bool) or not math.isfinite(notional) \
                or notional <= 0:
            raise LifecycleError("invalid", f"order {review_id} has no positive notional ({notional!r})")
        execution = order.get("execution") or {}
        if execution.get("type") not in EXECUTION_TYPES:
            raise LifecycleError("invalid", f"order {review_id} has no execution instruction "
                                            f"(one of {', '.join(EXECUTION_TYPES)})")
        _order_line(item)  # raises when there is no single priced line

    def _check_fresh(self, item: ReviewItem, quote: ReviewItem | None) -> None:
        """An order is booked at the quoted price only within `quote_valid_s` of pricing (else: reprice)."""
        priced_at = (item.detail or {}).get("priced_at")
        if priced_at:
            priced = _aware(datetime.fromisoformat(priced_at))
        elif quote is not None:
            priced = _aware(quote.created_at)
        else:
            raise LifecycleError("invalid", f"order {item.id} refers to no priced quote ({item.ref_id!r})")
        age = (_aware(item.created_at) - priced).total_seconds()
        if age > self.quote_valid_s:
            raise LifecycleError("conflict", f"the quote was priced {age:.0f}s before the order (valid "
                                             f"{self.quote_valid_s:.0f}s): reprice it, it is not booked at the "
                                             "stale price")

    def _freeze(self, item: ReviewItem, institution: str, by: str) -> TradeRow:
        """The trade row with its terms frozen (not yet stored)."""
        from otcdesk.pricing_engine.errors import PricingError
        from otcdesk.pricing_engine.products import product_from_dict
        from otcdesk.pricing_engine.schedule import get_calendar

        order, line = item.order, _order_line(item)
        execution = {k: (order.get("execution") or {}).get(k) for k in ("type", "limit_price", "pov_pct",
                                                                           "start", "end")}
        notional = float(order["notional"])
        product = _quoted_product(line)
        underlying = product.get("underlying")
        if not underlying or not product.get("structure"):
            raise LifecycleError("invalid", f"order {item.id}: the quoted line has no underlying or structure")
        try:
            cal = get_calendar(product.get("calendar") or "XSHG")
            trade_date = cal.roll_forward(self.clock.today())
            product.update(trade_date=trade_date.isoformat(), start_date=trade_date.isoformat(), notional=notional)
            pending = execution["type"] in PENDING_INITIAL
            market = self._market(underlying, line)
            if pending:
                product.pop("initial_price", None)
            else:
                product["initial_price"] = float(market["spot"])
            spec = product_from_dict(product)
            start, maturity = spec.dates(trade_date)
            product["maturity_date"] = maturity.isoformat()
            product.update(_observation_dates(product_from_dict(product), trade_date, market))
        except PricingError as exc:
            raise LifecycleError("invalid", f"order {item.id} cannot be booked: {exc}") from None
        price_pct = float(line["price_pct"])
        return TradeRow(
            id=trade_id_for(item.id), order_review_id=item.id, status="new", institution=institution,
            channel=item.channel, chat_id=item.chat_id, sender_id=item.sender_id, client=item.sender_name,
            account=order.get("account"), quote_id=order.get("quote_id") or item.ref_id, product=product,
            underlying=underlying, structure=product["structure"], notional=notional, original_notional=notional,
            price_pct=price_pct, premium_cny=round(price_pct / 100.0 * notional, 2), execution=execution,
            initial_price_pending=pending, booked_by=by, booked_at=self.clock.now())

    def _market(self, underlying: str, line: Mapping | None = None) -> dict:
        from otcdesk.pricing_engine.models import MARKET_INFO, MARKET_INPUTS

        market = self.market(underlying) or (line or {}).get("market")
        if not market or not market.get("spot"):
            raise LifecycleError("invalid", f"no market data for {underlying}")
        return {k: market[k] for k in (*MARKET_INPUTS, *MARKET_INFO) if market.get(k) is not None}

    # ---- four eyes ----------------------------------------------------------------------------------------
    def approve_second(self, trade_id: str, user: str, role: str) -> dict:
        """The second approval of a trade above the four-eyes limit: a risk user who did not book it. → Trade.

        LifecycleError `forbidden` for another role or the booker, `conflict` when the trade is not waiting."""
        with transaction(self.engine) as tx:
            row = tx.trades.get(trade_id)
            if row is None:
                raise LifecycleError("not_found", f"no trade {trade_id}")
            dest, after = fire(row.status, "approve_second", TradeContext(
                notional=row.notional, four_eyes_notional=self.four_eyes_notional, booked_by=row.booked_by,
                actor=user, actor_role=role))
            source = row.status
            if not tx.trades.move(row, "approve_second", dest, user, role=role, at=self.clock.now(),
                                  detail={"booked_by": row.booked_by}):
                raise LifecycleError("conflict", f"trade {trade_id} was changed concurrently")
            text = booking_message(_row_dict(row))
            item = tx.reviews.get(row.order_review_id)
            if item is not None and tx.outbox.enqueue_once(item, text):
                tx.audit.record(user, "outbox.enqueue", f"review:{item.id}", {"text": text, "trade_id": row.id})
            tx.audit.record(user, "trade.approve_second", f"trade:{row.id}",
                            {"role": role, "from": source, "to": dest, "booked_by": row.booked_by,
                             "notional": row.notional})
        self.outbox.events.wake("outbox")  # the row is committed: the dispatcher sends it now
        self._run_effects(trade_id, after, user)
        return self._publish(trade_id)

    # ---- effects ------------------------------------------------------------------------------------------
    def _run_effects(self, trade_id: str, after: Iterable[str], by: str) -> None:
        """Effects of a persisted step; a failure is logged and audited, never undoes the step (re-run later)."""
        for effect in after:
            if effect != "confirm":
                continue  # `notify` (knock-out, maturity, close) is drafted by whoever fired the step
            try:
                self.on_live(trade_id)
            except Exception:
                log.exception("the live trade %s could not be handed to the risk book", trade_id)
            try:
                self.confirm(trade_id, by)
            except Exception as exc:
                log.exception("confirmation of %s failed", trade_id)
                with transaction(self.engine) as tx:
                    tx.audit.record(by, "trade.confirmation_failed", f"trade:{trade_id}",
                                    {"error": f"{type(exc).__name__}: {exc}"})

    def confirm(self, trade_id: str, by: str) -> dict:
        """Generate (once) the trade confirmation: → {"sha256", "file", "confirmed_at"}. Idempotent."""
        with transaction(self.engine) as tx:
            row = tx.trades.get(trade_id)
            if row is None:
                raise LifecycleError("not_found", f"no trade {trade_id}")
            done = self._confirmed(tx, trade_id)
            if done is not None:
                return done.detail
            if row.status in ("new", "pending_second_approval"):
                raise LifecycleError("conflict", f"trade {trade_id} is {row.status}: no confirmation before "
                                                 "its booking is complete")
            data = _row_dict(row)
        confirmed_at = self.clock.now().astimezone(CN_TZ).replace(microsecond=0)
        terms = confirmation_terms(data, desk_party=self.desk_party, confirmed_at=confirmed_at)
        pdf = self.confirmations.render(terms)
        digest = sha256(pdf)
        path = self.confirmations.write(trade_id, pdf)
        detail = {"sha256": digest, "file": path.name, "bytes": len(pdf), "confirmed_at": confirmed_at.isoformat(),
                  "terms": terms}
        with transaction(self.engine) as tx:
            if tx.trades.add_event_once(TradeEventRow(trade_id=trade_id, type=CONFIRMED,
                                                      date=data["product"].get("trade_date") or
                                                      self.clock.today().isoformat(), detail=detail)):
                tx.audit.record(by, "trade.confirmation", f"trade:{trade_id}",
                                {"sha256": digest, "file": path.name, "bytes": len(pdf)})
                return detail
            done = self._confirmed(tx, trade_id)  # a concurrent run recorded it first: its document stands
        self.confirmations.write(trade_id, self.confirmations.render(done.detail["terms"]))
        return done.detail

    def confirmation_pdf(self, trade_id: str, by: str) -> tuple[bytes, str]:
        """The confirmation PDF and its recorded SHA-256 (generated now if a crash or a missing font skipped it;
        redrawn from its stored terms if the file is gone). The download is audited."""
        with transaction(self.engine) as tx:
            row = tx.trades.get(trade_id)
            if row is None:
                raise LifecycleError("not_found", f"no trade {trade_id}")
            done = self._confirmed(tx, trade_id)
        detail = done.detail if done is not None else self.confirm(trade_id, by)
        data = self.confirmations.read(trade_id)
        if data is None or sha256(data) != detail["sha256"]:
            data = self.confirmations.render(detail["terms"])
            if sha256(data) != detail["sha256"]:
                raise ConfirmationError(f"the confirmation file of {trade_id} is missing or altered and redrawing it "
                                        "gives a different document (fonts changed?); recorded sha256 "
                                        f"{detail['sha256']}")
            self.confirmations.write(trade_id, data)
        with transaction(self.engine) as tx:
            tx.audit.record(by, "trade.confirmation.download", f"trade:{trade_id}", {"sha256": detail["sha256"]})
        return data, detail["sha256"]

    @staticmethod
    def _confirmed(tx, trade_id: str) -> TradeEventRow | None:
        return next((e for e in tx.trades.events(trade_id) if e.type == CONFIRMED), None)

    # ---- unwinds ------------------------------------------------------------------------------------------
    def unwind_quote_or_raise(self, trade_id: str, notional: float | None = None) -> dict:
        """What unwinding `notional` (default: all that is live) of a live trade is worth now: the book's fair
        value to the client on today's market minus the unwind margin. → {"trade_id", "notional", "price_pct",
        "value_cny" (positive: the desk pays the client), "margin_pct", "fair_price_pct", "valuation_date",
        "market"}."""
        from otcdesk.pricing_engine.errors import PricingError

        with transaction(self.engine) as tx:
            row = tx.trades.get(trade_id)
            if row is None:
                raise LifecycleError("not_found", f"no trade {trade_id}")
            if row.status != "live":
                raise LifecycleError("conflict", f"trade {trade_id} is {row.status}; only a live trade is unwound")
            knocked_in = any(e.type == "knocked_in" for e in tx.trades.events(trade_id))
        notional = row.notional if notional is None else float(notional)
        if not math.isfinite(notional) or notional <= 0 or notional > row.notional + 1e-6:
            raise LifecycleError("invalid", f"unwind notional must be positive and at most the live "
                                            f"{row.notional:,.0f} (got {notional:,.0f})")
        product = {k: v for k, v in row.product.items() if not k.endswith("observation_dates") and k != "trade_date"}
        product["notional"] = notional
        if knocked_in:
            product["knocked_in"] = True
        vd = self.clock.today()
        market = self._market(row.underlying)
        try:
            result = self.pricer({"product": product, "market": market, "valuation_date": vd.isoformat(),
                                  "engine": "auto"})
        except PricingError as exc:
            raise LifecycleError("invalid", f"trade {trade_id} cannot be priced for an unwind: {exc}") from None
        fair = float(result["price_pct"])
        maturity = date.fromisoformat(row.product["maturity_date"])
        try:
            margin = float(self.unwind_margin(row.structure, max((maturity - vd).days, 0))) if self.unwind_margin \
                else 0.0
        except LookupError as exc:  # no row of the margin table covers it: the desk does not unwind at fair
            raise LifecycleError("invalid", f"no unwind margin for {row.structure} with {(maturity - vd).days} days "
                                            f"left ({exc})") from None
        price_pct = fair - margin
        return {"trade_id": trade_id, "notional": notional, "price_pct": price_pct,
                "value_cny": round(price_pct / 100.0 * notional, 2), "margin_pct": margin, "fair_price_pct": fair,
                "valuation_date": vd.isoformat(), "market": market}

    def unwind_or_raise(self, review_id: str, by: str) -> dict:
        """Unwind as the approved `unwind` item `review_id` says: → {"trade_id", "status", "message", "cash_cny"}.
        Full: the trade is `closed` through the machine; partial: its notional is reduced. Idempotent."""
        with transaction(self.engine) as tx:
            item = tx.reviews.get(review_id)
            if item is None:
                raise LifecycleError("not_found", f"no review item {review_id}")
            if item.kind != "unwind":
                raise LifecycleError("conflict", f"review item {review_id} is a {item.kind} item, not an unwind")
            if item.status not in BOOKABLE_REVIEW:
                raise LifecycleError("conflict", f"unwind {review_id} is {item.status}; only an approved one is done")
            order = item.order or {}
            trade_id = order.get("trade_id") or item.ref_id
            done = self._unwound(tx, trade_id, review_id) if trade_id else None
            if done is not None:
                row = tx.trades.get(trade_id)
                return {"trade_id": trade_id, "status": row.status, "message": unwind_message(row, done),
                        "cash_cny": done.cash_cny}
            row = self._check_unwind(tx, item)
        requested = order.get("notional")
        notional = row.notional if requested is None else float(requested)
        quote = _shown_unwind_quote(item)
        if quote is None:
            quote = self.unwind_quote_or_raise(trade_id, notional)
        price_pct = float(quote["price_pct"])
        cash = round(price_pct / 100.0 * notional, 2)
        today = self.clock.today().isoformat()
        with transaction(self.engine) as tx:
            row = tx.trades.get(trade_id)
            if row.status != "live":
                raise LifecycleError("conflict", f"trade {trade_id} is {row.status}; only a live trade is unwound")
            if notional <= 0 or notional > row.notional + 1e-6:
                raise LifecycleError("invalid", f"unwind notional {notional:,.0f} exceeds the live {row.notional:,.0f}")
            full = notional >= row.notional - 1e-6
            remaining = 0.0 if full else row.notional - notional
            detail = {"review_id": review_id, "notional": notional, "full": full, "remaining_notional": remaining,
                      "price_pct": price_pct, "fair_price_pct": quote.get("fair_price_pct"),
                      "margin_pct": quote.get("margin_pct"), "execution": order.get("execution"), "by": by}
            if full:
                dest, _ = fire(row.status, "close", TradeContext(notional=row.notional))
                moved = tx.trades.move(row, "close", dest, by, role="trader", at=self.clock.now(),
                                       detail={"review_id": review_id, "cash_cny": cash}, closed_at=self.clock.now())
            else:
                moved = tx.trades.amend(row, notional=remaining)
            if not moved:
                raise LifecycleError("conflict", f"trade {trade_id} was changed concurrently")
            event = TradeEventRow(trade_id=trade_id, type=UNWOUND, date=today, ref=review_id, cash_cny=cash,
                                  detail=detail)
            if not tx.trades.add_event_once(event):
                raise LifecycleError("conflict", f"unwind {review_id} of trade {trade_id} was recorded concurrently")
            tx.audit.record(by, "trade.unwind", f"trade:{trade_id}", {**detail, "cash_cny": cash})
            status = row.status
        self._publish(trade_id)
        try:
            self.on_unwound(trade_id)
        except Exception:
            log.exception("the risk book could not be told of the unwind of %s", trade_id)
        with transaction(self.engine) as tx:
            row = tx.trades.get(trade_id)
            return {"trade_id": trade_id, "status": status,
                    "message": unwind_message(row, self._unwound(tx, trade_id, review_id)), "cash_cny": cash}

    @staticmethod
    def _unwound(tx, trade_id: str, review_id: str) -> TradeEventRow | None:
        return next((e for e in tx.trades.events(trade_id)
                     if e.type == UNWOUND and (e.detail or {}).get("review_id") == review_id), None)

    # ---- views --------------------------------------------------------------------------------------------
    def get(self, trade_id: str) -> dict:
        with transaction(self.engine) as tx:
            row = tx.trades.get(trade_id)
            if row is None:
                raise LifecycleError("not_found", f"no trade {trade_id}")
            return self.trade_dict(row, tx)

    def list(self, status: str | None = None, limit: int = 500) -> list[dict]:
        """Newest first, optionally in one lifecycle status."""
        if status is not None and status not in STATES:
            raise LifecycleError("invalid", f"unknown trade status {status!r} (one of {', '.join(STATES)})")
        with transaction(self.engine) as tx:
            rows = tx.trades.list(status, limit)
            return self._dicts(tx, rows)

    def find(self, *, underlying: str | None = None, institution: str | None = None, status: str | None = None,
             limit: int = 10) -> list[dict]:
        """Newest first, filtered by underlying, institution and lifecycle status (the assistant's trade lookup)."""
        if status is not None and status not in STATES:
            raise LifecycleError("invalid", f"unknown trade status {status!r} (one of {', '.join(STATES)})")
        with transaction(self.engine) as tx:
            rows = tx.trades.list(status, limit, institution=institution, underlying=underlying)
            return self._dicts(tx, rows)

    def holdings(self, channel: str, chat_id: str) -> list[dict]:
        """The live trades of a chat group (what "查持仓" lists), oldest first."""
        with transaction(self.engine) as tx:
            rows = [r for r in tx.trades.list("live", 500, chat_id=chat_id) if r.channel == channel]
            return self._dicts(tx, rows[::-1])

    def trade_dict(self, row: TradeRow, tx=None) -> dict:
        """The CONTRACTS `Trade` document plus extras (transitions, execution, account, confirmation)."""
        if tx is None:
            with transaction(self.engine) as own:
                return self.trade_dict(row, own)
        return self._dicts(tx, [row])[0]

    def _dicts(self, tx, rows: list[TradeRow]) -> list[dict]:
        ids = [r.id for r in rows]
        steps, events = tx.trades.transitions_for(ids), tx.trades.events_for(ids)
        return [trade_document(r, steps.get(r.id, []), events.get(r.id, [])) for r in rows]

    def announce(self, trade_id: str) -> dict:
        """Publish the trade as it is now (a `trade` event: the console's trade pages update live)."""
        return self._publish(trade_id)

    def _publish(self, trade_id: str) -> dict:
        data = self.get(trade_id)
        self.events.publish("trade", data)
        return data


# ---- documents and messages ------------------------------------------------------------------------------------
def trade_document(row: TradeRow, steps: list, events: list) -> dict:
    """`Trade` of CONTRACTS Part 2 from a row, its transition rows and its event rows."""
    confirmed = next((e for e in events if e.type == CONFIRMED), None)
    approvals = [{"user": s.by, "role": s.role, "at": _iso(s.at), "step": s.trigger}
                 for s in steps if s.trigger in ("book", "approve_second")]
    return {
        "id": row.id, "status": row.status, "institution": row.institution, "group": row.chat_id,
        "client": row.client, "quote_id": row.quote_id, "product": row.product, "notional": row.notional,
        "price_pct": row.price_pct, "premium_cny": row.premium_cny, "booked_by": row.booked_by,
        "booked_at": _iso(row.booked_at), "approvals": approvals,
        "events": [{"type": e.type, "date": e.date, "detail": e.detail, "cash_cny": e.cash_cny}
                   for e in events if e.type != CONFIRMED],
        # extras
        "channel": row.channel, "sender_id": row.sender_id, "order_review_id": row.order_review_id,
        "underlying": row.underlying, "structure": row.structure, "original_notional": row.original_notional,
        "trade_date": row.product.get("trade_date"), "execution": row.execution, "account": row.account,
        "initial_price_pending": row.initial_price_pending, "closed_at": _iso(row.closed_at), "version": row.version,
        "transitions": [{"trigger": s.trigger, "source": s.source, "dest": s.dest, "by": s.by, "role": s.role,
                         "at": _iso(s.at), "detail": s.detail} for s in steps],
        "confirmation": None if confirmed is None else {
            "sha256": confirmed.detail["sha256"], "file": confirmed.detail["file"],
            "confirmed_at": confirmed.detail["confirmed_at"], "bytes": confirmed.detail.get("bytes")},
    }


def _row_dict(row: TradeRow) -> dict:
    return {"id": row.id, "quote_id": row.quote_id, "institution": row.institution, "account": row.account,
            "client": row.client, "product": dict(row.product), "structure": row.structure,
            "underlying": row.underlying, "notional": row.notional, "price_pct": row.price_pct,
            "premium_cny": row.premium_cny, "execution": dict(row.execution or {}),
            "initial_price_pending": row.initial_price_pending}


def booking_message(trade: Mapping[str, Any]) -> str:
    """The client's booking confirmation in the group (Chinese, WeChat-sized)."""
    from otcdesk.agents.quote_card import describe_request

    product = trade["product"]
    head = describe_request({k: v for k, v in product.items() if k not in ("notional", "coupon_pct")})
    if product.get("coupon_pct") is not None and product.get("structure") in ("snowball", "phoenix"):
        money_line = f"年化票息 {product['coupon_pct']:.2f}%"
        if abs(trade["premium_cny"]) >= 0.005:
            money_line += f"；期权费 {trade['price_pct']:.2f}%（{trade['premium_cny']:,.2f} 元）"
    else:
        money_line = f"期权费 {trade['price_pct']:.2f}%（{trade['premium_cny']:,.2f} 元）"
    lines = [
        f"【成交确认 {trade['id']}】",
        head,
        f"名义本金 {_cn_amount(trade['notional'])}；{money_line}",
        f"交易日 {product.get('trade_date')}，到期日 {product.get('maturity_date')}；期初价格 "
        f"{initial_price_text(product, trade['initial_price_pending'], trade['execution'])}",
        f"建仓指令：{execution_text(trade['execution'])}" + (f"；产品户：{trade['account']}" if trade.get("account")
                                                         else ""),
    ]
    if trade.get("quote_id"):
        lines.append(f"对应报价 {trade['quote_id']}。交易确认书随后发送，以交易确认书为准。")
    else:
        lines.append("交易确认书随后发送，以交易确认书为准。")
    return "\n".join(lines)


def unwind_message(row: TradeRow, event: TradeEventRow) -> str:
    """The client's unwind confirmation: full or partial, the price and who pays whom."""
    d = event.detail or {}
    cash = event.cash_cny or 0.0
    who = "我司支付贵司" if cash >= 0 else "贵司支付我司"
    what = "已全部平仓" if d.get("full") else f"已部分平仓，剩余名义本金 {_cn_amount(d.get('remaining_notional', 0))}"
    return (f"【平仓确认 {row.id}】{what}。平仓名义本金 {_cn_amount(d.get('notional', 0))}，平仓价格 "
            f"{d.get('price_pct', 0):.2f}%，平仓金额 {abs(cash):,.2f} 元（{who}），平仓日 {event.date}。"
            f"平仓指令：{execution_text(d.get('execution'))}。")


# ---- order items -------------------------------------------------------------------------------------------------
def _order_line(item: ReviewItem) -> dict:
    """The priced line an order books: its only line, or `order.line` (序号, 1-based) of several."""
    lines = [ln for ln in (item.lines or []) if isinstance(ln, dict)]
    pick = (item.order or {}).get("line")
    if len(lines) == 1:  # the item carries the one quoted line it orders (`order.line` numbers it in the quote)
        line = lines[0]
    elif pick is not None:
        if not isinstance(pick, int) or not 1 <= pick <= len(lines):
            raise LifecycleError("invalid", f"order {item.id}: line {pick!r} is not one of its {len(lines)} lines")
        line = lines[pick - 1]
    else:
        raise LifecycleError("invalid", f"order {item.id} has {len(lines)} priced lines: say which one it books "
                                        "(order.line)")
    if line.get("error") or line.get("price_pct") is None or not isinstance(line.get("request"), dict):
        raise LifecycleError("invalid", f"order {item.id}: the quoted line has no price ({line.get('error')})")
    return line


def _quoted_product(line: Mapping[str, Any]) -> dict:
    """The product as quoted: the pricer's echoed product (solved fields included) or the request plus `solved`;
    the quote's own dates and initial price are dropped (they are fixed at booking)."""
    req = line["request"]
    product = dict(line.get("product") or {**req, **(line.get("solved") or {})})
    for key in _NON_PRODUCT:
        product.pop(key, None)
    product.pop("start_date", None)
    if req.get("maturity_date") is None:
        product.pop("maturity_date", None)
    return {k: v for k, v in product.items() if v is not None}


def _observation_dates(spec, trade_date: date, market: dict) -> dict:
    """The knock-out and coupon observation dates of the frozen product (empty when it has none or they are
    daily)."""
    from otcdesk.pricing_engine.models import MarketSpec

    try:
        sched = spec.resolve(trade_date, MarketSpec.from_dict(market).to_model())
    except Exception:  # a structure whose schedule needs more than dates: nothing to list
        log.debug("no observation schedule for %s", spec.structure, exc_info=True)
        return {}
    out: dict = {}
    ko = [d for block in sched.knock_outs if block.monitoring == "discrete" for d in block.dates]
    if ko and len(ko) <= MAX_LISTED_DATES:
        out["ko_observation_dates"] = [d.isoformat() for d in ko]
    if sched.coupons is not None and 0 < len(sched.coupons.dates) <= MAX_LISTED_DATES:
        out["coupon_observation_dates"] = [d.isoformat() for d in sched.coupons.dates]
    return out


def _shown_unwind_quote(item: ReviewItem) -> dict | None:
    """The unwind price the client was shown on the item (`detail.unwind_quote`), if any."""
    quote = (item.detail or {}).get("unwind_quote")
    return quote if isinstance(quote, dict) and quote.get("price_pct") is not None else None
