"""The `mc` engine against the `fd` engine on path-dependent structures: within 3 standard errors.

The FD reference's own error is its grid error; 800 spot nodes and daily steps keep it far below
the Monte Carlo error, so the tolerance is 3 x (MC stderr) plus 2e-4 of notional for the grid.
"""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from otcdesk.pricing_engine.engines import EngineOptions, select_engine
from otcdesk.pricing_engine.mc_engine import MCEngine
from otcdesk.pricing_engine.models import MarketSpec
from otcdesk.pricing_engine.products import product_from_dict

VAL = dt.date(2026, 1, 5)
MODEL = MarketSpec(spot=100.0, vol=0.22, rate=0.025, div=0.01).to_model()
FD_GRID = 2e-4
ENGINE = MCEngine()

SNOW = {"structure": "snowball", "ko_pct": 103, "ki_pct": 75, "coupon_pct": 15, "tenor": "12M",
        "start_date": "2026-01-05", "initial_price": 100.0}
CASES = {
    "snowball_classic": {},
    "snowball_stepdown": {"ko_stepdown_pct": 0.5},
    "snowball_early_profit": {"early_coupon_pct": 25, "early_observations": 3},
    "snowball_dual_coupon": {"maturity_coupon_pct": 5},
    "snowball_parachute": {"final_ko_pct": 80},
    "snowball_otm_strike": {"strike_pct": 90},
    "snowball_loss_capped": {"loss_cap_pct": 20},
    "snowball_european_ki": {"ki_observation": "maturity"},
    "snowball_knocked_in": {"knocked_in": True},
    "snowball_mid_life": {"start_date": "2025-09-15", "initial_price": 101.0},
    "snowball_mid_life_knocked_in": {"start_date": "2025-07-15", "initial_price": 112.0, "knocked_in": True},
    "phoenix": {"structure": "phoenix", "coupon_barrier_pct": 80, "coupon_pct": 10},
    "phoenix_memory_mid_life": {"structure": "phoenix", "coupon_barrier_pct": 80, "coupon_pct": 10, "memory": True,
                                "start_date": "2025-10-10", "initial_price": 104.0, "unpaid_coupons": 2},
}


def _product(name):
    d = dict(SNOW)
    d.update(CASES[name])
    return product_from_dict(d)


def _fd(p):
    return select_engine(p, "fd").price(p, MODEL, VAL, EngineOptions(greeks=False, grid_points=800))


@pytest.mark.parametrize("name", list(CASES))
def test_autocallables_fd_and_mc_agree(name):
    p = _product(name)
    mc = ENGINE.price(p, MODEL, VAL, EngineOptions(paths=60_000, seed=21, greeks=False))
    fd = _fd(p)
    assert abs(mc.price - fd.price) <= 3 * mc.stderr + FD_GRID, (mc.price, mc.stderr, fd.price)


OTHERS = {
    "airbag": {"structure": "airbag", "ki_pct": 70, "participation_pct": 80, "tenor": "12M"},
    "airbag_european_ki": {"structure": "airbag", "ki_pct": 70, "participation_pct": 80, "tenor": "12M",
                           "ki_observation": "maturity"},
    "sharkfin_daily_call": {"structure": "sharkfin", "option_type": "call", "strike_pct": 100, "barrier_pct": 120,
                            "rebate_pct": 2, "barrier_monitoring": "daily", "tenor": "6M"},
    "sharkfin_daily_put": {"structure": "sharkfin", "option_type": "put", "strike_pct": 100, "barrier_pct": 85,
                           "rebate_pct": 1, "participation_pct": 70, "barrier_monitoring": "daily", "tenor": "6M"},
    "sharkfin_maturity": {"structure": "sharkfin", "option_type": "call", "strike_pct": 100, "barrier_pct": 115,
                          "rebate_pct": 2, "barrier_monitoring": "maturity", "tenor": "6M"},
    "double_sharkfin_daily": {"structure": "double_sharkfin", "strike_pct": 100, "barrier_pct": 115,
                              "lower_barrier_pct": 85, "rebate_pct": 1, "barrier_monitoring": "daily", "tenor": "6M"},
    "barrier_daily_down_in_put": {"structure": "barrier", "option_type": "put", "strike_pct": 100, "barrier_pct": 85,
                                  "barrier_type": "down_in", "barrier_monitoring": "daily", "tenor": "6M"},
    "barrier_knocked_in": {"structure": "barrier", "option_type": "put", "strike_pct": 100, "barrier_pct": 85,
                           "barrier_type": "down_in", "barrier_monitoring": "daily", "tenor": "6M",
                           "knocked_in": True},
}


@pytest.mark.parametrize("name", list(OTHERS))
def test_barrier_structures_fd_and_mc_agree(name):
    p = product_from_dict(dict(OTHERS[name], start_date=VAL.isoformat()))
    ref = select_engine(p, "auto")  # analytic where it applies (at-maturity barriers), else FD
    r = ref.price(p, MODEL, VAL, EngineOptions(greeks=False, grid_points=800))
    mc = ENGINE.price(p, MODEL, VAL, EngineOptions(paths=60_000, seed=22, greeks=False))
    assert abs(mc.price - r.price) <= 3 * mc.stderr + FD_GRID, (mc.price, mc.stderr, r.price, ref.name)


