"""The internal assistant's graph on the deterministic path (no LLM): the real parser and router, the real services
over a real SQLite desk, the product guide in the knowledge base, generated surveillance data; checkpoints in
memory, and on the SQLite checkpointer for a thread that outlives its graph."""
from __future__ import annotations

import json

import jsonschema
import pytest
from langgraph.checkpoint.memory import InMemorySaver

from otcdesk.agents.assistant import AssistantDeps, build_assistant_graph
from otcdesk.agents.assistant_router import Router
from otcdesk.agents.assistant_tools import BY_NAME, ROLE_TABLE, TOOLS, validation_error, wire_schema
from otcdesk.app.assistant_chat import AssistantChat, ThreadForbidden, UnknownThread, build_assistant
from otcdesk.app.assistant_tools import AssistantTools, audit_tool_call, institution_names, mask_pii
from otcdesk.app.checkpoints import make_checkpointer
from assistant_fixtures import (CONTRACT_ROLES, INSTITUTION, QUESTIONS, ROLES, build_world, injection_set,
                                tool_audit)
from desk_fixtures import close_desks, desk_on


@pytest.fixture
def world(make_desk_core, tmp_path):
    passages = [p for p in injection_set() if p["kind"] == "passage"]
    return build_world(make_desk_core, tmp_path, passages=passages)


@pytest.fixture
def chat(world):
    return build_assistant(world.settings, world.engine, world.desk, world.hub, checkpointer=InMemorySaver())


def surveillance_ran(chat: AssistantChat) -> bool:
    """Whether the surveillance detectors have run (their result is cached once they have)."""
    return chat.tools.surveillance._cache is not None


def test_the_role_table_is_the_contracts():
    assert {name: set(roles) for name, roles in ROLE_TABLE.items()} == CONTRACT_ROLES
    for tool in TOOLS:
        jsonschema.Draft202012Validator.check_schema(tool.schema)
        assert tool.schema["additionalProperties"] is False
        assert "pattern" not in str(wire_schema(tool.schema))


@pytest.mark.parametrize("role", ROLES)
def test_one_conversation_per_role_reaches_exactly_its_tools(chat, world, role):
    thread = None
    for tool, question in QUESTIONS.items():
        answer = chat.chat(f"{role}1", role, question, thread)
        thread = answer["thread_id"]
        assert [c["tool"] for c in answer["tool_calls"]] == [tool], question
        call = answer["tool_calls"][0]
        may = role in CONTRACT_ROLES[tool]
        assert call["allowed"] is may, (role, tool)
        if may:
            assert "不能查看" not in answer["reply"] and call["summary"]
        else:
            assert "view" not in call and call["error"] == "forbidden"
            assert "不能查看" in answer["reply"] and tool in answer["reply"]
    audit = tool_audit(world.engine)
    assert [(a["actor"], a["tool"], a["role"], a["allowed"]) for a in audit] == [
        (f"{role}1", tool, role, role in CONTRACT_ROLES[tool]) for tool in QUESTIONS]
    assert surveillance_ran(chat) is (role == "compliance")


def test_what_the_allowed_tools_answer(chat, world):
    risk = chat.chat("risk1", "risk", QUESTIONS["book_exposure"])
    book = world.desk.risk.latest()
    csi500 = next(e for e in book["by_underlying"] if e["underlying"] == "000905.SH")
    call = risk["tool_calls"][0]
    assert call["args"] == {"underlying": "000905.SH"}
    assert f"{csi500['delta_cny']:,.0f}" in risk["reply"]
    assert call["view"]["rows"][0]["delta_cny"] == csi500["delta_cny"]
    whole = chat.chat("risk1", "risk", "账本整体的风险敞口")["tool_calls"][0]
    assert whole["args"] == {} and whole["view"]["rows"][-1]["underlying"] == "合计"
    assert [b["value"] for b in whole["view"]["chart"]["bars"]] == [e["delta_cny"] for e in book["by_underlying"]]

    priced = chat.chat("sales1", "sales", QUESTIONS["price"])
    assert "不是对客报价" in priced["reply"] and priced["tool_calls"][0]["args"]["tenor"] == "3M"

    kyc = chat.chat("comp1", "compliance", QUESTIONS["kyc_status"])
    assert kyc["tool_calls"][0]["args"] == {"institution": INSTITUTION}
    assert "已准入" in kyc["reply"]

    trades = chat.chat("comp1", "compliance", QUESTIONS["trade_lookup"])
    ids = [r["id"] for r in trades["tool_calls"][0]["view"]["rows"]]
    assert len(ids) == 6 and all(i.startswith("TDEMO") for i in ids)
    one = chat.chat("comp1", "compliance", f"查一下 {ids[0].lower()} 这笔")
    assert one["tool_calls"][0]["args"] == {"trade_id": ids[0]} and ids[0] in one["reply"]

    alerts = chat.chat("comp1", "compliance", "有没有幌骗预警")
    call = alerts["tool_calls"][0]
    assert call["args"] == {"type": "spoofing"} and call["view"]["rows"]
    assert all(r["type"].startswith("幌骗") for r in call["view"]["rows"])
    timeline = call["view"]["timeline"]["rows"]
    assert {"new", "cancel"} <= {r["event"] for r in timeline}
    assert [r["ts"] for r in timeline] == sorted(r["ts"] for r in timeline)

    kb = chat.chat("admin1", "admin", QUESTIONS["kb_search"])
    assert kb["citations"] and all(c["source"] for c in kb["citations"])


