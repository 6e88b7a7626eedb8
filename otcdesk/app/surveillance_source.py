"""The desk's own tables as surveillance input (`otcdesk surveil --from-desk`): read-only, through repositories.

The desk is an OTC dealer, not an exchange: it has no order book, and every trade is between a client and the
desk. What maps, and how:

- **accounts**: one per client product account seen on an order or a trade, `account_id` = "<institution>/<product
  account>" (or the institution alone when the order named no product account). The only identifier the desk's
  tables hold for the person behind an order is the chat sender id (WeChat / WeCom user); it goes in `device_id`,
  one `Account` row per (account, sender), so two institutions' accounts whose orders came from one chat user
  form a control group. ID numbers, mobiles, bank accounts, addresses and IPs are not in these tables (KYC data is
  not read here), so those links cannot be found from this source.
- **orders**: each `order` review item is a `new` at its creation, side `B` when the client buys the product and
  `S` when it sells; an `unwind` item is an order on the side opposite to the trade it closes. `qty` is the
  notional (CNY), `price` the quoted price in %, `instrument` the underlying. A booked order adds a `fill` at its
  trade's booking time; a client's withdrawal (撤单) is a `cancel` at its decision time. A trader's rejection or
  an expiry is not the client's cancel and adds nothing.
- **trades**: each booked trade, the desk's side named `DESK` (booked unwinds are steps of the original trade, not
  trades of their own, and appear only as filled unwind orders).

So wash trades cannot arise here (one side is always the desk) and spoofing needs a client's large orders
withdrawn within seconds beside its opposite-side bookings: rare in a chat-driven OTC flow, but that is the
question the detector asks of it.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy.engine import Engine

from otcdesk.app.repositories import transaction
from otcdesk.workflows.surveillance.model import Account, Order, Trade

DESK = "DESK"
_PAGE = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _ms(at: datetime) -> int:
    if at.tzinfo is None:  # the desk stores UTC
        at = at.replace(tzinfo=timezone.utc)
    return int((at - _EPOCH).total_seconds() * 1000)


def _line(item) -> dict:
    lines = [ln for ln in (item.lines or []) if isinstance(ln, dict)]
    pick = (item.order or {}).get("line")
    if len(lines) == 1:
        return lines[0]
    if isinstance(pick, int) and 1 <= pick <= len(lines):
        return lines[pick - 1]
    return {}


def _side(product_side: str | None, unwind: bool = False) -> str:
    buys = (product_side or "client_buys") != "client_sells"
    return "B" if buys != unwind else "S"


def load_from_desk(engine: Engine) -> tuple[list[Order], list[Trade], list[Account], dict]:
    """(orders, trades, accounts, counts) from the desk's order and unwind items, trades and chat senders."""
    orders: list[Order] = []
    trades: list[Trade] = []
    senders: dict[str, set[str]] = {}
    skipped = 0
    with transaction(engine) as tx:
        booked = {t.order_review_id: t for t in tx.trades.list(limit=10**9)}
        by_id = {t.id: t for t in booked.values()}
        institutions: dict[tuple, str] = {}
        before = None
        while True:
            page = tx.reviews.list(limit=_PAGE, before=before)
            if not page:
                break
            before = page[-1].id
            for item in page:
                if item.kind not in ("order", "unwind"):
                    continue
                key = (item.channel, item.chat_id, item.sender_id)
                if key not in institutions:
                    inst = tx.clients.institution_of(*key)
                    institutions[key] = inst.name if inst else f"{item.channel}:{item.chat_id}"
                order = item.order or {}
                account = institutions[key] + (f"/{order['account']}" if order.get("account") else "")
                if item.kind == "unwind":
                    original = by_id.get(order.get("trade_id") or item.ref_id or "")
                    instrument = original.underlying if original else ""
                    side = _side((original.product or {}).get("side") if original else None, unwind=True)
                    price = None
                else:
                    line = _line(item)
                    request = line.get("request") if isinstance(line.get("request"), dict) else {}
                    instrument = request.get("underlying") or ""
                    side = _side(request.get("side"))
                    price = line.get("price_pct")
                notional = order.get("notional")
                if not instrument or not isinstance(notional, (int, float)) or notional <= 0:
                    skipped += 1
                    continue
                senders.setdefault(account, set()).add(f"chat-sender:{item.channel}:{item.sender_id}")
                orders.append(Order(item.id, account, _ms(item.created_at), instrument, side,
                                    float(price) if isinstance(price, (int, float)) else None, float(notional), "new"))
                trade = booked.get(item.id)
                if trade is not None:
                    orders.append(Order(item.id, account, _ms(trade.booked_at), instrument, side, trade.price_pct,
                                        float(trade.original_notional), "fill"))
                elif item.kind == "unwind" and item.status in ("approved", "sent") and item.decided_at:
                    orders.append(Order(item.id, account, _ms(item.decided_at), instrument, side, None,
                                        float(notional), "fill"))
                elif item.status == "withdrawn" and item.decided_at:
                    orders.append(Order(item.id, account, _ms(item.decided_at), instrument, side, None, None,
                                        "cancel"))
        for t in booked.values():
            account = (t.institution or t.client) + (f"/{t.account}" if t.account else "")
            buyer, seller = (account, DESK) if _side((t.product or {}).get("side")) == "B" else (DESK, account)
            trades.append(Trade(t.id, _ms(t.booked_at), t.underlying, t.price_pct, float(t.original_notional),
                                buyer, seller))
    accounts = [Account.of(acc, device_id=sender) for acc in sorted(senders) for sender in sorted(senders[acc])]
    counts = {"orders": sum(o.event == "new" for o in orders), "order_events": len(orders), "trades": len(trades),
              "accounts": len(senders), "skipped_items": skipped}
    return orders, trades, accounts, counts
