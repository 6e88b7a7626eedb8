"""A desk process that dies in the middle of a graph run loses nothing: after a restart the run continues
from its last checkpoint and the client's request still reaches the review queue, once."""
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.demo import seed_demo
from otcdesk.app.settings import load_settings
from otcdesk.app.wiring import build_desk
from otcdesk.bots.base import InboundMessage


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
