"""`GET /metrics` on a real server: a simulated client message and its approval show up with their labels; with
OTCDESK_METRICS_TOKEN set a scrape needs the bearer token."""
from prometheus_client.parser import text_string_to_metric_families

from desk_fixtures import RunningDesk, wait_for


def samples(text: str) -> dict:
    """{(name, frozenset(labels)): value} of a scrape."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


async def test_scrape_after_a_message_and_its_approval(desk):
    async with desk.session() as anon:
        before = samples(await (await anon.get("/metrics")).text())
    assert ("otcdesk_inbound_messages_total", frozenset({("channel", "sim")})) not in before
    await desk.say("沪深300 1个月 平值看跌")
    s = await desk.login()

    async def pending():
        return await (await s.get("/api/review", params={"status": "pending"})).json()

    [item] = await wait_for(pending, timeout=60)
    assert (await s.post(f"/api/review/{item['id']}/approve", json={})).status == 200

    async def sent():
        return [i for i in await (await s.get("/api/review", params={"status": "sent"})).json()]

    await wait_for(sent, timeout=30)
    r = await s.get("/metrics")
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
    got = samples(await r.text())
    await s.close()
    assert got[("otcdesk_inbound_messages_total", frozenset({("channel", "sim")}))] == 1
    assert got[("otcdesk_review_items_opened_total", frozenset({("kind", "quote")}))] == 1
    assert got[("otcdesk_review_decisions_total", frozenset({("kind", "quote"), ("decision", "approved")}))] == 1
    assert got[("otcdesk_message_to_review_seconds_count", frozenset({("kind", "quote")}))] == 1
    assert 0 < got[("otcdesk_message_to_review_seconds_sum", frozenset({("kind", "quote")}))] < 60
    assert got[("otcdesk_outbox_sends_total", frozenset({("channel", "sim"), ("result", "sent")}))] == 1


async def test_metrics_token(desk_settings):
    settings = desk_settings.model_copy(update={"metrics_token": "scrape-secret"})
    running = await RunningDesk(settings, demo=False).start()
    try:
        async with running.session() as s:
            assert (await s.get("/metrics")).status == 401
            assert (await s.get("/metrics", headers={"Authorization": "Bearer wrong"})).status == 401
            r = await s.get("/metrics", headers={"Authorization": "Bearer scrape-secret"})
            assert r.status == 200 and "otcdesk_inbound_messages_total" in await r.text()
    finally:
        await running.stop()