def test_follow_ups_change_one_slot_of_the_previous_call(chat):
    first = chat.chat("trader1", "trader", "沪深300 3个月 平值看涨 试算一下")
    thread = first["thread_id"]
    args = first["tool_calls"][0]["args"]
    six = chat.chat("trader1", "trader", "那6个月的呢?", thread)
    assert six["tool_calls"][0]["tool"] == "price"
    assert six["tool_calls"][0]["args"] == {**args, "tenor": "6M"}
    assert "6M" in six["reply"] and six["reply"] != first["reply"]
    csi500 = chat.chat("trader1", "trader", "那500呢?", thread)
    assert csi500["tool_calls"][0]["args"] == {**args, "tenor": "6M", "underlying": "000905.SH"}
    puts = chat.chat("trader1", "trader", "换成看跌呢", thread)
    assert puts["tool_calls"][0]["args"]["option_type"] == "put"

    book = chat.chat("trader1", "trader", "中证500的敞口多少")
    again = chat.chat("trader1", "trader", "那1000呢?", book["thread_id"])
    assert again["tool_calls"][0] == {**again["tool_calls"][0], "tool": "book_exposure",
                                      "args": {"underlying": "000852.SH"}}
    # a follow-up in a fresh thread has nothing to follow: not a price of the last thread's terms
    fresh = chat.chat("trader1", "trader", "那6个月的呢?")
    assert [c["tool"] for c in fresh["tool_calls"]] != ["price"]


def test_a_thread_survives_its_graph_on_the_configured_checkpointer(db_settings):
    """SQLite and PostgreSQL: the thread's state (its owner, the last call) is in the checkpointer, not the graph;
    the audit is written to the same database; before the first risk snapshot the exposure tool says so."""
    built: list = []
    try:
        desk = desk_on(db_settings, built)
        saver, close = make_checkpointer(db_settings)
        try:
            first = build_assistant(db_settings, desk.engine, desk, None, checkpointer=saver)
            answer = first.chat("trader1", "trader", "中证500的敞口多少")
            assert answer["tool_calls"][0]["allowed"] and "还没有快照" in answer["reply"]
            thread = answer["thread_id"]
            second = build_assistant(db_settings, desk.engine, desk, None, checkpointer=saver)
            follow = second.chat("trader1", "trader", "那1000呢?", thread)
            assert follow["tool_calls"][0]["args"] == {"underlying": "000852.SH"}
            with pytest.raises(ThreadForbidden):
                second.chat("trader2", "trader", "那300呢?", thread)
            with pytest.raises(UnknownThread):
                second.chat("trader1", "trader", "那300呢?", "0" * 32)
        finally:
            close()
        assert [(a["actor"], a["tool"], a["allowed"]) for a in tool_audit(desk.engine)] == [
            ("trader1", "book_exposure", True)] * 2
    finally:
        close_desks(built)


def test_an_incomplete_request_is_asked_about_not_priced(chat):
    answer = chat.chat("trader1", "trader", "帮我试算一个6个月的鲨鱼鳍")
    assert answer["tool_calls"] == [] and "标的" in answer["reply"]


