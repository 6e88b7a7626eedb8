"""Screener (otcdesk.app.kyc.screening): local list, not configured, PSI holder live in process or not answering."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import random

import pytest
from aiohttp import web

from desk_fixtures import free_port
from otcdesk.app.kyc import psi
from otcdesk.app.kyc.screening import (SAMPLE_BLACKLISTED_ID, SAMPLE_BLACKLISTED_USCC, SAMPLE_LIST, SAMPLE_NEWS_DIR,
                                       Screener)
from otcdesk.app.kyc.synthetic import synthetic_id, synthetic_uscc
from otcdesk.app.kyc.validation import id_problem, uscc_problem
from otcdesk.app.settings import load_settings

_rng = random.Random(5)
CLEAN_USCC, CLEAN_ID = synthetic_uscc(_rng), synthetic_id(_rng)


def institution(uscc=CLEAN_USCC, person_id=CLEAN_ID, name="杭州松间明月投资管理有限公司", person="林知秋") -> dict:
    return {"name": name, "uscc": uscc, "legal_representative": person, "legal_representative_id": person_id}


def test_sample_list_is_synthetic_valid_and_holds_the_exported_identifiers():
    text = SAMPLE_LIST.read_text(encoding="utf-8")
    assert text.startswith("#") and "SYNTHETIC" in text.splitlines()[0]
    items = psi.read_list(SAMPLE_LIST)
    assert len(items) >= 200 and SAMPLE_BLACKLISTED_USCC in items and SAMPLE_BLACKLISTED_ID in items
    today = dt.date(2026, 11, 30)
    for item in items:
        assert uscc_problem(item) is None or id_problem(item, today) is None, item
    assert CLEAN_USCC not in items and CLEAN_ID not in items


def test_local_file_hit_miss_and_normalisation(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    f = tmp_path / "list.txt"
    f.write_text(f"# local list\n{CLEAN_ID}\n", encoding="utf-8")
    screener = Screener(endpoint=None, list_file=f, news_dir=None)
    out = screener.screen(institution(person_id=CLEAN_ID.lower()))
    bl = out["blacklist"]
    assert bl["hit"] is True and bl["method"] == "local-file" and bl["matched_fields"] == ["legal_representative_id"]
    assert bl["queried"] == 2 and bl["holder_size"] == 1 and bl["endpoint"] is None and bl["error"] is None
    assert dt.datetime.fromisoformat(bl["at"]).tzinfo is not None
    assert out["negative_news"] == []
    f.write_text(f"{CLEAN_USCC}\n", encoding="utf-8")  # the list is re-read when it changes
    os.utime(f, (1, 1))
    assert screener.screen(institution())["blacklist"]["matched_fields"] == ["uscc"]
    miss = Screener(endpoint=None, list_file=SAMPLE_LIST, news_dir=None).screen(institution())["blacklist"]
    assert miss["hit"] is False and miss["matched_fields"] == []
    assert CLEAN_ID not in caplog.text and CLEAN_USCC not in caplog.text


def test_unreadable_list_file_is_unknown_not_a_pass(tmp_path):
    bl = Screener(endpoint=None, list_file=tmp_path / "gone.txt", news_dir=None).screen(institution())["blacklist"]
    assert bl["hit"] is None and "gone.txt" in bl["error"]


def test_not_configured():
    out = Screener(endpoint=None, list_file=None, news_dir=None).screen(institution())
    assert out["blacklist"]["hit"] is False and out["blacklist"]["method"] == "not_configured"
    assert out["blacklist"]["error"] is None and out["negative_news"] == []


def test_unreachable_endpoint_gives_unknown_with_the_reason_and_never_raises(caplog):
    caplog.set_level(logging.DEBUG)
    endpoint = f"http://127.0.0.1:{free_port()}"
    bl = Screener(endpoint=endpoint, list_file=None, news_dir=None, timeout_s=5).screen(institution())["blacklist"]
    assert bl["hit"] is None and bl["method"] == "ecdh-psi" and bl["endpoint"] == endpoint
    assert bl["error"] and "did not answer" in bl["error"]
    assert CLEAN_USCC not in caplog.text and CLEAN_ID not in caplog.text


async def test_psi_endpoint_in_process():
    holder = psi.PsiHolder(psi.read_list(SAMPLE_LIST))
    runner = web.AppRunner(psi.holder_app(holder))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        screener = Screener(endpoint=f"http://127.0.0.1:{port}", list_file=None, news_dir=None)
        hit = (await asyncio.to_thread(screener.screen, institution(uscc=SAMPLE_BLACKLISTED_USCC)))["blacklist"]
        assert hit["hit"] is True and hit["method"] == "ecdh-psi" and hit["matched_fields"] == ["uscc"]
        assert hit["holder_size"] == holder.size and hit["queried"] == 2
        clean = (await asyncio.to_thread(screener.screen, institution()))["blacklist"]
        assert clean["hit"] is False and clean["error"] is None
    finally:
        await runner.cleanup()


def test_from_settings_demo_and_configured(tmp_path):
    demo = Screener.from_settings(load_settings(data_dir=tmp_path), demo=True)
    assert demo.method == "local-file" and demo.list_file == SAMPLE_LIST and demo.news_dir == SAMPLE_NEWS_DIR
    out = demo.screen(institution(uscc=SAMPLE_BLACKLISTED_USCC, name="深圳前海云栖星澜资产管理有限公司",
                                  person="柯望舒"))
    assert out["blacklist"]["hit"] is True
    assert {h["subject"] for h in out["negative_news"]} == {"institution", "legal_representative"}
    assert all(h["negative"] for h in out["negative_news"])
    plain = Screener.from_settings(load_settings(data_dir=tmp_path), demo=False)
    assert plain.method == "not_configured" and plain.news_dir is None
    configured = Screener.from_settings(
        load_settings(data_dir=tmp_path, blacklist_endpoint="http://holder:8790", news_dir=tmp_path), demo=True)
    assert configured.method == "ecdh-psi" and configured.news_dir == tmp_path


def test_missing_news_folder_gives_no_hits_not_an_error(tmp_path):
    screener = Screener(endpoint=None, list_file=None, news_dir=tmp_path / "nope")
    assert screener.screen(institution())["negative_news"] == []
