"""The review gate under random sequences of messages, decisions, expiries, dispatches and restarts.

Invariant: an outbound message exists only for a review item a trader approved, at most one per item,
and the client sees each approved reply at most once (exactly once after a dispatch).
"""
import asyncio
import itertools
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import update
from sqlmodel import select

from otcdesk.app.db import init_db, make_engine, unit_of_work
from otcdesk.app.demo import seed_demo
from otcdesk.app.models import OutboxMessage, ReviewItem, SimMessage, utcnow
from otcdesk.app.repositories.sim import SqlSimTranscript
from otcdesk.app.settings import load_settings
from otcdesk.app.wiring import build_desk
from otcdesk.bots.base import InboundMessage
from otcdesk.bots.simulator import SimulatorChannel
from otcdesk.workflows.review import ReviewError

MESSAGES = ["@询价机器人 沪深300 1个月 平值看跌", "中证500 2周 看涨 平值 500万", "谢谢", "😀", "沪深300 平值看涨",
            "创业板 3个月 虚值5% 看跌"]
_counter = itertools.count()


class GateMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        import tempfile

        self.tmp = tempfile.TemporaryDirectory()
        self.settings = load_settings(data_dir=self.tmp.name, DATABASE_URL=None)
        self.engine = make_engine(self.settings.db_url)
        init_db(self.engine)
        seed_demo(self.engine)
        self.approved: set[str] = set()
        self._start()

    def _start(self):
        self.desk = build_desk(self.settings, self.engine)
        self.desk.connect(SimulatorChannel(SqlSimTranscript(self.engine), lambda msg: None))

    def _pending(self) -> list[str]:
        with unit_of_work(self.engine) as s:
            return sorted(s.exec(select(ReviewItem.id).where(ReviewItem.status == "pending")))

    @rule(text=st.sampled_from(MESSAGES), group=st.sampled_from(["demo", "prospect"]))
    def client_speaks(self, text, group):
        n = next(_counter)
        msg = InboundMessage(channel="sim", chat_id=group, sender_id=f"c{n % 3}", sender_name=f"c{n % 3}",
                             text=text, platform_msg_id=f"m{n}")
        first = self.desk.inbound(msg)
        assert first["new"] and self.desk.inbound(msg) == {"inbound_id": first["inbound_id"], "new": False}
        assert self.desk.runner.drain() == 1  # a redelivered message is not run again

    @rule(pick=st.integers(0, 10), edit=st.booleans())
    def approve(self, pick, edit):
        pending = self._pending()
        if pending:
            rid = pending[pick % len(pending)]
            self.desk.reviews.approve(rid, "t1", "改过的回复" if edit else None)
            self.approved.add(rid)

    @rule(pick=st.integers(0, 10))
    def reject(self, pick):
        pending = self._pending()
        if pending:
            self.desk.reviews.reject(pending[pick % len(pending)], "t1", "不报")

    @rule(pick=st.integers(0, 10))
    def time_passes_and_items_expire(self, pick):
        pending = self._pending()
        if not pending:
            return
        rid = pending[pick % len(pending)]
        with unit_of_work(self.engine) as s:
            s.exec(update(ReviewItem).where(ReviewItem.id == rid).values(expires_at=utcnow() - timedelta(seconds=1)))
        try:
            self.desk.reviews.approve(rid, "t1")
            raise AssertionError("an expired item was approved")
        except ReviewError as exc:
            assert exc.code == "expired"
        assert rid in self.desk.reviews.expire_due()

    @rule()
    def dispatch(self):
        asyncio.run(self.desk.outbox.dispatch())

    @rule()
    def restart(self):
        self.desk.close()
        self._start()
        self.desk.runner.recover()

    @invariant()
    def only_approved_items_reach_the_client(self):
        with unit_of_work(self.engine) as s:
            outbox = list(s.exec(select(OutboxMessage)))
            items = {i.id: i for i in s.exec(select(ReviewItem))}
            bot = list(s.exec(select(SimMessage).where(SimMessage.from_bot == True)))  # noqa: E712
        assert len({o.review_id for o in outbox}) == len(outbox)
        for o in outbox:
            assert o.review_id in self.approved
            assert items[o.review_id].status in ("approved", "sent") and items[o.review_id].decided_by == "t1"
        sent_ids = {o.id for o in outbox if o.status == "sent"}
        keys = [m.message_id for m in bot]
        assert len(keys) == len(set(keys)) == len(sent_ids)
        assert {f"bot-outbox-{i}" for i in sent_ids} == set(keys)
        assert all(items[i].status != "pending" or i not in self.approved for i in items)

    def teardown(self):
        self.desk.close()
        self.engine.dispose()
        self.tmp.cleanup()


TestGateInvariant = GateMachine.TestCase
TestGateInvariant.settings = settings(max_examples=25, stateful_step_count=12, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])