def test_the_gate_refuses_invalid_arguments_and_unknown_tools_without_running_them(world):
    """The authorize node on planned calls that a planner (an LLM) could propose: only valid, permitted calls run."""
    planned = {"calls": [
        {"tool": "book_exposure", "args": {"underlying": "沪深300; DROP TABLE trade"}},
        {"tool": "trade_lookup", "args": {"trade_id": "T0000001", "limit": 10_000}},
        {"tool": "kyc_status", "args": {"institution": "张三 110101199003074258 13812345678"}},
        {"tool": "shell", "args": {"cmd": "rm -rf /"}},
        {"tool": "kb_search", "args": "not an object"},
        {"tool": "price", "args": {"underlying": "000300.SH", "structure": "vanilla", "tenor": "6M", "extra": 1}},
    ], "note": None}
    tools = AssistantTools(world.engine, hub=world.hub, price=world.desk.price, risk=world.desk.risk,
                           trades=world.desk.trades)
    deps = AssistantDeps(tools=tools, route=lambda text, last: planned, audit=audit_tool_call(world.engine))
    graph = build_assistant_graph(deps, InMemorySaver())
    state = graph.invoke({"message": "x", "user": "risk1", "role": "risk"}, {"configurable": {"thread_id": "t"}})
    results = state["results"]
    assert [r["allowed"] for r in results] == [False, False, True, False, False, False]
    refused = [r for r in results if not r["allowed"]]
    assert [r.get("error") for r in refused] == ["invalid"] * 5
    assert results[0]["reason"].startswith("underlying") and results[1]["reason"].startswith("limit")
    assert "more than 4 calls" in results[5]["reason"]  # a valid call beyond the turn's cap is not run either
    assert all("view" not in r and "text" not in r for r in refused)
    assert "未找到机构" in results[2]["summary"] and "未执行" in state["reply"]
    audit = tool_audit(world.engine)
    assert [(a["tool"], a["allowed"]) for a in audit] == [(c["tool"], r["allowed"])
                                                        for c, r in zip(planned["calls"], results)]
    kyc = audit[2]["args"]["institution"]
    assert "110101199003074258" not in kyc and "13812345678" not in kyc and "[已脱敏]" in kyc
    assert mask_pii({"a": ["13812345678"]}) == {"a": ["[已脱敏]"]}


def test_validation_error_names_the_field():
    assert validation_error("price", {"underlying": "000300.SH", "structure": "vanilla", "tenor": "6M"}) is None
    assert validation_error("price", {"underlying": "000300.SH", "structure": "vanilla", "tenor": "forever"}) \
        .startswith("tenor")
    assert validation_error("trade_lookup", {"limit": 0}).startswith("limit")
    assert validation_error("nope", {}) == "unknown tool 'nope'"
    assert set(BY_NAME) == set(CONTRACT_ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_injected_questions_change_nothing_a_role_may_do(chat, world, role):
    """The test set (tests/data/assistant_injection.jsonl) on the deterministic path: whatever a question says, a
    tool outside the role never runs, and the audit never shows an allowed call outside it."""
    for case in injection_set():
        text = case["text"] if case["kind"] == "question" else case["ask"]
        answer = chat.chat(f"{role}1", role, text)
        for call in answer["tool_calls"]:
            assert call["allowed"] is (role in CONTRACT_ROLES[call["tool"]]), (case["id"], call)
            if not call["allowed"]:
                assert "view" not in call
        if case["kind"] == "passage":  # the passage's instructions are text: only the knowledge base is searched
            assert [c["tool"] for c in answer["tool_calls"]] == ["kb_search"], case["id"]
            assert any(case["id"] in (c["source"] or "") for c in answer["citations"]), case["id"]
    for entry in tool_audit(world.engine):
        assert entry["allowed"] is False or role in CONTRACT_ROLES[entry["tool"]], entry
    assert surveillance_ran(chat) is (role == "compliance")


def test_institutions_are_matched_by_stem_and_near_spelling(world):
    router = Router(institutions=institution_names(world.engine))
    assert router.institution_in("示例资产管理有限公司的准入") == INSTITUTION
    assert router.institution_in("示例资产管理的KYC状态") == INSTITUTION
    assert router.institution_in("示列资产管理最近怎么样") == INSTITUTION  # 列 for 例
    assert router.institution_in("华夏基金的KYC") is None


def test_bank_accounts_never_reach_the_tool_audit(chat, world):
    """A bank account typed into a question or named as an account is masked in the audit like an ID number."""
    card, grouped = "6222021234567890123", "6222 0212 3456 7890"
    chat.chat("risk1", "risk", f"客户银行账号 {grouped} 和 {card} 要怎么登记？")
    chat.chat("compliance1", "compliance", f"账户 {card} 有没有对倒预警")
    audit = json.dumps([a["args"] for a in tool_audit(world.engine)], ensure_ascii=False)
    assert card not in audit and grouped not in audit and "[已脱敏]" in audit
    assert mask_pii("账户 A557348 交易 T0000001 于 2026-12-01") == "账户 A557348 交易 T0000001 于 2026-12-01"
    assert mask_pii("notional: 1000000000000.0 is greater than 100000000000.0") == \
        "notional: 1000000000000.0 is greater than 100000000000.0"  # a validation reason keeps its figures


def test_concurrent_turns_of_one_thread_run_one_at_a_time_and_leave_no_lock_behind(chat):
    """Turns of one thread are serialised (a follow-up reads the previous turn), and an idle thread keeps no lock."""
    from concurrent.futures import ThreadPoolExecutor

    first = chat.chat("risk1", "risk", "账本整体的风险敞口")
    thread = first["thread_id"]
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: chat.chat("risk1", "risk", "账本整体的风险敞口", thread), range(4)))
    assert all(a["thread_id"] == thread and a["tool_calls"][0]["tool"] == "book_exposure" for a in answers)
    assert chat._locks == {}
