"""Private blacklist screening between two real processes (CONTRACTS Part 2): `otcdesk screen serve` holds 50,000
synthetic identifiers, `otcdesk screen query` asks with a few thousand of its own; the querier learns exactly its
overlap, and nothing the holder prints or logs contains a queried identifier. The KYC `Screener` then screens an
applicant against the same live holder, and reports an unknown result once the holder is gone.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from desk_fixtures import free_port
from otcdesk.app.kyc.screening import Screener
from otcdesk.app.kyc.synthetic import synthetic_identifiers

ROOT = Path(__file__).resolve().parents[2]
HELD_N, MINE_N, OVERLAP = 50_000, 3_000, 37


def _env() -> dict:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "otcdesk.app.cli", "screen", *args]


@pytest.fixture(scope="module")
def lists(tmp_path_factory):
    d = tmp_path_factory.mktemp("psi")
    pool = synthetic_identifiers(HELD_N + MINE_N, seed=2026)
    held, mine_only = pool[:HELD_N], pool[HELD_N:]
    overlap = held[::HELD_N // OVERLAP][:OVERLAP]
    mine = mine_only[: MINE_N - OVERLAP] + overlap
    (d / "held.txt").write_text("# holder's list\n" + "\n".join(held) + "\n", encoding="utf-8")
    # The querier's file in another case and with blanks: both sides normalise the same way.
    (d / "mine.txt").write_text("\n".join(x.lower() if i % 2 else f"  {x}  " for i, x in enumerate(mine)) + "\n\n",
                                encoding="utf-8")
    return d, held, mine, overlap


@pytest.fixture(scope="module")
def holder(lists):
    d, held, _, _ = lists
    port = free_port()
    out, err = open(d / "holder.out", "w+"), open(d / "holder.err", "w+")
    proc = subprocess.Popen(_cli("serve", "--list", str(d / "held.txt"), "--port", str(port)), env=_env(),
                            stdout=out, stderr=err, text=True, cwd=d)
    deadline = time.time() + 120
    ready = None
    while time.time() < deadline and proc.poll() is None:
        lines = (d / "holder.out").read_text().splitlines()
        if lines:
            ready = json.loads(lines[0])
            break
        time.sleep(0.2)
    assert ready, f"holder not ready: {(d / 'holder.err').read_text()}"
    assert ready["holder_size"] == len(held) and ready["serving"] == f"http://127.0.0.1:{port}"
    yield proc, ready["serving"], d
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)
    out.close()
    err.close()


def test_query_process_learns_exactly_the_overlap_and_the_holder_nothing(lists, holder):
    d, held, mine, overlap = lists
    proc, url, _ = holder
    run = subprocess.run(_cli("query", "--endpoint", url, "--list", str(d / "mine.txt")), env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    doc = json.loads(run.stdout)
    assert sorted(doc["matches"]) == sorted(overlap)
    assert doc["queried"] == len(mine) and doc["holder_size"] == len(held)
    assert doc["protocol"] == "ecdh-psi-raw/openmined-psi-2"
    assert doc["bytes_received"] > len(held) * 33 and doc["bytes_sent"] > len(mine) * 33
    assert proc.poll() is None
    holder_said = (d / "holder.out").read_text() + (d / "holder.err").read_text()
    assert "psi query of 3000 items answered" in holder_said  # the holder did log the query…
    mine_only = set(mine) - set(overlap)
    assert not [x for x in mine if x in holder_said or x.lower() in holder_said]  # …and none of its items
    assert not mine_only & set(held)


def test_screener_against_the_live_holder_then_the_holder_gone(lists, holder):
    _, held, mine, overlap = lists
    proc, url, _ = holder
    uscc = next(x for x in overlap if x.startswith("91"))
    clean_id = next(x for x in mine if not x.startswith("91") and x not in overlap)
    screener = Screener(endpoint=url, list_file=None, news_dir=None, timeout_s=60)
    applicant = {"name": "杭州松间明月投资管理有限公司", "uscc": uscc, "legal_representative": "林知秋",
                 "legal_representative_id": clean_id}
    bl = screener.screen(applicant)["blacklist"]
    assert bl["hit"] is True and bl["method"] == "ecdh-psi" and bl["matched_fields"] == ["uscc"]
    assert bl["holder_size"] == len(held) and bl["queried"] == 2 and bl["error"] is None and bl["endpoint"] == url
    clean = screener.screen({**applicant, "uscc": next(x for x in mine if x.startswith("91") and x not in overlap)})
    assert clean["blacklist"]["hit"] is False
    proc.terminate()
    proc.wait(timeout=30)
    gone = screener.screen(applicant)["blacklist"]
    assert gone["hit"] is None and gone["error"] and gone["method"] == "ecdh-psi"
