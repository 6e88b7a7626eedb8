"""The WeCom platform's side for tests: its callback crypto (wechatpy, as the platform encrypts) and a local
server that speaks the platform's API (`/cgi-bin/gettoken`, `/cgi-bin/appchat/send`, `/cgi-bin/message/send`)
and records what it receives; it can declare every issued token expired and refuse calls for their rate."""
from __future__ import annotations

import base64
import os
import secrets
import time
from dataclasses import dataclass, field

from aiohttp import web
from wechatpy.enterprise.crypto import WeChatCrypto


@dataclass
class WeComApp:
    """A WeCom app's callback credentials, and the platform's way of signing and encrypting for it."""

    corp_id: str = field(default_factory=lambda: "ww" + secrets.token_hex(8))
    token: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    aes_key: str = field(default_factory=lambda: base64.b64encode(os.urandom(32)).decode().rstrip("="))
    secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    agent_id: str = "1000002"

    @property
    def crypto(self) -> WeChatCrypto:
        return WeChatCrypto(self.token, self.aes_key, self.corp_id)

    def env(self, api_base: str) -> dict:
        return {"OTCDESK_WECOM_CORP_ID": self.corp_id, "OTCDESK_WECOM_TOKEN": self.token,
                "OTCDESK_WECOM_AES_KEY": self.aes_key, "OTCDESK_WECOM_SECRET": self.secret,
                "OTCDESK_WECOM_AGENT_ID": self.agent_id, "OTCDESK_WECOM_API_BASE": api_base}

    def verification(self, echo: str) -> dict:
        """The query of the platform's URL check: `echostr` is `echo` encrypted, signed with the token."""
        nonce, timestamp = secrets.token_hex(5), str(int(time.time()))
        envelope = self.crypto.encrypt_message(echo, nonce, timestamp)
        return {"msg_signature": _between(envelope, "MsgSignature"), "timestamp": timestamp, "nonce": nonce,
                "echostr": _between(envelope, "Encrypt")}

    def callback(self, plain_xml: str) -> tuple[dict, str]:
        """(query, body) of a callback POST carrying `plain_xml`, encrypted and signed as the platform does."""
        nonce, timestamp = secrets.token_hex(5), str(int(time.time()))
        envelope = self.crypto.encrypt_message(plain_xml, nonce, timestamp)
        query = {"msg_signature": _between(envelope, "MsgSignature"), "timestamp": timestamp, "nonce": nonce}
        body = f"<xml><ToUserName><![CDATA[{self.corp_id}]]></ToUserName><AgentID><![CDATA[{self.agent_id}]]>" \
               f"</AgentID><Encrypt><![CDATA[{_between(envelope, 'Encrypt')}]]></Encrypt></xml>"
        return query, body


def group_text(msg_id: str, chat_id: str, user_id: str, name: str, text: str) -> str:
    """A group message as the platform's group robot callback carries it (before encryption)."""
    return (f"<xml><WebhookUrl><![CDATA[https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k]]></WebhookUrl>"
            f"<From><UserId><![CDATA[{user_id}]]></UserId><Name><![CDATA[{name}]]></Name></From>"
            f"<ChatId><![CDATA[{chat_id}]]></ChatId><ChatType>group</ChatType><MsgId><![CDATA[{msg_id}]]></MsgId>"
            f"<MsgType>text</MsgType><Text><Content><![CDATA[{text}]]></Content></Text></xml>")


def _between(xml: str, tag: str) -> str:
    start = xml.index(f"<{tag}>") + len(tag) + 2
    value = xml[start:xml.index(f"</{tag}>")]
    return value.removeprefix("<![CDATA[").removesuffix("]]>")


class FakeWeComApi:
    """A local server speaking the WeCom API; `sent` is what it delivered ({"path", "json", "token"})."""

    def __init__(self, app: WeComApp, expires_in: int = 7200):
        self.wecom = app
        self.expires_in = expires_in
        self.issued: list[str] = []
        self.valid: set[str] = set()
        self.sent: list[dict] = []
        self.refused: list[tuple[str, int]] = []  # (path, errcode) of every refused call
        self.rate_limited = 0  # the next n sends are refused with 45009
        self.runner: web.AppRunner | None = None
        self.url = ""

    def expire_tokens(self) -> None:
        self.valid.clear()

    async def start(self, port: int) -> "FakeWeComApi":
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self.gettoken)
        app.router.add_post("/cgi-bin/appchat/send", self.send)
        app.router.add_post("/cgi-bin/message/send", self.send)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def gettoken(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("corpid") != self.wecom.corp_id or q.get("corpsecret") != self.wecom.secret:
            return web.json_response({"errcode": 40001, "errmsg": "invalid credential"})
        token = f"tok-{len(self.issued) + 1}-{secrets.token_hex(4)}"
        self.issued.append(token)
        self.valid.add(token)
        return web.json_response({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": self.expires_in})

    async def send(self, request: web.Request) -> web.Response:
        token = request.query.get("access_token", "")
        if token not in self.valid:
            self.refused.append((request.path, 42001))
            return web.json_response({"errcode": 42001, "errmsg": "access_token expired"})
        if self.rate_limited > 0:
            self.rate_limited -= 1
            self.refused.append((request.path, 45009))
            return web.json_response({"errcode": 45009, "errmsg": "api freq out of limit"})
        body = await request.json()
        self.sent.append({"path": request.path, "json": body, "token": token})
        answer = {"errcode": 0, "errmsg": "ok"}
        if request.path.endswith("/message/send"):
            answer["msgid"] = f"msg-{len(self.sent)}"
        return web.json_response(answer)
