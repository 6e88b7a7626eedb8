"""Book revaluation: sample book, per-trade values against the single-trade engines, scenario grid,
compressed-path spot ladders, Ray distribution and `otcdesk risk bench`."""
from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pytest

from otcdesk.pricing_engine import book, mc_blocks, mc_core
from otcdesk.pricing_engine.api import price_product
from otcdesk.pricing_engine.engines import EngineOptions

VD = dt.date(2026, 11, 20)
MC_OPTS = {"paths": 4000, "seed": 5}


@pytest.fixture(scope="module")
def small_book():
    trades, markets = book.sample_book(60, seed=3, valuation_date=VD)
    res = book.revalue_book(trades, markets, VD, mc_options=MC_OPTS)
    return trades, markets, res


def test_sample_book_is_a_seeded_realistic_mix():
    trades, markets = book.sample_book(400, seed=1, valuation_date=VD)
    again, _ = book.sample_book(400, seed=1, valuation_date=VD)
    assert [t.product.to_dict() for t in trades] == [t.product.to_dict() for t in again]
    kinds = {t.product.structure for t in trades}
    assert kinds == {"vanilla", "spread", "sharkfin", "snowball"}
    assert len({t.product.underlying for t in trades}) >= 5
    for t in trades:  # live trades
        assert t.product.maturity_date > VD and t.product.start_date <= VD
        assert t.product.underlying in markets


def test_every_trade_is_revalued_with_all_greeks_and_grid(small_book):
    trades, _, res = small_book
    assert [r.trade_id for r in res.trades] == [t.trade_id for t in trades]
    for r in res.trades:
        assert set(r.greeks) == {"delta", "gamma", "vega", "theta", "rho"}
        assert all(math.isfinite(v) for v in r.greeks.values()) and math.isfinite(r.price)
    assert res.scenario_pnl.shape == (41, 5)
    assert res.scenario_pnl[20, 2] == pytest.approx(0.0, abs=1e-6)  # the base point is the base value
    assert res.pv == pytest.approx(sum(r.pv for r in res.trades))
    engines = {(r.structure, r.engine) for r in res.trades}
    assert ("vanilla", "analytic") in engines and ("snowball", "mc") in engines


def test_closed_form_trades_match_the_analytic_engine(small_book):
    trades, markets, res = small_book
    checked = 0
    for t, r in zip(trades, res.trades):
        if r.engine != "analytic":
            continue
        ref = price_product(t.product, markets[t.product.underlying], VD, "analytic")
        assert r.price == pytest.approx(ref.price, abs=1e-9)
        assert r.greeks["delta"] == pytest.approx(ref.greeks["delta"], abs=1e-4)
        assert r.greeks["vega"] == pytest.approx(ref.greeks["vega"], abs=1e-5)
        assert r.greeks["theta"] == pytest.approx(ref.greeks["theta"], abs=1e-6)
        checked += 1
    assert checked >= 20


def test_mc_trades_match_fd_within_errors(small_book):
    trades, markets, res = small_book
    checked = 0
    for t, r in zip(trades, res.trades):
        if r.engine != "mc" or checked >= 6:
            continue
        fd = price_product(t.product, markets[t.product.underlying], VD, "fd",
                           EngineOptions(greeks=False, grid_points=400))
        assert abs(r.price - fd.price) <= 3 * r.stderr + 5e-4, (t.trade_id, r.price, r.stderr, fd.price)
        checked += 1
    assert checked >= 4


def test_scenario_grid_of_closed_forms_is_full_revaluation():
    trades, markets = book.sample_book(40, seed=4, valuation_date=VD)
    trades = [t for t in trades if t.product.structure in ("vanilla", "spread")][:10]
    res = book.revalue_book(trades, markets, VD)
    i, j = 30, 4  # spot +10%, vol +5 points
    ds, dv = book.SPOT_SHIFTS[i], book.VOL_SHIFTS[j]
    expect = 0.0
    for t in trades:
        m = markets[t.product.underlying]
        bumped = type(m)(spot=m.spot * (1 + ds), vol=m.vol + dv, rate=m.rate, div=m.div)
        expect += t.notional * (price_product(t.product, bumped, VD, "analytic").price
                                - price_product(t.product, m, VD, "analytic").price)
    assert res.scenario_pnl[i, j] == pytest.approx(expect, rel=1e-9, abs=1e-3)


