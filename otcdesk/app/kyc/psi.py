"""Private blacklist screening: ECDH private set intersection over HTTP (CONTRACTS Part 2, private blacklist screening).

The holder keeps a list of identifiers (USCC codes, ID numbers); a querier learns which of its own identifiers are on
that list, and the list's size, and nothing else; the holder learns neither the querier's identifiers nor the
matches. The cryptography is OpenMined's `openmined-psi` (ECDH on P-256, the RAW data structure: exact, no false
positives): the querier blinds its hashed items with a fresh secret key, the holder re-blinds them with its own key
and sends its own items blinded with that key (the setup), and the querier removes its key to compare.

Wire protocol, version 1 (`PROTOCOL` names the cryptographic suite):

- `GET /psi/v1/info` → `{"protocol", "holder_size", "max_query_items"}`
- `POST /psi/v1/intersect`, `Content-Type: application/octet-stream`, header `X-PSI-Client-Items: n`, body: the
  serialized `psi_proto.Request` (n encrypted elements). Answer: `application/octet-stream`, body
  `>II` (setup length, response length) + serialized `ServerSetup` + serialized `Response`. Garbage gets 400
  `{"error", "reason"}`, an oversized body 413.

The RAW setup message does not depend on the querier's item count (only Bloom filter and GCS setups are sized for
it), so the holder builds it once (the costly part: one EC multiplication per held item) and serves it to every
query; each query then costs one multiplication per queried item. The holder logs counts and timings only.
"""
from __future__ import annotations

import asyncio
import json
import logging
import struct
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterable

from aiohttp import web

log = logging.getLogger(__name__)

PROTOCOL = "ecdh-psi-raw/openmined-psi-2"
INFO_PATH = "/psi/v1/info"
INTERSECT_PATH = "/psi/v1/intersect"
ITEMS_HEADER = "X-PSI-Client-Items"
MAX_QUERY_ITEMS = 100_000
POINT_BYTES = 33  # a compressed P-256 point
_FRAME = struct.Struct(">II")
# Per encrypted element: the point plus a few bytes of protobuf framing; a little slack for the rest.
MAX_REQUEST_BYTES = MAX_QUERY_ITEMS * (POINT_BYTES + 4) + 1024


class PsiError(Exception):
    """The exchange failed; the message says why (never containing an identifier)."""


class PsiUnavailable(PsiError):
    """The holder did not answer (refused, unreachable, timed out, or a server error)."""


class PsiRequestError(ValueError):
    """A request the holder refuses; `reason` is sent back with the 400."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _psi():
    import private_set_intersection.python as psi  # imported late: a compiled extension only screening needs

    return psi


def normalise(identifier: str) -> str:
    """The one form both sides hash: surrounding blanks stripped, upper case (`91110000…x` = `91110000…X`)."""
    return identifier.strip().upper()


def normalise_all(items: Iterable[str]) -> list[str]:
    """Normalised, blank ones dropped, duplicates dropped (first occurrence kept, order kept)."""
    seen: dict[str, None] = {}
    for item in items:
        value = normalise(item)
        if value:
            seen.setdefault(value, None)
    return list(seen)


def read_list(path: Path | str) -> list[str]:
    """A list file: one identifier a line; blank lines and lines starting with # are ignored."""
    lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
    return normalise_all(line for line in lines if not line.strip().startswith("#"))


class PsiHolder:
    """The holder's side: its list, its key, and the setup message cached for every query."""

    def __init__(self, items: list[str], *, max_query_items: int = MAX_QUERY_ITEMS):
        psi = _psi()
        self._items = normalise_all(items)
        self.max_query_items = max_query_items
        self._server = psi.server.CreateWithNewKey(True)
        self._setup: bytes | None = None
        self._lock = threading.Lock()
        self._process_lock = threading.Lock()  # the library's cipher context is not documented as thread-safe

    @property
    def size(self) -> int:
        return len(self._items)

    def setup_bytes(self) -> bytes:
        """The serialized RAW setup (built on first use, then cached: it is the same for every querier)."""
        with self._lock:
            if self._setup is None:
                psi = _psi()
                started = time.perf_counter()
                # fpr and the client count only size Bloom/GCS structures; RAW ignores both.
                setup = self._server.CreateSetupMessage(0.0, 1, self._items, psi.DataStructure.RAW)
                self._setup = setup.SerializeToString()
                log.info("psi setup for %d held items built in %.2fs (%d bytes)", self.size,
                         time.perf_counter() - started, len(self._setup))
            return self._setup

    def answer(self, body: bytes, client_items: int) -> bytes:
        """One query: the framed setup + response, or `PsiRequestError` saying what is wrong with the request."""
        from google.protobuf.message import DecodeError

        psi = _psi()
        if not 0 <= client_items <= self.max_query_items:
            raise PsiRequestError(f"{ITEMS_HEADER} must be between 0 and {self.max_query_items}")
        request = psi.Request()
        try:
            request.ParseFromString(body)
        except DecodeError:
            raise PsiRequestError("body is not a serialized psi_proto.Request") from None
        if not request.reveal_intersection:
            raise PsiRequestError(f"this holder answers {PROTOCOL} with reveal_intersection=true only")
        if len(request.encrypted_elements) != client_items:
            raise PsiRequestError(f"{ITEMS_HEADER} says {client_items} items, the request holds "
                                  f"{len(request.encrypted_elements)}")
        if any(len(e) != POINT_BYTES for e in request.encrypted_elements):
            raise PsiRequestError(f"every encrypted element must be a {POINT_BYTES}-byte compressed P-256 point")
        setup = self.setup_bytes()
        try:
            with self._process_lock:
                response = self._server.ProcessRequest(request).SerializeToString()
        except RuntimeError:  # the library refuses a byte string that is not a point on the curve
            raise PsiRequestError("an encrypted element is not a valid P-256 point") from None
        return _FRAME.pack(len(setup), len(response)) + setup + response


