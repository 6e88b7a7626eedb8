"""The internal assistant (langgraph): a staff question → planned tool calls → authorised and validated → run →
answered (CONTRACTS Part 2, "The internal assistant").

`build_assistant_graph(deps, checkpointer)` compiles

    plan ──▶ authorize ──▶ run ──▶ answer

* **plan**: with an LLM (`deps.llm`), the OpenAI tools API proposes the calls (`LLMPlanner`); without one, or when
  the LLM fails or proposes nothing, the deterministic router (`assistant_router.Router`) does.
* **authorize**: every proposed call is checked against the role table (`assistant_tools.ROLE_TABLE`) and its
  arguments against the tool's JSON schema; each call is audited (`deps.audit`) with whether it was allowed. A denied
  or invalid call is recorded and never run. Roles live here, in code, not in any prompt: a message or a retrieved
  passage that says "ignore your rules" is only text.
* **run**: the allowed calls, through `deps.tools` (`assistant_tools.ToolPort`, the app's services).
* **answer**: the reply from the tool results' own text (numbers come from the services); with an LLM and
  `deps.phrase`, the LLM may word a lead sentence, kept only when every number in it is one the tools gave.
  Refusals are always stated by the code.

The thread's state is checkpointed: `last` (the previous allowed call) lets "那6个月的呢?" reuse it with the
changed slot, and `turns` gives the LLM the conversation so far. Tool results never reach the planner, so a
passage cannot make the assistant call anything.
"""
from __future__ import annotations

import json
import logging
import re
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from otcdesk.agents.assistant_tools import BY_NAME, ROLE_TABLE, TOOLS, ToolPort, allowed, openai_tools, \
    validation_error

log = logging.getLogger(__name__)
MAX_CALLS = 4  # calls one turn may run; more proposed are refused
KEEP_TURNS = 6
ROLE_CN = {"trader": "交易员", "sales": "销售", "risk": "风控", "compliance": "合规", "admin": "管理员"}


class InputState(TypedDict):
    """One turn: the staff member's message."""

    message: str
    user: str
    role: str


class State(InputState, total=False):
    owner: str  # the user who started the thread
    planner: str  # "llm" | "router"
    calls: list[dict]  # proposed: {"tool", "args"}
    note: str | None  # the router's question when a request is incomplete
    results: list[dict]  # {"tool", "args", "allowed", "summary", "error"?, "text"?, "view"?, "citations"?}
    reply: str
    citations: list[dict]
    last: dict | None  # the previous allowed call {"tool", "args"}: what a follow-up changes
    turns: list[dict]  # the conversation so far, for the LLM: {"message", "calls": [{"tool", "args", "allowed"}]}


@dataclass(frozen=True)
class AssistantDeps:
    """The outside world: the tools, the router, the audit log, an optional LLM."""

    tools: ToolPort
    route: Callable[[str, dict | None], dict]  # Router.route
    audit: Callable[[str, str, str, dict, bool, str | None], None]  # (user, role, tool, args, allowed, reason)
    llm: Any = None  # app.llm.LLMClient (complete_tools, complete_json, complete_text) or None
    phrase: bool = True  # with an LLM: let it word a lead sentence (kept only when its numbers are the tools')
    llm_timeout_s: float = 30.0
    llm_tools: tuple[str, ...] | None = None  # the tools offered to the LLM (None: all); not a permission
    # (tool, allowed, refusal) → a context manager around the call's run (refused calls: around nothing); the app's
    # tracing makes each a span (`Tracing.tool_call`)
    trace_tool: Callable[[str, bool, str | None], AbstractContextManager] = lambda tool, allowed, refusal: nullcontext()


# ---------------------------------------------------------------- planning with an LLM

SYSTEM = ("You are the internal assistant of an OTC derivatives desk. Choose the tool that answers the staff "
          "member's question and fill its arguments from the question. Underlyings are codes such as 000300.SH "
          "(沪深300), 000905.SH (中证500), 000852.SH (中证1000); tenors like 3M, 6M, 1Y. Call at most one tool.")


