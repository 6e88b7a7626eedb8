"""A puppet service peer for tests: the wechaty gRPC `Puppet` service (the one a real puppet service such as
wechaty-puppet-service's gateway serves), on a real grpclib server on 127.0.0.1, holding one room, its members and
the messages said in it. The bot connects over the network as it would to a real service; `stop` drops every
connection as a crashed service would, `start` brings it back on the same port.

Only the calls python-wechaty makes for room messages are served (start/stop, the event stream, contact, room,
room member and message payloads, send text); any other call answers UNIMPLEMENTED.
"""
from __future__ import annotations

import asyncio
import json
import time

from grpclib.const import Cardinality, Handler
from grpclib.server import Server
from wechaty_grpc.wechaty import puppet as pb

from desk_fixtures import free_port

BOT_ID = "wxid_bot"
TEXT = 7  # a puppet service numbers message types as ts-wechaty-puppet does (Text = 7); python-wechaty maps them


class _Server(Server):
    """grpclib's server, keeping its connections' transports so `abort` can cut them as a crash does."""

    def __init__(self, handlers):
        super().__init__(handlers)
        self.transports: list = []

    def _protocol_factory(self):
        protocol = super()._protocol_factory()
        made = protocol.connection_made

        def connection_made(transport):
            self.transports.append(transport)
            made(transport)

        protocol.connection_made = connection_made
        return protocol

    def abort(self) -> None:
        self.close()
        for transport in self.transports:
            transport.abort()


class PuppetPeer:
    def __init__(self, room: str, contacts: dict[str, str]):
        self.room, self.contacts = room, {BOT_ID: "询价机器人", **contacts}
        self.messages: dict[str, pb.MessagePayloadResponse] = {}
        self.sent: list[tuple[str, str, list[str]]] = []
        self.port = free_port()
        self.connections = 0
        self._server: Server | None = None
        self._streams: set[asyncio.Queue] = set()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = _Server([self])
        await self._server.start("127.0.0.1", self.port)

    async def stop(self) -> None:
        """Go away as a crashed service does: the listener closed, every connection cut."""
        self._server.abort()
        await self._server.wait_closed()
        self._server = None

    @property
    def streams(self) -> int:
        return len(self._streams)

    def say(self, message_id: str, sender: str, text: str, mention_bot: bool = True) -> None:
        """A client speaks in the room: the message is stored and announced on every open event stream."""
        self.messages[message_id] = pb.MessagePayloadResponse(
            id=message_id, text=text, timestamp=int(time.time()), type=TEXT,
            from_id=sender, room_id=self.room, mention_ids=[BOT_ID] if mention_bot else [])
        self._emit(pb.EventType.EVENT_TYPE_MESSAGE, {"messageId": message_id})

    def _emit(self, kind, payload: dict) -> None:
        for q in list(self._streams):
            q.put_nowait(pb.EventResponse(type=kind, payload=json.dumps(payload)))

    # ---- the gRPC service -------------------------------------------------------------------------
    def __mapping__(self):
        unary = {
            "Start": (pb.StartRequest, pb.StartResponse, lambda r: pb.StartResponse()),
            "Stop": (pb.StopRequest, pb.StopResponse, lambda r: pb.StopResponse()),
            "Ding": (pb.DingRequest, pb.DingResponse, lambda r: pb.DingResponse()),
            "ContactPayload": (pb.ContactPayloadRequest, pb.ContactPayloadResponse, lambda r: pb.ContactPayloadResponse(
                id=r.id, name=self.contacts.get(r.id, r.id), type=pb.ContactType.CONTACT_TYPE_PERSONAL)),
            "RoomPayload": (pb.RoomPayloadRequest, pb.RoomPayloadResponse, lambda r: pb.RoomPayloadResponse(
                id=r.id, topic="某资管-场外衍生品", member_ids=list(self.contacts))),
            "RoomMemberList": (pb.RoomMemberListRequest, pb.RoomMemberListResponse,
                               lambda r: pb.RoomMemberListResponse(member_ids=list(self.contacts))),
            "RoomMemberPayload": (pb.RoomMemberPayloadRequest, pb.RoomMemberPayloadResponse,
                                  lambda r: pb.RoomMemberPayloadResponse(id=r.member_id,
                                                                         name=self.contacts.get(r.member_id, ""))),
            "MessagePayload": (pb.MessagePayloadRequest, pb.MessagePayloadResponse, lambda r: self.messages[r.id]),
            "MessageSendText": (pb.MessageSendTextRequest, pb.MessageSendTextResponse, self._send_text),
        }
        mapping = {f"/wechaty.Puppet/{name}": Handler(self._unary(fn), Cardinality.UNARY_UNARY, req, resp)
                   for name, (req, resp, fn) in unary.items()}
        mapping["/wechaty.Puppet/Event"] = Handler(self._event, Cardinality.UNARY_STREAM, pb.EventRequest,
                                                    pb.EventResponse)
        return mapping

    @staticmethod
    def _unary(fn):
        async def handle(stream):
            await stream.send_message(fn(await stream.recv_message()))
        return handle

    def _send_text(self, r: pb.MessageSendTextRequest) -> pb.MessageSendTextResponse:
        self.sent.append((r.conversation_id, r.text, list(r.mentonal_ids)))
        message_id = f"sent-{len(self.sent)}"
        self.messages[message_id] = pb.MessagePayloadResponse(
            id=message_id, text=r.text, type=TEXT, from_id=BOT_ID,
            room_id=r.conversation_id, mention_ids=list(r.mentonal_ids))
        return pb.MessageSendTextResponse(id=message_id)

    async def _event(self, stream) -> None:
        await stream.recv_message()
        q: asyncio.Queue = asyncio.Queue()
        self._streams.add(q)
        self.connections += 1
        try:
            await stream.send_message(pb.EventResponse(type=pb.EventType.EVENT_TYPE_LOGIN,
                                                       payload=json.dumps({"contactId": BOT_ID})))
            while (event := await q.get()) is not None:
                await stream.send_message(event)
        finally:
            self._streams.discard(q)
