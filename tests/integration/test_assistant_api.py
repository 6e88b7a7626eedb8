"""The internal assistant over HTTP: demo mode loads the product guide; staff ask and open passages;
only compliance sees masked personal data, and every attempt is audited; only admin creates knowledge bases."""
import asyncio

from otcdesk.app.auth import upsert_user
from otcdesk.app.db import make_engine
from otcdesk.app.repositories import transaction
from otcdesk.app.server import HUB
from desk_fixtures import RunningDesk


async def test_assistant_answers_from_the_product_guide_with_citations(desk_settings, tmp_path):
    engine = make_engine(desk_settings.db_url)
    upsert_user(engine, "comp1", "compliance-pass-1", role="compliance")
    desk = await RunningDesk(desk_settings).start()
    try:
        async with desk.session() as anon:
            assert (await anon.post("/api/kb/ask", json={"question": "雪球"})).status == 401
        async with await desk.login("risk1", "risk-password-1") as risk:
            r = await risk.post("/api/kb/ask", json={"question": "雪球的敲入是怎么观察的？"})
            assert r.status == 200
            answer = await r.json()
            assert answer["refused"] is False and answer["citations"]
            assert all(c["source"] == "product_guide.md" for c in answer["citations"])
            assert "敲入" in answer["answer"]
            chunk = answer["citations"][0]["chunk_id"]
            passage = await (await risk.get(f"/api/kb/default/passages/{chunk}")).json()
            assert answer["citations"][0]["text"].strip()[:10] in passage["text"]
            r = await risk.post("/api/kb/ask", json={"question": "贵司2019年的净利润是多少？"})
            assert (await r.json())["refused"] is True
            assert (await risk.post("/api/kb/ask", json={"question": ""})).status == 400
            assert (await risk.post("/api/kb/unmask", json={"text": "[PHONE_0000]"})).status == 403
        async with await desk.login("comp1", "compliance-pass-1") as comp:
            r = await comp.post("/api/kb/unmask", json={"text": "无标记文本"})
            assert r.status == 200 and (await r.json())["text"] == "无标记文本"
        await asyncio.sleep(0)
        with transaction(engine) as tx:
            actions = [(a.actor, a.action) for a in tx.audit.entries() if a.action.startswith("pii.")]
        assert ("risk1", "pii.unmask_denied") in actions and ("comp1", "pii.unmask") in actions
    finally:
        await desk.stop()
        engine.dispose()


async def test_asking_an_unknown_knowledge_base_creates_nothing_and_only_admin_creates_one(desk_settings):
    engine = make_engine(desk_settings.db_url)
    upsert_user(engine, "admin1", "admin-password-1", role="admin")
    desk = await RunningDesk(desk_settings).start()
    kb_root = desk_settings.data_dir / "kb"
    try:
        before = sorted(p.name for p in kb_root.iterdir())
        async with await desk.login("risk1", "risk-password-1") as risk:
            for n in range(50):
                r = await risk.post("/api/kb/ask", json={"question": "雪球的敲入是怎么观察的？", "kb": f"probe{n}"})
                assert r.status == 404 and "probe" in (await r.json())["error"]
            assert (await risk.get("/api/kb/probe0/passages/x")).status == 404
            assert (await risk.post("/api/kb/ask", json={"question": "q", "kb": "../etc"})).status == 400
            assert (await risk.post("/api/kb", json={"name": "research"})).status == 403
        assert sorted(p.name for p in kb_root.iterdir()) == before == ["default"]
        assert list(desk.app[HUB]._services) == ["default"]  # nothing loaded in memory for the unknown names
        async with desk.session() as anon:
            assert (await anon.post("/api/kb", json={"name": "research"})).status == 401
        async with await desk.login("admin1", "admin-password-1") as admin:
            r = await admin.post("/api/kb", json={"name": "research"})
            assert r.status == 201 and await r.json() == {"kb": "research", "created": True}
            assert (await admin.post("/api/kb", json={"name": "research"})).status == 409
            assert (await admin.post("/api/kb", json={"name": "a/b"})).status == 400
        async with await desk.login("risk1", "risk-password-1") as risk:
            r = await risk.post("/api/kb/ask", json={"question": "雪球的敲入是怎么观察的？", "kb": "research"})
            assert r.status == 200 and (await r.json())["refused"] is True  # exists, holds nothing yet
        with transaction(engine) as tx:
            assert [(a.actor, a.subject) for a in tx.audit.entries(action="kb.create")] == [("admin1", "kb:research")]
    finally:
        await desk.stop()
        engine.dispose()