class LLMPlanner:
    """Calls proposed through the OpenAI tools API: `tool_choice="auto"` first; a server that ignores it (llama.cpp's
    plain chat formats answer in text) is asked to pick a tool name (JSON), then called with that tool named, which
    any OpenAI-compatible server constrains to the tool's parameters. The auto step is skipped once it was ignored;
    with one tool offered there is nothing to pick."""

    def __init__(self, llm, timeout_s: float = 30.0, offered: tuple[str, ...] | None = None):
        self.llm, self.timeout = llm, timeout_s
        self.offered = [t for t in TOOLS if offered is None or t.name in offered]
        self.auto_works: bool | None = None

    def messages(self, message: str, turns: list[dict]) -> list[dict]:
        out = [{"role": "system", "content": SYSTEM}]
        for t in turns[-KEEP_TURNS:]:
            out.append({"role": "user", "content": t["message"]})
            done = "; ".join(f"{c['tool']}({json.dumps(c['args'], ensure_ascii=False)})" for c in t.get("calls", []))
            out.append({"role": "assistant", "content": f"Called: {done}" if done else "No tool."})
        out.append({"role": "user", "content": message})
        return out

    def plan(self, message: str, turns: list[dict]) -> list[dict]:
        msgs = self.messages(message, turns)
        tools = openai_tools(tuple(t.name for t in self.offered))
        if self.auto_works is not False and len(self.offered) > 1:
            out = self.llm.complete_tools(msgs, tools, "auto", timeout=self.timeout, max_tokens=200)
            if out["tool_calls"]:
                self.auto_works = True
                return [_call(c) for c in out["tool_calls"]]
            if self.auto_works is None:
                self.auto_works = False
        if len(self.offered) == 1:
            name = self.offered[0].name
        else:
            pick = self.llm.complete_json(
                msgs + [{"role": "user", "content": "Which tool answers this? Tools: " + "; ".join(
                    f"{t.name}: {t.description}" for t in self.offered) + ' Answer {"tool": name or "none"}.'}],
                {"type": "object", "properties": {"tool": {"type": "string",
                                                           "enum": [*(t.name for t in self.offered), "none"]}},
                 "required": ["tool"]}, timeout=self.timeout, max_tokens=30)
            if pick["tool"] == "none":
                return []
            name = pick["tool"]
        out = self.llm.complete_tools(msgs, tools, {"type": "function", "function": {"name": name}},
                                      timeout=self.timeout, max_tokens=200)
        return [_call(c) for c in out["tool_calls"]]


def _call(c: dict) -> dict:
    """A tool call from the server: the arguments parsed from JSON; unparseable ones stay a string (and fail)."""
    raw = c.get("arguments")
    try:
        args = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError:
        args = raw
    return {"tool": str(c.get("name") or ""), "args": args if args is not None else {}}


# ---------------------------------------------------------------- nodes

def _plan(deps: AssistantDeps, planner: LLMPlanner | None):
    def node(state: State) -> State:
        message, last = state["message"], state.get("last")
        owner = state.get("owner") or state["user"]
        if planner is not None:
            try:
                calls = planner.plan(message, state.get("turns") or [])
            except Exception as exc:  # LLMError or a server quirk: the router is the floor
                # the error's text may quote the model's reply, and with it the user's words: log its class only
                log.warning("assistant: LLM planning failed (%s); using the router", type(exc).__name__)
                calls = None
            if calls:
                return {"owner": owner, "planner": "llm", "calls": calls[:MAX_CALLS + 1], "note": None}
        routed = deps.route(message, last)
        return {"owner": owner, "planner": "router", "calls": routed["calls"], "note": routed.get("note")}

    return node


def _authorize(deps: AssistantDeps):
    def node(state: State) -> State:
        user, role = state["user"], state["role"]
        results = []
        for i, call in enumerate(state.get("calls") or []):
            tool, args = call.get("tool") or "", call.get("args")
            if tool not in BY_NAME:
                reason, ok = f"unknown tool {tool!r}", False
            elif i >= MAX_CALLS:
                reason, ok = f"more than {MAX_CALLS} calls in one turn", False
            elif not allowed(tool, role):
                reason, ok = f"role {role} may not use {tool}", False
            else:
                reason = validation_error(tool, args)
                ok = reason is None
            shown = args if isinstance(args, dict) else {"_raw": str(args)[:500]}
            deps.audit(user, role, tool[:64], shown, ok, reason)
            item = {"tool": tool, "args": shown, "allowed": ok, "summary": ""}
            if not ok:
                item["error"] = "forbidden" if tool in BY_NAME and not allowed(tool, role) else "invalid"
                item["reason"] = reason
                item["summary"] = (f"{ROLE_CN.get(role, role)}角色无权使用 {tool}" if item["error"] == "forbidden"
                                   else f"未执行：参数不合法（{reason}）")
            results.append(item)
        return {"results": results}

    return node


