"""A desk process that dies in the middle of a graph run loses nothing: after a restart the run continues
from its last checkpoint and the client's request still reaches the review queue, once."""
from otcdesk.app.db import init_db, make_engine
from otcdesk.app.demo import seed_demo
from otcdesk.app.desk_service import DeskService
from otcdesk.app.quoting import price_request
from otcdesk.app.settings import load_settings
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
    desk = DeskService(settings, engine, {}, price_fn=dying_price)
    inbound_id, _ = desk.ingest(InboundMessage(channel="sim", chat_id="demo", sender_id="c1", sender_name="c1",
                                               text="沪深300 1个月 平值看跌", platform_msg_id="m-crash"))
    try:
        desk.process_inbound(inbound_id)
        raise AssertionError("the injected crash did not happen")
    except ProcessDied:
        pass
    desk.close()
    assert desk.list_reviews() == [] and desk.unprocessed_inbound() == [inbound_id]

    restarted = DeskService(settings, engine, {}, price_fn=price_request)
    for inbound in restarted.unprocessed_inbound():
        restarted.process_inbound(inbound)
    [item] = restarted.list_reviews("pending")
    assert item["requests"][0]["underlying"] == "000300.SH" and item["lines"][0]["price_pct"] > 0
    assert restarted.unprocessed_inbound() == []
    restarted.process_inbound(inbound_id)  # a second delivery of the same work changes nothing
    assert len(restarted.list_reviews()) == 1
    restarted.close()
    engine.dispose()
