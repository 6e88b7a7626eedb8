"""`GET /api/review` pages on a real server (CONTRACTS Part 2: `?limit=&before=`, no pending item dropped silently):
after a burst, every pending item is reachable through the pages, none twice, with the count in `X-Total-Count`."""
from datetime import timedelta

from otcdesk.app.db import make_engine
from otcdesk.app.models import ReviewItem, utcnow
from otcdesk.app.repositories import transaction
from otcdesk.bots.base import InboundMessage
from desk_fixtures import RunningDesk

BURST = 250


def seed_burst(settings) -> None:
    engine = make_engine(settings.db_url)
    now = utcnow()
    with transaction(engine) as tx:
        for n in range(BURST):
            iid = tx.inbound.add(InboundMessage(channel="sim", chat_id="demo", sender_id=f"c{n}",
                                                sender_name=f"c{n}", text="沪深300 1个月 平值看跌",
                                                platform_msg_id=f"burst-{n}"))
            tx.inbound.finish(iid, "processed", "quote", None)
            tx.reviews.add_once(ReviewItem(
                id=f"QP{n:04d}", thread_id=f"burst-{n}", inbound_id=iid, channel="sim", chat_id="demo",
                sender_id=f"c{n}", sender_name=f"c{n}", text="沪深300 1个月 平值看跌", draft_reply="期权费 2.00%",
                created_at=now + timedelta(milliseconds=n // 10), expires_at=now + timedelta(hours=1, seconds=n)))
    engine.dispose()


async def test_every_pending_item_of_a_burst_is_reachable_through_the_pages_once(desk_settings):
    seed_burst(desk_settings)
    desk = await RunningDesk(desk_settings).start()
    try:
        async with await desk.login() as trader:
            r = await trader.get("/api/review?status=pending")  # the first page as before: 200 newest, and the count
            assert r.status == 200 and len(await r.json()) == 200 and r.headers["X-Total-Count"] == str(BURST)
            assert 'rel="next"' in r.headers["Link"]
            seen, url, pages = [], "/api/review?status=pending&limit=60", 0
            while url:
                r = await trader.get(url)
                assert r.status == 200 and r.headers["X-Total-Count"] == str(BURST)
                page = await r.json()
                assert isinstance(page, list) and all(i["status"] == "pending" for i in page)
                seen += [i["id"] for i in page]
                pages += 1
                url = r.links.get("next", {}).get("url")
                url = url and str(url.relative())
            assert pages == 5 and len(seen) == len(set(seen)) == BURST
            assert seen[-1] == "QP0000"  # the oldest, the soonest to expire, on the last page
            for bad in ("limit=0", "limit=501", "limit=x", "before=NO-SUCH-ITEM"):
                r = await trader.get(f"/api/review?status=pending&{bad}")
                assert r.status == 400, bad
    finally:
        await desk.stop()