def test_knocked_in_barrier_is_the_vanilla():
    a = product_from_dict(dict(OTHERS["barrier_knocked_in"], start_date=VAL.isoformat()))
    v = product_from_dict({"structure": "vanilla", "option_type": "put", "strike_pct": 100, "tenor": "6M",
                           "start_date": VAL.isoformat()})
    opts = EngineOptions(paths=20_000, seed=4, greeks=False)
    ra, rv = ENGINE.price(a, MODEL, VAL, opts), ENGINE.price(v, MODEL, VAL, opts)
    assert abs(ra.price - rv.price) <= 3 * math.hypot(ra.stderr, rv.stderr)


def test_snowball_greeks_close_to_fd():
    p = _product("snowball_classic")
    mc = ENGINE.price(p, MODEL, VAL, EngineOptions(paths=60_000, seed=8, greeks=True))
    fd = select_engine(p, "fd").price(p, MODEL, VAL, EngineOptions(greeks=True, grid_points=400))
    assert mc.greeks["delta"] == pytest.approx(fd.greeks["delta"], abs=0.03)
    assert mc.greeks["gamma"] == pytest.approx(fd.greeks["gamma"], abs=1.0)  # 3% bump: O(h^2) bias, low noise
    assert mc.greeks["vega"] == pytest.approx(fd.greeks["vega"], abs=0.001)
    assert mc.greeks["rho"] == pytest.approx(fd.greeks["rho"], abs=0.001)
    assert mc.greeks["theta"] == pytest.approx(fd.greeks["theta"], abs=1e-4)
    assert set(mc.greeks) == {"delta", "gamma", "vega", "theta", "rho"}


def test_batched_contracts_match_one_by_one_within_errors():
    """Different strikes/levels/coupons in one pass over shared paths."""
    prods = [_product(n) for n in ("snowball_classic", "snowball_stepdown", "snowball_otm_strike",
                                   "snowball_early_profit", "snowball_parachute")]
    opts = EngineOptions(paths=30_000, seed=9, greeks=False)
    batch = ENGINE.price_many(prods, [MODEL] * len(prods), VAL, opts)
    for p, b in zip(prods, batch):
        one = ENGINE.price(p, MODEL, VAL, opts)
        assert b.diagnostics["group_contracts"] == len(prods)
        assert abs(b.price - one.price) <= 3 * math.hypot(b.stderr, one.stderr)


def test_seeds_reproduce_and_differ():
    p = _product("snowball_classic")
    a = ENGINE.price(p, MODEL, VAL, EngineOptions(paths=4_000, seed=1, greeks=False))
    b = ENGINE.price(p, MODEL, VAL, EngineOptions(paths=4_000, seed=1, greeks=False))
    c = ENGINE.price(p, MODEL, VAL, EngineOptions(paths=4_000, seed=2, greeks=False))
    assert a.price == b.price and a.stderr == b.stderr
    assert a.price != c.price


def test_antithetic_reduces_error_on_a_monotone_payoff():
    p = product_from_dict(dict(OTHERS["sharkfin_daily_call"], start_date=VAL.isoformat()))
    on = ENGINE.price(p, MODEL, VAL, EngineOptions(paths=20_000, seed=3, greeks=False, antithetic=True))
    off = ENGINE.price(p, MODEL, VAL, EngineOptions(paths=20_000, seed=3, greeks=False, antithetic=False))
    assert on.stderr < off.stderr
    assert abs(on.price - off.price) <= 3 * math.hypot(on.stderr, off.stderr)


def test_unsupported_and_bad_inputs_are_refused():
    from otcdesk.pricing_engine.errors import PricingError

    with pytest.raises(PricingError):
        ENGINE.price(_product("snowball_classic"), MODEL, VAL, EngineOptions(backend="cupy_typo"))
    with pytest.raises(PricingError):
        product_from_dict(dict(SNOW, ki_pct=105))  # knock-in above knock-out
    late = dt.date(2027, 3, 1)
    with pytest.raises(PricingError):
        ENGINE.price(_product("snowball_classic"), MODEL, late, EngineOptions(paths=1000))
    assert np.isfinite(ENGINE.price(_product("snowball_classic"), MODEL, VAL, EngineOptions(paths=1000)).price)


@pytest.mark.parametrize("doc", [
    {"structure": "one_touch", "barrier_pct": 110, "payout_pct": 10, "tenor": "6M"},
    {"structure": "ki_put", "ki_pct": 80, "tenor": "12M"},
    {"structure": "stepdown_snowball", "ko_pct": 103, "ki_pct": 75, "coupon_pct": 15, "tenor": "12M"},
])
def test_template_structures_are_priced_by_mc_without_new_code(doc):
    p = product_from_dict(dict(doc, start_date=VAL.isoformat()))
    fd = select_engine(p, "fd").price(p, MODEL, VAL, EngineOptions(greeks=False, grid_points=800))
    mc = ENGINE.price(p, MODEL, VAL, EngineOptions(paths=60_000, seed=4, greeks=False))
    assert abs(mc.price - fd.price) <= 3 * mc.stderr + FD_GRID, (mc.price, mc.stderr, fd.price)