def _run(deps: AssistantDeps):
    def node(state: State) -> State:
        out = []
        for item in state.get("results") or []:
            if not item["allowed"]:
                with deps.trace_tool(item["tool"], False, item.get("error")):
                    out.append(item)
                continue
            fn = getattr(deps.tools, BY_NAME[item["tool"]].method)
            try:
                with deps.trace_tool(item["tool"], True, None):
                    result = fn(**item["args"])
            except Exception as exc:  # a failing service must not lose the turn: say so
                log.exception("assistant tool %s failed", item["tool"])
                result = {"summary": f"{item['tool']} 执行失败：{type(exc).__name__}", "text": "该工具暂时不可用。",
                          "error": "failed"}
            out.append({**item, **{k: v for k, v in result.items() if k != "allowed"}})
        return {"results": out}

    return node


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def _answer(deps: AssistantDeps):
    def node(state: State) -> State:
        role, results = state["role"], state.get("results") or []
        parts, citations = [], []
        for item in results:
            if item["allowed"]:
                parts.append(item.get("text") or item.get("summary") or "")
                citations.extend(item.get("citations") or [])
            elif item.get("error") == "forbidden":
                who = "、".join(ROLE_CN.get(r, r) for r in ROLE_TABLE[item["tool"]])
                parts.append(f"您的角色（{ROLE_CN.get(role, role)}）不能查看 {item['tool']} 的内容（仅限{who}），该请求未执行。")
            else:
                parts.append(f"请求 {item['tool'] or '?'} 未执行：{item.get('reason')}。")
        if not results:
            parts.append(state.get("note") or "没有找到可以回答这个问题的工具，请换个问法，或说明标的、期限、交易编号或机构名称。")
        reply = "\n\n".join(p for p in parts if p)
        if deps.llm is not None and deps.phrase and any(i["allowed"] and not i.get("error") for i in results):
            lead = _lead(deps, state["message"], reply)
            if lead:
                reply = f"{lead}\n\n{reply}"
        calls = [{"tool": i["tool"], "args": i["args"], "allowed": i["allowed"]} for i in results]
        turns = [*(state.get("turns") or []), {"message": state["message"][:500], "calls": calls}][-KEEP_TURNS:]
        ran = [i for i in results if i["allowed"] and not i.get("error")]
        last = {"tool": ran[-1]["tool"], "args": ran[-1]["args"]} if ran else state.get("last")
        return {"reply": reply, "citations": citations, "turns": turns, "last": last}

    return node


def _lead(deps: AssistantDeps, message: str, facts: str) -> str | None:
    """One sentence by the LLM over the tools' text; None unless every number in it appears in that text."""
    try:
        text = deps.llm.complete_text([
            {"role": "system", "content": "Summarise the facts below for the desk colleague in one short Chinese "
                                          "sentence. Use only numbers that appear in the facts."},
            {"role": "user", "content": f"问题：{message}\n事实：\n{facts[:3000]}"}],
            timeout=deps.llm_timeout_s, max_tokens=80)
    except Exception as exc:
        log.info("assistant: LLM phrasing skipped (%s)", exc)
        return None
    text = text.strip().splitlines()[0].strip() if text.strip() else ""
    if not text or not _numbers(text) <= _numbers(facts):
        return None
    return text[:300]


def build_assistant_graph(deps: AssistantDeps, checkpointer: Any,
                          wrap: Callable[[str, Callable], Callable] = lambda name, node: node):
    """Compile the assistant graph; the checkpointer keeps each thread's state (SQLite or Postgres saver).
    `wrap(name, node)` may wrap each node (the app's tracing does) and must keep its signature."""
    planner = LLMPlanner(deps.llm, deps.llm_timeout_s, deps.llm_tools) if deps.llm is not None else None
    g = StateGraph(State, input_schema=InputState)
    for name, node in (("plan", _plan(deps, planner)), ("authorize", _authorize(deps)), ("run", _run(deps)),
                       ("answer", _answer(deps))):
        g.add_node(name, wrap(name, node))
    g.add_edge(START, "plan")
    g.add_edge("plan", "authorize")
    g.add_edge("authorize", "run")
    g.add_edge("run", "answer")
    g.add_edge("answer", END)
    return g.compile(checkpointer=checkpointer)


def turn_result(state: dict, thread_id: str) -> dict:
    """The contract's answer from a finished turn's state."""
    calls = []
    for i in state.get("results") or []:
        call = {"tool": i["tool"], "args": i["args"], "allowed": i["allowed"], "summary": i.get("summary", "")}
        for extra in ("view", "error", "reason"):
            if i.get(extra) is not None:
                call[extra] = i[extra]
        calls.append(call)
    return {"reply": state.get("reply", ""), "thread_id": thread_id, "tool_calls": calls,
            "citations": state.get("citations") or [], "planner": state.get("planner")}
