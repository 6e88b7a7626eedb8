"""WeCom adapter pieces without a network: the byte-limit split and reading a decrypted message."""
from hypothesis import given, strategies as st

from otcdesk.bots.wecom import TEXT_LIMIT_BYTES, WeComChannel, split_utf8
from wecom_fixtures import WeComApp


@given(st.text(alphabet=st.sampled_from("报价沪深300看跌a1 \n🙂é"), max_size=3000), st.integers(8, TEXT_LIMIT_BYTES))
def test_split_keeps_every_character_within_the_byte_limit(text, limit):
    parts = split_utf8(text, limit)
    assert all(0 < len(p.encode("utf-8")) <= limit for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")


def test_split_prefers_line_breaks():
    text = "第一行报价\n" * 300
    parts = split_utf8(text)
    assert len(parts) > 1 and all(p.endswith("第一行报价") for p in parts)


def channel() -> WeComChannel:
    app = WeComApp()
    return WeComChannel(corp_id=app.corp_id, token=app.token, aes_key=app.aes_key, secret=app.secret,
                        agent_id=app.agent_id, api_base="http://127.0.0.1:9", deliver=lambda m: None,
                        bot_name="询价机器人")


def test_group_mention_and_direct_message():
    ch = channel()
    group = ch.to_inbound({"MsgType": "text", "MsgId": "1", "ChatId": "wrk1", "From": {"UserId": "u1", "Name": "张经理"},
                           "Text": {"Content": "@询价机器人  沪深300 1个月 平值看跌"}})
    assert (group.chat_id, group.sender_id, group.sender_name, group.text, group.mentions_bot) == \
        ("wrk1", "u1", "张经理", "沪深300 1个月 平值看跌", True)
    chatter = ch.to_inbound({"MsgType": "text", "MsgId": "2", "ChatId": "wrk1", "From": {"UserId": "u1"},
                             "Text": {"Content": "谢谢"}})
    assert chatter.mentions_bot is False
    direct = ch.to_inbound({"MsgType": "text", "MsgId": "3", "FromUserName": "u2", "Content": "中证500 2周 平值看涨"})
    assert (direct.chat_id, direct.mentions_bot, direct.platform_msg_id) == ("user:u2", True, "3")
    assert ch.to_inbound({"MsgType": "event", "Event": "enter_agent", "FromUserName": "u2"}) is None
