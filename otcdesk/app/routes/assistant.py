"""The internal assistant's chat (CONTRACTS Part 2, "The internal assistant"); the work is `AssistantChat`'s.

`POST /api/assistant/chat` (any staff role) `{"message", "thread_id"?}` → `{"reply", "thread_id", "tool_calls":
[{"tool", "args", "allowed", "summary", "view"?}], "citations", "planner"}`. `message`: a non-empty string of at
most 2000 characters (422 otherwise); `thread_id`: one the assistant gave this user (422 when malformed, 404 when
unknown, 403 when another user's). Which tools run is decided by the role table in the tool layer, never here.
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from otcdesk.app.assistant_chat import MAX_MESSAGE, THREAD_ID, ThreadForbidden, UnknownThread
from typing import Any

from otcdesk.app.http_security import json_error
from otcdesk.app.openapi import Field, RequestModel, ResponseModel, api


class ChatSpec(RequestModel):
    message: str = Field(min_length=1, max_length=MAX_MESSAGE)
    thread_id: str | None = Field(None, pattern=THREAD_ID.pattern, description="one the assistant gave this user")


class ToolCall(ResponseModel):
    tool: str
    args: dict[str, Any]
    allowed: bool
    summary: str | None


class ChatAnswer(ResponseModel):
    reply: str
    thread_id: str
    tool_calls: list[ToolCall]
    citations: list[dict[str, Any]]


def register(router, *, demo: bool) -> None:
    from otcdesk.app.server import ASSISTANT, STAFF_ROLES, USER, read_json, require

    @api("One turn with the internal assistant (tools by role)", body=ChatSpec, answer=ChatAnswer,
         errors={403: "another user's thread", 404: "unknown thread"})
    @require(*STAFF_ROLES)
    async def chat(request: web.Request) -> web.Response:
        body = await read_json(request)
        message, thread_id = body.get("message"), body.get("thread_id")
        if not isinstance(message, str) or not message.strip() or len(message) > MAX_MESSAGE:
            return json_error(422, f"message must be a non-empty string of at most {MAX_MESSAGE} characters",
                              {"fields": {"message": "required, 1-2000 characters"}})
        if thread_id is not None and (not isinstance(thread_id, str) or not THREAD_ID.match(thread_id)):
            return json_error(422, "thread_id must be a thread id the assistant gave",
                              {"fields": {"thread_id": "32 hexadecimal characters"}})
        user = request[USER]
        try:
            answer = await asyncio.to_thread(request.app[ASSISTANT].chat, user.username, user.role,
                                             message.strip(), thread_id)
        except ThreadForbidden:
            return json_error(403, "this conversation belongs to another user")
        except UnknownThread:
            return json_error(404, "no conversation with that thread_id")
        return web.json_response(answer)

    router.add_post("/api/assistant/chat", chat)
