"""PSI screening protocol (otcdesk.app.kyc.psi): exact matches over real HTTP in process, normalisation, refusals."""
from __future__ import annotations

import asyncio
import logging
import struct

import aiohttp
import private_set_intersection.python as psi_lib
import pytest
from aiohttp import web

from desk_fixtures import free_port
from otcdesk.app.kyc import psi
from otcdesk.app.kyc.synthetic import synthetic_identifiers

HELD = synthetic_identifiers(2000, seed=11)
MINE = synthetic_identifiers(150, seed=12) + HELD[:5] + HELD[-3:]


@pytest.fixture
async def holder_url():
    holder = psi.PsiHolder(HELD + ["  " + HELD[0].lower() + " ", ""])  # a duplicate in another case, a blank
    runner = web.AppRunner(psi.holder_app(holder))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


def test_normalise_and_read_list(tmp_path):
    f = tmp_path / "list.txt"
    f.write_text("\ufeff# a comment\n\n  91110000abc \n91110000ABC\n   # indented comment\n110101199001011234\n",
                 encoding="utf-8")
    assert psi.read_list(f) == ["91110000ABC", "110101199001011234"]
    assert psi.normalise(" 11010119900101123x\t") == "11010119900101123X"


async def test_query_learns_exactly_its_items_on_the_list(holder_url, caplog):
    caplog.set_level(logging.DEBUG)
    query = [x.lower() for x in MINE] + [" " + MINE[0]]  # the client normalises and deduplicates too
    out = await asyncio.to_thread(psi.psi_query, holder_url + "/", query)
    assert sorted(out["matches"]) == sorted(HELD[:5] + HELD[-3:])
    assert out["queried"] == len(MINE) and out["holder_size"] == len(HELD)
    assert out["protocol"] == psi.PROTOCOL == "ecdh-psi-raw/openmined-psi-2"
    assert out["bytes_sent"] > len(MINE) * psi.POINT_BYTES and out["bytes_received"] > len(HELD) * psi.POINT_BYTES
    logged = caplog.text
    assert not any(x in logged for x in MINE)
    async with aiohttp.ClientSession() as s, s.get(holder_url + psi.INFO_PATH) as r:
        assert await r.json() == {"protocol": psi.PROTOCOL, "holder_size": len(HELD),
                                  "max_query_items": psi.MAX_QUERY_ITEMS}


async def test_empty_query_and_no_overlap(holder_url):
    assert (await asyncio.to_thread(psi.psi_query, holder_url, []))["matches"] == []
    out = await asyncio.to_thread(psi.psi_query, holder_url, synthetic_identifiers(50, seed=99))
    assert out["matches"] == [] and out["queried"] == 50


def test_setup_is_built_once_and_raw_setup_ignores_the_client_count():
    holder = psi.PsiHolder(HELD[:300])
    first = holder.setup_bytes()
    assert holder.setup_bytes() is first
    # The cache is sound only because RAW's setup does not depend on fpr or the client's set size.
    server = psi_lib.server.CreateWithNewKey(True)
    a = server.CreateSetupMessage(0.0, 1, HELD[:300], psi_lib.DataStructure.RAW).SerializeToString()
    b = server.CreateSetupMessage(1e-9, 50_000, HELD[:300], psi_lib.DataStructure.RAW).SerializeToString()
    assert a == b


def test_answer_frames_setup_and_response_in_process():
    holder = psi.PsiHolder(HELD[:100])
    client = psi_lib.client.CreateWithNewKey(True)
    mine = [HELD[3], "NOT-ON-LIST", HELD[42]]
    answer = holder.answer(client.CreateRequest(mine).SerializeToString(), 3)
    setup_len, response_len = struct.unpack_from(">II", answer)
    setup, response = psi_lib.ServerSetup(), psi_lib.Response()
    setup.ParseFromString(answer[8:8 + setup_len])
    response.ParseFromString(answer[8 + setup_len:])
    assert 8 + setup_len + response_len == len(answer)
    assert sorted(client.GetIntersection(setup, response)) == [0, 2]


def _request(elements, reveal=True) -> bytes:
    return psi_lib.Request(reveal_intersection=reveal, encrypted_elements=elements).SerializeToString()


GOOD = psi_lib.client.CreateWithNewKey(True).CreateRequest(["X1", "X2"]).SerializeToString()


@pytest.mark.parametrize("body,headers,reason", [
    (GOOD, {"Content-Type": "application/json", psi.ITEMS_HEADER: "2"}, "Content-Type"),
    (GOOD, {"Content-Type": "application/octet-stream"}, psi.ITEMS_HEADER),
    (GOOD, {"Content-Type": "application/octet-stream", psi.ITEMS_HEADER: "-2"}, psi.ITEMS_HEADER),
    (GOOD, {"Content-Type": "application/octet-stream", psi.ITEMS_HEADER: "3"}, "says 3 items"),
    (GOOD, {"Content-Type": "application/octet-stream", psi.ITEMS_HEADER: str(psi.MAX_QUERY_ITEMS + 1)}, "between"),
    (b"\xff\xfe garbage", {"Content-Type": "application/octet-stream", psi.ITEMS_HEADER: "1"}, "not a serialized"),
    (_request([b"short"]), {"Content-Type": "application/octet-stream", psi.ITEMS_HEADER: "1"}, "33-byte"),
    (_request([b"\x02" + b"\xff" * 32]), {"Content-Type": "application/octet-stream", psi.ITEMS_HEADER: "1"},
     "not a valid P-256 point"),
    (_request([b"\x02" + b"\x01" * 32], reveal=False),
     {"Content-Type": "application/octet-stream", psi.ITEMS_HEADER: "1"}, "reveal_intersection"),
])
async def test_garbage_is_refused_with_a_reason(holder_url, body, headers, reason):
    async with aiohttp.ClientSession() as s, s.post(holder_url + psi.INTERSECT_PATH, data=body, headers=headers) as r:
        assert r.status == 400
        doc = await r.json()
    assert doc["error"] == "bad psi request" and reason in doc["reason"]


async def test_oversized_body_is_refused(holder_url):
    body = b"\x00" * (psi.MAX_REQUEST_BYTES + 1)
    headers = {"Content-Type": "application/octet-stream", psi.ITEMS_HEADER: "1"}
    async with aiohttp.ClientSession() as s, s.post(holder_url + psi.INTERSECT_PATH, data=body, headers=headers) as r:
        assert r.status == 413


async def test_client_errors_unreachable_and_not_a_holder():
    port = free_port()  # nothing listens there
    with pytest.raises(psi.PsiUnavailable):
        await asyncio.to_thread(psi.psi_query, f"http://127.0.0.1:{port}", ["A"], 5)
    app = web.Application()
    app.router.add_post(psi.INTERSECT_PATH, lambda _r: web.Response(body=b"hello"))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        with pytest.raises(psi.PsiError, match="speaks an unknown protocol") as info:
            await asyncio.to_thread(psi.psi_query, f"http://127.0.0.1:{port}", ["A"], 5)
        assert not isinstance(info.value, psi.PsiUnavailable)
    finally:
        await runner.cleanup()
