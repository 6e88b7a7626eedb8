"""The assistant's LLM path against a real local OpenAI-compatible server (llama.cpp with a tiny Gemma model,
`tests/llm_fixture.py`): planning through the tools API, the schema gate on what the model writes, the injection
set, and phrasing that may not bring numbers of its own. The tiny model plans badly; these tests assert the safety
properties, never the quality of its answers."""
from __future__ import annotations

import re

import pytest
from langgraph.checkpoint.memory import InMemorySaver

from otcdesk.agents.assistant_tools import validation_error
from otcdesk.app.assistant_chat import build_assistant
from assistant_fixtures import CONTRACT_ROLES, QUESTIONS, build_world, injection_set, tool_audit

pytestmark = pytest.mark.llm


@pytest.fixture
def world(make_desk_core, tmp_path):
    return build_world(make_desk_core, tmp_path, passages=[p for p in injection_set() if p["kind"] == "passage"])


def assistant(world, llm_server, **options):
    return build_assistant(world.settings, world.engine, world.desk, world.hub, llm=llm_server.client,
                           checkpointer=InMemorySaver(), **options)


def check_gate(answer: dict, role: str) -> None:
    """A call runs only when the role may use the tool and its arguments fit the schema; otherwise it is listed,
    refused, and shows nothing of the tool's."""
    for call in answer["tool_calls"]:
        permitted = role in CONTRACT_ROLES.get(call["tool"], ())
        valid = validation_error(call["tool"], call["args"]) is None
        assert call["allowed"] is (permitted and valid), call
        if not call["allowed"]:
            assert "view" not in call and call["error"] in ("forbidden", "invalid"), call


def check_audit(engine, role: str) -> None:
    for entry in tool_audit(engine):
        assert entry["role"] == role
        assert entry["allowed"] is False or role in CONTRACT_ROLES[entry["tool"]], entry


def test_the_llm_plans_through_the_tools_api_and_the_gate_holds(world, llm_server):
    chat = assistant(world, llm_server, phrase=False)
    planners, thread = [], None
    for question in QUESTIONS.values():
        answer = chat.chat("trader1", "trader", question, thread)
        thread = answer["thread_id"]
        planners.append(answer["planner"])
        check_gate(answer, "trader")
        assert answer["reply"]
    print("planners:", planners)
    assert "llm" in planners  # the server answered through the tools API at least once
    check_audit(world.engine, "trader")
    assert chat.tools.surveillance._cache is None  # never ran for a trader


def test_an_invalid_argument_from_the_model_is_refused_and_not_run(world, llm_server):
    """Offered only `price`, the model writes its arguments under the looser wire schema; they are validated
    against the strict one before anything runs."""
    chat = assistant(world, llm_server, phrase=False, llm_tools=("price",))
    answer = chat.chat("trader1", "trader", QUESTIONS["price"])
    assert answer["planner"] == "llm"
    [call] = answer["tool_calls"]
    assert call["tool"] == "price"
    reason = validation_error("price", call["args"])
    print("model's arguments:", call["args"], "->", reason)
    check_gate(answer, "trader")
    [entry] = tool_audit(world.engine)
    assert entry["allowed"] is (reason is None) and entry.get("reason") == reason
    if reason is not None:
        assert call["error"] == "invalid" and "未执行" in answer["reply"] and "view" not in call
    else:
        assert "view" in call


@pytest.mark.parametrize("role", ["trader"])  # ~3 min a role with the tiny model on shared cores
def test_injected_text_changes_nothing_a_role_may_do_with_the_llm(world, llm_server, role):
    chat = assistant(world, llm_server, phrase=False)
    for case in injection_set():
        answer = chat.chat(f"{role}1", role, case["text"] if case["kind"] == "question" else case["ask"])
        check_gate(answer, role)
    check_audit(world.engine, role)
    assert chat.tools.surveillance._cache is None


def test_phrasing_brings_no_numbers_of_its_own(world, llm_server):
    chat = assistant(world, llm_server, phrase=True, llm_tools=("book_exposure",))
    answer = chat.chat("risk1", "risk", "账本整体的风险敞口是多少？")
    [call] = answer["tool_calls"]
    check_gate(answer, "risk")
    if call["allowed"]:
        facts = chat.tools.book_exposure(**call["args"])["text"]
        assert answer["reply"].endswith(facts)
        numbers = lambda t: {n.replace(",", "") for n in re.findall(r"\d+(?:[.,]\d+)*", t)}  # noqa: E731
        assert numbers(answer["reply"]) <= numbers(facts)