def _refuse(status: int, reason: str) -> web.Response:
    return web.json_response({"error": "bad psi request" if status == 400 else "refused", "reason": reason},
                             status=status)


def holder_app(holder: PsiHolder) -> web.Application:
    """The holder's HTTP app: thin handlers; the setup is built at start-up, off the event loop."""
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)

    async def build_setup(_app: web.Application) -> None:
        await asyncio.to_thread(holder.setup_bytes)

    async def info(_request: web.Request) -> web.Response:
        return web.json_response({"protocol": PROTOCOL, "holder_size": holder.size,
                                  "max_query_items": holder.max_query_items})

    async def intersect(request: web.Request) -> web.Response:
        if request.content_type != "application/octet-stream":
            return _refuse(400, "Content-Type must be application/octet-stream")
        raw_count = request.headers.get(ITEMS_HEADER, "")
        if not raw_count.isdigit():
            return _refuse(400, f"{ITEMS_HEADER} header (the query's item count) is missing or not a number")
        if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
            return _refuse(413, f"request body over {MAX_REQUEST_BYTES} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _refuse(413, f"request body over {MAX_REQUEST_BYTES} bytes")
        started = time.perf_counter()
        try:
            answer = await asyncio.to_thread(holder.answer, body, int(raw_count))
        except PsiRequestError as exc:
            log.info("psi request refused: %s", exc.reason)
            return _refuse(400, exc.reason)
        log.info("psi query of %s items answered in %.2fs", raw_count, time.perf_counter() - started)
        return web.Response(body=answer, content_type="application/octet-stream",
                            headers={"X-PSI-Protocol": PROTOCOL, "X-PSI-Holder-Size": str(holder.size)})

    app.on_startup.append(build_setup)
    app.router.add_get(INFO_PATH, info)
    app.router.add_post(INTERSECT_PATH, intersect)
    return app


def _base(endpoint: str) -> str:
    base = endpoint.rstrip("/")
    for suffix in (INTERSECT_PATH, INFO_PATH):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base


def psi_query(endpoint: str, items: list[str], timeout_s: float = 60) -> dict:
    """Which of `items` (normalised, deduplicated) are on the holder's list at `endpoint` (its base URL).

    Blocking (EC arithmetic and one HTTP round trip): call it from a thread in async code. Raises
    `PsiUnavailable` when the holder does not answer, `PsiError` when its answer is not the protocol's.
    """
    psi = _psi()
    started = time.perf_counter()
    queried = normalise_all(items)
    client = psi.client.CreateWithNewKey(True)
    body = client.CreateRequest(queried).SerializeToString()
    http_request = urllib.request.Request(
        _base(endpoint) + INTERSECT_PATH, data=body, method="POST",
        headers={"Content-Type": "application/octet-stream", ITEMS_HEADER: str(len(queried))})
    try:
        with urllib.request.urlopen(http_request, timeout=timeout_s) as http_response:
            answer = http_response.read()
            protocol = http_response.headers.get("X-PSI-Protocol")
    except urllib.error.HTTPError as exc:
        reason = exc.read(2000).decode("utf-8", "replace")
        try:
            reason = json.loads(reason).get("reason", reason)
        except (ValueError, AttributeError):
            pass
        if exc.code >= 500:
            raise PsiUnavailable(f"holder answered HTTP {exc.code}") from None
        raise PsiError(f"holder refused the query (HTTP {exc.code}): {reason}") from None
    except (urllib.error.URLError, OSError) as exc:  # refused, unreachable, timed out
        raise PsiUnavailable(f"holder did not answer: {getattr(exc, 'reason', exc)}") from None
    if protocol != PROTOCOL:
        raise PsiError(f"holder speaks {protocol or 'an unknown protocol'}, not {PROTOCOL}")
    setup, response = _split(answer, psi)
    if len(response.encrypted_elements) != len(queried):
        raise PsiError("holder's response does not answer every queried item")
    try:
        indices = client.GetIntersection(setup, response)
    except RuntimeError as exc:
        raise PsiError(f"holder's answer is not a valid PSI response: {exc}") from None
    matches = [queried[i] for i in sorted(set(indices))]
    return {"matches": matches, "queried": len(queried), "holder_size": len(setup.raw.encrypted_elements),
            "protocol": PROTOCOL, "bytes_sent": len(body), "bytes_received": len(answer),
            "elapsed_s": round(time.perf_counter() - started, 4)}


def _split(answer: bytes, psi):
    from google.protobuf.message import DecodeError

    if len(answer) < _FRAME.size:
        raise PsiError("holder's answer is too short")
    setup_len, response_len = _FRAME.unpack_from(answer)
    if _FRAME.size + setup_len + response_len != len(answer):
        raise PsiError("holder's answer is not framed as setup + response")
    setup, response = psi.ServerSetup(), psi.Response()
    try:
        setup.ParseFromString(answer[_FRAME.size:_FRAME.size + setup_len])
        response.ParseFromString(answer[_FRAME.size + setup_len:])
    except DecodeError:
        raise PsiError("holder's answer does not parse as ServerSetup + Response") from None
    if setup.WhichOneof("data_structure") != "raw":
        raise PsiError("holder's setup is not the RAW data structure")
    return setup, response
