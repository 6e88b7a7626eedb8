"""`otcdesk price` end to end through the installed console script (subprocess)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otcdesk.app.settings import load_settings

ROOT = Path(__file__).resolve().parents[3]
EXE = ROOT / ".venv" / "bin" / "otcdesk"


def _run(args, tmp_path, stdin=None):
    exe = [str(EXE)] if EXE.exists() else [sys.executable, "-m", "otcdesk.app.cli"]
    env = {**os.environ, "OTCDESK_DATA_DIR": str(tmp_path / "var")}
    p = subprocess.run(exe + args, input=stdin, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    return p.returncode, p.stdout, p.stderr


def test_price_snowball_fair_coupon_from_stored_snapshot(tmp_path):
    req = {"product": {"structure": "snowball", "underlying": "000905.SH", "tenor": "12M", "ko_pct": 103,
                       "ki_pct": 75, "notional": 10_000_000},
           "engine": "auto", "solve_for": "coupon_pct", "target_price_pct": 0.0}
    rc, out, err = _run(["price", json.dumps(req)], tmp_path)
    assert rc == 0, err
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1  # exactly one JSON document
    d = json.loads(lines[0])
    assert d["engine"] == "fd" and d["stderr"] is None
    assert abs(d["price_pct"]) < 1e-8 and abs(d["pv"]) < 1e-2
    assert 5 < d["solved"]["coupon_pct"] < 30
    assert set(d["greeks"]) == {"delta", "gamma", "vega", "theta", "rho"}
    assert d["diagnostics"]["elapsed_s"] > 0 and "steps" in d["diagnostics"] and "paths" in d["diagnostics"]
    assert d["market"]["spot"] > 0  # filled from the stored snapshot


def test_price_vanilla_from_stdin(tmp_path):
    req = {"product": {"structure": "vanilla", "option_type": "call", "strike_pct": 100, "tenor": "12M",
                       "notional": 1_000_000},
           "market": {"spot": 100.0, "vol": 0.2, "rate": 0.03, "div": 0.0}, "valuation_date": "2026-11-20",
           "engine": "analytic"}
    rc, out, err = _run(["price"], tmp_path, stdin=json.dumps(req))
    assert rc == 0, err
    d = json.loads(out)
    assert d["engine"] == "analytic" and 0.08 < d["price"] < 0.11
    assert d["pv"] == d["price"] * 1_000_000 and d["solved"] == {}


def test_price_errors_exit_non_zero_with_reason(tmp_path):
    bad = {"product": {"structure": "vanilla", "option_type": "call", "tenor": "1M"},
           "market": {"spot": 100.0, "vol": -0.2, "rate": 0.03}, "valuation_date": "2026-11-20"}
    rc, out, _ = _run(["price", json.dumps(bad)], tmp_path)
    assert rc == 2
    d = json.loads(out)
    assert "negative" in d["error"] and d["detail"]["field"] == "market.vol"


GOOD_SURFACE = {"expiries": ["2027-02-19", "2027-05-21"], "strikes_pct": [80, 90, 100, 110, 120],
                "vols": [[0.27, 0.245, 0.22, 0.20, 0.185], [0.265, 0.243, 0.222, 0.205, 0.192]]}
SURFACE_REQ = {"product": {"structure": "vanilla", "option_type": "put", "strike_pct": 90, "maturity_date": "2027-02-19"},
               "market": {"spot": 100.0, "rate": 0.03, "div": 0.0, "vol_surface": GOOD_SURFACE},
               "valuation_date": "2026-11-20", "engine": "fd", "engine_options": {"greeks": False}}


def _with_surface(**changes):
    return {**SURFACE_REQ, "market": {**SURFACE_REQ["market"], "vol_surface": {**GOOD_SURFACE, **changes}}}


def test_price_refuses_a_malformed_vol_surface_with_the_reason(tmp_path):
    """CONTRACTS: not a grid, non-positive vols, unsorted axes, calendar arbitrage: refused with the reason.
    All through one `--jsonl` process (one result per line, in order), the good request priced between them."""
    rows = GOOD_SURFACE["vols"]
    cases = [
        (_with_surface(vols=[rows[0]]), "2 expiries"),  # not a grid: a row missing
        (_with_surface(vols=[rows[0], rows[1][:4]]), "one vol per strike"),
        (_with_surface(vols=[rows[0], [0.265, 0.0, 0.222, 0.205, 0.192]]), "must be positive"),
        (_with_surface(strikes_pct=[80, 100, 90, 110, 120]), "strictly increasing"),
        (_with_surface(expiries=["2027-05-21", "2027-02-19"]), "strictly increasing"),
        (_with_surface(expiries=["2026-11-20", "2027-02-19"]), "not after the valuation date"),
        (_with_surface(vols=[rows[0], [0.17, 0.16, 0.15, 0.14, 0.13]]), "calendar arbitrage"),
        (_with_surface(vols=[rows[0], [26, 24, 22, 20, 19]]), "looks like a percentage"),
        ({**SURFACE_REQ, "market": {**SURFACE_REQ["market"], "vol_surface": [[0.2]]}}, "must be an object"),
    ]
    lines = [json.dumps(SURFACE_REQ)] + [json.dumps(r) for r, _ in cases] + ["{not json"]
    rc, out, err = _run(["price", "--jsonl"], tmp_path, stdin="\n".join(lines) + "\n")
    assert rc == 0, err
    docs = [json.loads(ln) for ln in out.splitlines()]
    assert len(docs) == len(lines)
    ok = docs[0]
    assert ok["diagnostics"]["vol_model"] == "local_vol" and ok["vol_used"]["vol_at_strike"] == pytest.approx(0.245, abs=1e-3)
    for d, (_, reason) in zip(docs[1:], cases):
        assert set(d) == {"error", "detail"}, d
        assert reason in d["error"] and d["detail"]["field"].startswith("market.vol_surface"), d
    assert "JSON" in docs[-1]["error"]
    # the single-request form refuses with a non-zero exit and the same reason
    rc, out, _ = _run(["price", json.dumps(cases[6][0])], tmp_path)
    assert rc == 2 and "calendar arbitrage" in json.loads(out)["error"]


def test_price_without_market_uses_the_stored_demo_surface(tmp_path):
    req = {"product": {"structure": "vanilla", "underlying": "000905.SH", "option_type": "put", "strike_pct": 90,
                       "tenor": "3M"}, "engine": "analytic"}
    rc, out, err = _run(["price", json.dumps(req)], tmp_path)
    assert rc == 0, err
    d = json.loads(out)
    used = d["vol_used"]
    assert "SIMULATED" in used["surface"] and d["market"]["vol_surface"]["expiries"][0] > d["valuation_date"]
    assert used["vol_at_strike"] > d["market"]["vol"] + 0.015  # the 90% put sits up the skew


def test_price_handler_refusals_in_process():
    """The same handler without a subprocess per case (CLI start-up is the slow part)."""
    import argparse

    import pytest

    from otcdesk.app.commands import CommandError
    from otcdesk.app.commands.price import handle

    def call(raw):
        return handle(argparse.Namespace(request=raw), load_settings())

    cases = [("{not json", "JSON"),
             (json.dumps({"product": {"structure": "vanilla", "option_type": "call", "tenor": "1M",
                                      "underlying": "999999.XX"}}), "market"),
             (json.dumps({"product": {"structure": "vanilla", "option_type": "call", "tenor": "1M"}}), "market"),
             (json.dumps({"product": {"structure": "snowball", "ko_pct": 103, "ki_pct": 75, "coupon_pct": 10,
                                      "tenor": "6M"}, "market": {"spot": 1, "vol": 0.2},
                          "valuation_date": "2026-11-20", "engine": "analytic"}), "does not support"),
             (json.dumps({"product": {"structure": "snowball", "ko_pct": 103, "ki_pct": 110, "coupon_pct": 10,
                                      "tenor": "6M"}, "market": {"spot": 1, "vol": 0.2},
                          "valuation_date": "2026-11-20"}), "knock-in"),
             (json.dumps({"product": {"structure": "vanilla", "option_type": "call", "tenor": "1M"},
                          "market": {"spot": 1, "vol": 0.2, "skew": -0.1}, "valuation_date": "2026-11-20"}),
              "market.skew is not a market input"),
             ("[1, 2]", "object")]
    for raw, reason in cases:
        with pytest.raises(CommandError, match=reason):
            call(raw)
    ok = call(json.dumps({"product": {"structure": "vanilla", "option_type": "call", "tenor": "1M",
                                      "underlying": "000300.SH"}}))
    assert ok["engine"] == "analytic" and ok["valuation_date"]