def _mc_group(structure, n=6):
    trades, markets = book.sample_book(120, seed=6, valuation_date=VD)
    out = []
    for t in trades:
        ft = book.Trade(t.trade_id, book.freeze(t.product, markets[t.product.underlying].to_model(), VD))
        if t.product.structure == structure and book.engine_for(ft, VD, markets)[0] == "mc":
            out.append(ft)
    models = [markets[t.product.underlying].to_model() for t in out[:n]]
    resolved = [t.product.resolve(VD, m) for t, m in zip(out[:n], models)]
    return resolved, models


@pytest.mark.parametrize("structure", ["snowball", "sharkfin"])
def test_compressed_spot_ladder_equals_full_paths(structure):
    """A spot shift moves whole log paths: the compressed ladder must equal pricing the shifted
    spot on the full grid with the same paths."""
    resolved, mks = _mc_group(structure)
    cfg = EngineOptions(paths=2000, seed=2, dtype="float64")
    shape = mc_blocks.shape_of(resolved[0])
    resolved = [r for r in resolved if mc_blocks.shape_of(r) == shape]
    terms = [mc_blocks.to_terms(r, cfg) for r in resolved]
    kernel = mc_blocks.make_kernel(shape)
    shifts = (-0.15, -0.05, 0.0, 0.07, 0.2)
    rows = [mc_core.Row(c, r.spot_x, mk.vol, mk.rate, mk.div) for c, (r, mk) in enumerate(zip(resolved, mks))]
    ext = mc_blocks.extreme_blocks(shape, terms)
    lad, _ = mc_core.run_ladder(np, terms, rows, [shifts] * len(rows), kernel, cfg, ext)
    fast, _ = mc_core.run_ladder(np, terms, rows, [shifts] * len(rows), kernel, cfg, ext,
                                 fast=mc_blocks.make_ladder_kernel(shape, ext))
    full_rows = [mc_core.Row(r.contract, r.x0 * (1 + s), r.sigma, r.rate, r.div) for r in rows for s in shifts]
    full, _, _ = mc_core.run_batch(np, terms, full_rows, kernel, cfg)
    full = full.reshape(len(rows), len(shifts))
    assert np.allclose(np.stack(lad), full, atol=1e-9)
    assert np.allclose(np.stack(fast), full, atol=1e-9)


def test_ray_distribution_matches_in_process():
    ray = pytest.importorskip("ray")
    trades, markets = book.sample_book(24, seed=8, valuation_date=VD)
    local = book.revalue_book(trades, markets, VD, mc_options={"paths": 1000}, batch_size=8, workers=1)
    ctx = ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        addr = ctx.address_info.get("address") or "auto"
        dist = book.revalue_book(trades, markets, VD, mc_options={"paths": 1000}, batch_size=8, ray_address=addr)
    finally:
        ray.shutdown()
    assert dist.timings["ray"] is True and dist.timings["batches"] >= 4
    assert [r.price for r in dist.trades] == pytest.approx([r.price for r in local.trades], rel=1e-12, abs=1e-12)
    assert np.allclose(dist.scenario_pnl, local.scenario_pnl)


def test_risk_bench_cli_prints_the_contract_document(capsys, tmp_path, monkeypatch):
    from otcdesk.app.cli import main

    monkeypatch.setenv("OTCDESK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(["risk", "bench", "--trades", "30", "--backend", "numpy"]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for k in ("trades", "backend", "elapsed_s", "greeks_s", "scenario_s", "scenario_points"):
        assert k in doc
    assert doc["trades"] == 30 and doc["backend"] == "numpy" and doc["scenario_points"] == 41 * 5
    assert doc["elapsed_s"] > 0 and doc["greeks_s"] >= 0 and doc["scenario_s"] >= 0
    assert main(["risk", "bench", "--trades", "0"]) == 2
    assert "error" in json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_a_market_with_a_vol_surface_is_refused_not_revalued_flat():
    import dataclasses

    from otcdesk.pricing_engine.errors import UnsupportedMarketError

    trades, markets = book.sample_book(5, seed=3, valuation_date=VD)
    u = trades[0].product.underlying
    surface = {"expiries": ["2027-05-21"], "strikes_pct": [100], "vols": [[0.2]]}
    markets = {**markets, u: dataclasses.replace(markets[u], vol_surface=surface)}
    with pytest.raises(UnsupportedMarketError, match="book revaluation cannot use market.vol_surface"):
        book.revalue_book(trades, markets, VD, mc_options={"paths": 200}, spot_shifts=None, vol_shifts=None)
