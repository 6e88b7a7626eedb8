"""A desk process that dies loses nothing: after a restart a run cut off mid-graph continues from its last
checkpoint and the client's request still reaches the review queue, once; and `otcdesk serve --demo` killed
with -9 during a burst of group messages has, once restarted, stored and run every message the group saw."""
import threading
import time

import requests

from otcdesk.app.db import init_db, make_engine
from otcdesk.app.demo import seed_demo
from otcdesk.app.models import InboundMessageRow
from otcdesk.app.repositories import transaction
from otcdesk.app.settings import load_settings
from otcdesk.app.wiring import build_desk
from otcdesk.bots.base import InboundMessage
from desk_fixtures import ServeProcess


class ProcessDied(BaseException):
    """Stands for the process being killed mid-run (not an error the desk could catch)."""


def dying_price(_req):
    raise ProcessDied()


def test_run_cut_off_mid_graph_resumes_after_restart(tmp_path):
    settings = load_settings(data_dir=tmp_path, DATABASE_URL=None)
    engine = make_engine(settings.db_url)
    init_db(engine)
    seed_demo(engine)
    desk = build_desk(settings, engine, price=dying_price)
    inbound_id = desk.inbound(InboundMessage(channel="sim", chat_id="demo", sender_id="c1", sender_name="c1",
                                             text="沪深300 1个月 平值看跌", platform_msg_id="m-crash"))["inbound_id"]
    try:
        desk.runner.drain()
        raise AssertionError("the injected crash did not happen")
    except ProcessDied:
        pass
    desk.close()
    assert desk.reviews.list() == [] and desk.runner.unprocessed() == [inbound_id]

    restarted = build_desk(settings, engine)
    assert restarted.runner.recover() == {"resumed": 0, "unprocessed": 1}
    assert restarted.runner.drain() == 1
    [item] = restarted.reviews.list("pending")
    assert item["requests"][0]["underlying"] == "000300.SH" and item["lines"][0]["price_pct"] > 0
    assert restarted.runner.unprocessed() == []
    restarted.runner.process(inbound_id)  # a second delivery of the same work changes nothing
    assert len(restarted.reviews.list()) == 1
    restarted.close()
    engine.dispose()


BURST_TEXTS = ["沪深300 1个月 平值看跌", "中证500 2周 平值看涨 500万", "谢谢各位老师", "创业板 3个月 95%看跌",
               "300、创业板 各来一个 2周和1个月的平值看跌"]


def _burst(url: str, acked: list, stop: threading.Event, poster: int) -> None:
    """One client posting to the demo group until stopped or the server is gone; keeps the acknowledged ids."""
    s, n = requests.Session(), 0
    while not stop.is_set():
        try:
            r = s.post(f"{url}/api/sim/groups/demo/messages", timeout=30,
                       json={"sender": f"客户{poster}", "text": BURST_TEXTS[n % len(BURST_TEXTS)]})
        except requests.RequestException:
            return
        if r.status_code == 200:
            acked.append(r.json()["message_id"])
        n += 1


def _unfinished(engine, acked: list) -> list:
    """Client messages (those the group saw, and every acknowledged one) without a processed run."""
    with transaction(engine) as tx:
        shown = [m["message_id"] for m in tx.sim.messages("demo") if not m["from_bot"]]
        missing = sorted(set(acked) - set(shown))
        for mid in shown:
            iid = tx.inbound.find("sim", mid)
            if iid is None or tx.session.get(InboundMessageRow, iid).status != "processed":
                missing.append(mid)
    return missing


def test_kill_9_during_a_burst_of_group_messages_loses_none(tmp_path):
    server = ServeProcess(tmp_path, "--demo")
    server.wait_for_log("DEMO simulator")
    acked, stop = [], threading.Event()
    posters = [threading.Thread(target=_burst, args=(server.url, acked, stop, k)) for k in range(8)]
    for t in posters:
        t.start()
    deadline = time.time() + 60
    while len(acked) < 40 and time.time() < deadline:
        time.sleep(0.02)
    server.kill()  # with posts in flight
    stop.set()
    for t in posters:
        t.join(timeout=60)
    assert len(acked) >= 40

    restarted = ServeProcess(tmp_path, "--demo")
    engine = make_engine(f"sqlite:///{(tmp_path / 'otcdesk.db').resolve()}")
    try:
        restarted.wait_for_log("otcdesk serving on")
        deadline, missing = time.time() + 240, None
        while time.time() < deadline:
            missing = _unfinished(engine, acked)
            if not missing:
                break
            time.sleep(0.5)
        assert missing == [], f"{len(missing)} of the group's messages never ran: {missing[:5]}"
    finally:
        restarted.stop()
        engine.dispose()
