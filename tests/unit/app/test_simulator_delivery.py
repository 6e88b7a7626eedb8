"""The simulator as a platform on a real desk core (SQLite, the real graph): every message the group saw reaches
the desk, delivered again after a crash between the two; a long message is stored whole and its review item says
the parser read only its start."""
import pytest

from otcdesk.app.desk.ports import PARSE_CHARS
from otcdesk.app.repositories import transaction
from otcdesk.bots.simulator import SimulatorChannel


class ProcessDied(BaseException):
    """Stands for the process being killed between the transcript and the delivery."""


def dies(_event):
    raise ProcessDied()


def test_a_message_the_group_saw_but_the_desk_never_stored_is_delivered_again(desk_core):
    transcript = desk_core.outbox.channels["sim"].transcript
    with pytest.raises(ProcessDied):
        SimulatorChannel(transcript, dies).post("demo", "张经理", "沪深300 1个月 平值看跌")
    [shown] = transcript.messages("demo")
    with transaction(desk_core.engine) as tx:
        assert tx.inbound.find("sim", shown["message_id"]) is None

    restarted = SimulatorChannel(transcript, desk_core.inbound)  # what `open_process` does at start-up
    assert restarted.redeliver() == 1 and restarted.redeliver() == 0
    desk_core.runner.drain()
    [item] = desk_core.reviews.list("pending")
    assert item["sender"] == "张经理" and item["requests"][0]["underlying"] == "000300.SH"
    with transaction(desk_core.engine) as tx:
        assert tx.inbound.get(tx.inbound.find("sim", shown["message_id"]))["text"] == "沪深300 1个月 平值看跌"


def test_a_long_message_is_stored_whole_and_its_review_item_says_it_was_cut_for_parsing(desk_core):
    sim = desk_core.outbox.channels["sim"]
    long_text = "沪深300 1个月 平值看跌 " + "补充说明" * 3000  # 12,000+ characters
    long_id = sim.post("demo", "张经理", long_text)
    sim.post("demo", "李四", "中证500 2周 平值看涨")
    desk_core.runner.drain()
    with transaction(desk_core.engine) as tx:
        assert tx.inbound.get(tx.inbound.find("sim", long_id))["text"] == long_text.strip()
    items = {i["sender"]: i for i in desk_core.reviews.list("pending")}
    long_item, short_item = items["张经理"], items["李四"]
    assert long_item["text"] == long_text.strip() and long_item["requests"][0]["underlying"] == "000300.SH"
    assert long_item["truncated_for_parsing"] is True and long_item["parsed_chars"] == PARSE_CHARS
    assert short_item["truncated_for_parsing"] is False and short_item["parsed_chars"] == len(short_item["text"])
