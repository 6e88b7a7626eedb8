"""WeCom (企业微信) through its callback URL: encrypted XML in, approved replies out through the platform's API.

Thin adapter. Inbound: `verify_url` answers the platform's URL check and `read_callback` checks a message's
signature, decrypts it (wechatpy's `WeChatCrypto`, the platform's published AES scheme) and turns a text message
into an `InboundMessage`: the chat is the group's `ChatId`, or `user:<UserId>` for a 1:1 message to the app; the
bot's @mention is removed and recorded. The HTTP route (`app/routes/wecom.py`) acknowledges once the message is
stored and hands it to the inbound pipeline, which de-duplicates the platform's retries by `MsgId`.

Outbound: `send` posts a reply to `/cgi-bin/appchat/send` (a group) or `/cgi-bin/message/send` (1:1) under
`api_base`, split into parts of at most 2048 UTF-8 bytes (the platform's text limit) on character boundaries. The
access token (`/cgi-bin/gettoken`) is cached and fetched again shortly before it expires, or at once when the API
calls it invalid or expired (40014, 42001); a call refused for its rate (45009, 45033) or because the platform is
busy (-1) waits and tries again with doubling delays. The API has no idempotency key (`idempotent = False`): the
outbox never sends an interrupted reply twice.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any, Callable

import aiohttp
import xmltodict
from wechatpy.enterprise.crypto import WeChatCrypto

from otcdesk.bots.base import ChannelHealth, InboundMessage, Reply, describe, mention_text, normalise_text

log = logging.getLogger(__name__)

TEXT_LIMIT_BYTES = 2048
TOKEN_INVALID = frozenset({40014, 42001})  # invalid access_token, access_token expired
RETRY_LATER = frozenset({-1, 45009, 45033})  # platform busy, API call rate over the limit, too many concurrent calls


class WeComRefused(Exception):
    """A callback whose signature (or corp id) does not check out: not from the platform."""


class WeComBadRequest(Exception):
    """A callback that is signed but unreadable (not XML, no ciphertext, bad padding)."""


class WeComApiError(RuntimeError):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(f"WeCom API errcode {errcode}: {errmsg}")
        self.errcode = errcode


def split_utf8(text: str, limit: int = TEXT_LIMIT_BYTES) -> list[str]:
    """`text` in parts of at most `limit` UTF-8 bytes, cut between characters, preferably after a line break
    in the second half of a part; no part is empty, and the parts joined (with the line breaks cut at) are `text`."""
    parts: list[str] = []
    rest = text
    while len(rest.encode("utf-8")) > limit:
        fits = len(rest.encode("utf-8")[:limit].decode("utf-8", errors="ignore"))
        cut = fits
        newline = rest.rfind("\n", 0, fits)
        if newline >= fits // 2:
            cut = newline + 1
        parts.append(rest[:cut])
        rest = rest[cut:]
    if rest:
        parts.append(rest)
    return [p.rstrip("\n") or p for p in parts]


class AccessToken:
    """The API's access token, fetched by `fetch()` → (token, expires_in_s), cached until `margin_s` (at most a
    tenth of its life) before it expires; `invalidate` drops it when the API refused it."""

    def __init__(self, fetch: Callable[[], Any], clock: Callable[[], float] = time.monotonic, margin_s: float = 300.0):
        self._fetch = fetch
        self._clock = clock
        self._margin_s = margin_s
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.fetched = 0

    async def get(self) -> str:
        async with self._lock:
            if self._token is None or self._clock() >= self._expires:
                token, expires_in = await self._fetch()
                self._token = token
                self._expires = self._clock() + expires_in - min(self._margin_s, expires_in / 10)
                self.fetched += 1
            return self._token

    def invalidate(self, token: str) -> None:
        if self._token == token:
            self._token = None


class WeComChannel:
    """Channel `wecom`: groups by `ChatId`, 1:1 chats as `user:<UserId>`, senders by `UserId`."""

    name = "wecom"
    idempotent = False

    def __init__(self, *, corp_id: str, token: str, aes_key: str, secret: str | None, agent_id: str | None,
                 api_base: str, deliver: Callable[[InboundMessage], object], bot_name: str,
                 max_attempts: int = 5, backoff_s: float = 0.5, max_backoff_s: float = 8.0):
        self.crypto = WeChatCrypto(token, aes_key, corp_id)
        self.corp_id, self.secret, self.agent_id = corp_id, secret, agent_id
        self.api_base = api_base.rstrip("/")
        self.deliver = deliver
        self.bot_name = bot_name
        self.max_attempts, self.backoff_s, self.max_backoff_s = max_attempts, backoff_s, max_backoff_s
        self.token = AccessToken(self._fetch_token)
        self._session: aiohttp.ClientSession | None = None
        # the platform calls us; "connected" is whether our last call to its API went through (or none failed yet)
        self.health = ChannelHealth(self.name, connected=True)

    # ---- inbound ------------------------------------------------------------------------------------
    def verify_url(self, msg_signature: str, timestamp: str, nonce: str, echostr: str) -> str:
        """The decrypted `echostr` the platform expects back when it checks the callback URL."""
        try:
            return _text(self.crypto.check_signature(msg_signature, timestamp, nonce, echostr))
        except Exception as exc:  # wechatpy raises its own exceptions, or base64/padding errors on a forged echostr
            raise WeComRefused(type(exc).__name__) from exc

    def read_callback(self, body: bytes, msg_signature: str, timestamp: str, nonce: str) -> InboundMessage | None:
        """The callback's message as an `InboundMessage`; None for what the desk does not take (events, images)."""
        try:
            envelope = xmltodict.parse(body)["xml"]
            encrypted = envelope["Encrypt"]
        except Exception as exc:
            raise WeComBadRequest(f"not a WeCom callback body ({type(exc).__name__})") from exc
        if not isinstance(encrypted, str) or not encrypted:
            raise WeComBadRequest("no Encrypt element")
        try:
            plain = self.crypto.decrypt_message({"Encrypt": encrypted}, msg_signature, timestamp, nonce)
        except Exception as exc:
            raise WeComRefused(type(exc).__name__) from exc
        try:
            fields = xmltodict.parse(plain)["xml"]
        except Exception as exc:
            raise WeComBadRequest(f"decrypted message is not XML ({type(exc).__name__})") from exc
        inbound = self.to_inbound(fields)
        if inbound is not None:
            self.health.received()
        return inbound

    def to_inbound(self, fields: dict) -> InboundMessage | None:
        """A decrypted message (an app message, or a group robot's: `From`/`ChatId`/`Text`) as an `InboundMessage`."""
        if fields.get("MsgType") != "text":
            return None
        sender_block = fields.get("From") if isinstance(fields.get("From"), dict) else {}
        sender = fields.get("FromUserName") or sender_block.get("UserId")
        text = fields.get("Content")
        if text is None and isinstance(fields.get("Text"), dict):
            text = fields["Text"].get("Content")
        if not sender or text is None:
            return None
        chat = fields.get("ChatId")
        text = normalise_text(text)
        mention = f"@{self.bot_name}"
        mentions_bot = mention in text or not chat  # a 1:1 message is addressed to the bot
        text = normalise_text(text.replace(mention, " "))
        msg_id = fields.get("MsgId") or "h-" + hashlib.sha256(
            f"{sender}|{fields.get('CreateTime')}|{text}".encode()).hexdigest()[:32]
        return InboundMessage(channel=self.name, chat_id=chat or f"user:{sender}", sender_id=sender,
                              sender_name=sender_block.get("Name") or sender, text=text,
                              platform_msg_id=str(msg_id), mentions_bot=mentions_bot)

    # ---- outbound -----------------------------------------------------------------------------------
    async def send(self, reply: Reply) -> str:
        """Post the reply (in parts when longer than the text limit); returns the platform's message ids. An API out of
        reach marks the channel down (with the error) until a call goes through again; a refusal is its last error."""
        try:
            ids = await self._send(reply)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:  # the API is out of reach
            self.health.down(describe(exc))
            raise
        except WeComApiError as exc:  # reached, but refused this reply
            self.health.up()
            self.health.failed(describe(exc))
            raise
        self.health.up()
        return ids

    async def _send(self, reply: Reply) -> str:
        direct = reply.chat_id.startswith("user:")
        text = reply.text if direct or not reply.mention_name else mention_text(reply.mention_name) + reply.text
        ids = []
        for part in split_utf8(text):
            if direct:
                payload = {"touser": reply.chat_id[len("user:"):], "msgtype": "text", "text": {"content": part},
                           "safe": 0}
                if self.agent_id:
                    payload["agentid"] = int(self.agent_id) if self.agent_id.isdigit() else self.agent_id
                answer = await self._call("/cgi-bin/message/send", payload)
            else:
                answer = await self._call("/cgi-bin/appchat/send", {"chatid": reply.chat_id, "msgtype": "text",
                                                                    "text": {"content": part}, "safe": 0})
            ids.append(str(answer.get("msgid") or ""))
        return ",".join(i for i in ids if i)

    async def _call(self, path: str, payload: dict) -> dict:
        """POST to the API with the access token; a refused token is fetched again, a rate limit waited out."""
        delay = self.backoff_s
        for attempt in range(1, self.max_attempts + 1):
            token = await self.token.get()
            async with self._http().post(f"{self.api_base}{path}", params={"access_token": token},
                                         json=payload) as resp:
                resp.raise_for_status()
                answer = await resp.json(content_type=None)
            code = int(answer.get("errcode") or 0)
            if code == 0:
                return answer
            if code in TOKEN_INVALID:
                log.info("WeCom access token refused (errcode %s); fetching a new one", code)
                self.token.invalidate(token)
                continue
            if code in RETRY_LATER and attempt < self.max_attempts:
                log.warning("WeCom %s: errcode %s, retrying in %.1f s", path, code, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff_s)
                continue
            raise WeComApiError(code, str(answer.get("errmsg", "")))
        raise WeComApiError(-1, f"gave up on {path} after {self.max_attempts} attempts")

    async def _fetch_token(self) -> tuple[str, float]:
        async with self._http().get(f"{self.api_base}/cgi-bin/gettoken",
                                    params={"corpid": self.corp_id, "corpsecret": self.secret or ""}) as resp:
            resp.raise_for_status()
            answer = await resp.json(content_type=None)
        if int(answer.get("errcode") or 0) != 0 or not answer.get("access_token"):
            raise WeComApiError(int(answer.get("errcode") or -1), str(answer.get("errmsg", "no access_token")))
        return answer["access_token"], float(answer.get("expires_in") or 7200)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
