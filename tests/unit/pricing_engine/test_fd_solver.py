"""FD solver internals (issue 15, speed): the symmetrised LDLᵀ steps against dense solves of the plain scheme,
prices against the values of the implementation they replaced, and the implied coupon by linearity.

Tolerances: a step agrees with the dense solve to 1e-12 relative (rounding; the penalty boundary rows are exact
to 1e-16); prices agree with the replaced implementation to 1e-10 (measured: under 1e-12); a fair coupon by
linearity agrees with the bracketing solver's to 1e-8 %, and re-pricing at it gives |price| < 1e-10.

On a volatility surface the recorded values also carry the surface's fit (scipy `least_squares`, tolerance ~1e-8),
which moves between scipy releases (scipy 1.17.1 moved a price by 4e-8 and a fair coupon by 1.3e-5 %): those cases
are compared at SURFACE_ABS; the solver itself is held to 1e-10 by the flat-volatility cases and by re-pricing.
"""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from otcdesk.pricing_engine import fd_solver
from otcdesk.pricing_engine.api import price
from otcdesk.pricing_engine.blocks import KnockOut
from otcdesk.pricing_engine.engines import EngineOptions
from otcdesk.pricing_engine.fd_engine import ENGINE, _affine
from otcdesk.pricing_engine.models import GBMModel
from otcdesk.pricing_engine.products import product_from_dict
from otcdesk.pricing_engine.solvers import solve_for

VD = "2026-11-20"
MK = {"spot": 100.0, "vol": 0.22, "rate": 0.025, "div": 0.0}
GRID = {"expiries": ["2027-02-19", "2027-05-21", "2027-11-20"], "strikes_pct": [70, 80, 90, 100, 110, 120, 130],
        "vols": [[0.305, 0.272, 0.245, 0.22, 0.20, 0.186, 0.18],
                 [0.292, 0.265, 0.243, 0.222, 0.205, 0.192, 0.185],
                 [0.282, 0.26, 0.242, 0.225, 0.21, 0.20, 0.194]]}
LV = {"spot": 100.0, "rate": 0.02, "div": 0.01, "vol_surface": GRID}
SURFACE_ABS = {"price": 1e-6, "coupon_pct": 1e-4}  # see the module docstring: the fit, not the solver
SB = {"structure": "snowball", "start_date": VD, "tenor": "12M", "ko_pct": 103, "ki_pct": 75, "lockup_months": 3,
      "coupon_pct": 15}
PH = {"structure": "phoenix", "start_date": VD, "tenor": "12M", "ko_pct": 100, "ki_pct": 70,
      "coupon_barrier_pct": 80, "lockup_months": 3, "coupon_pct": 12}


def _fd(product, market=MK, **kw):
    return price({"product": product, "market": market, "valuation_date": VD, "engine": "fd",
                  "engine_options": {"greeks": False}, **kw})


# ---- one step against a dense solve of the plain (unscaled, identity-boundary-row) scheme ---------------------
def _dense(n, lo, di, up, c):
    A = np.eye(n)
    for i in range(1, n - 1):
        A[i, i - 1], A[i, i], A[i, i + 1] = -c * lo[i - 1], 1 - c * di[i - 1], -c * up[i - 1]
    return A


def _coefficients(n, drift):
    rng = np.random.default_rng(3)
    sig = 0.15 + 0.2 * rng.random(n - 2)  # a local vol: coefficients vary by node
    dz = 0.01
    a = 0.5 * sig * sig / dz ** 2
    mu = (drift - 0.5 * sig * sig) / (2 * dz)
    return a - mu, -2 * a - 0.03, a + mu


@pytest.mark.parametrize("drift", [0.03, 60.0])  # 60: lower coefficients negative → no symmetrisation → LU
def test_theta_and_trbdf2_steps_match_dense_solves(drift):
    n, d = 60, 1 / 365
    lo, di, up = _coefficients(n, drift)
    op = fd_solver._Operator(n, lo, di, up)
    assert op.sym == (drift < 1)
    rng = np.random.default_rng(5)
    V = rng.random((2, n))
    bl, bh = rng.random(2), rng.random(2)
    # implicit step: A x = V with x = bl, bh at the ends
    W = op.step(op.scale(V), d, 1.0, bl / op._d0(), bh / op._dn())
    got = op.unscale(W)
    A = _dense(n, lo, di, up, d)
    for k in range(2):
        rhs = V[k].copy()
        rhs[0], rhs[-1] = bl[k], bh[k]
        want = np.linalg.solve(A, rhs)
        assert np.abs(got[k] - want).max() <= 1e-12 * np.abs(want).max()
    # TR-BDF2 (extrapolated boundaries): trapezoidal stage to γd, BDF2 stage to d, both with A = I − (γd/2)L
    g = 2 - math.sqrt(2)
    got = op.unscale(op.step_trbdf2(op.scale(V), d))
    A = _dense(n, lo, di, up, g * d / 2)
    L = np.zeros((n, n))
    for i in range(1, n - 1):
        L[i, i - 1], L[i, i], L[i, i + 1] = lo[i - 1], di[i - 1], up[i - 1]
    for k in range(2):
        v = V[k]
        b0, b1 = 2 * v[1] - v[2], 2 * v[-2] - v[-3]
        rhs = v + (g * d / 2) * (L @ v)
        rhs[0], rhs[-1] = b0, b1
        U = np.linalg.solve(A, rhs)
        rhs2 = (U - (1 - g) ** 2 * v) / (g * (2 - g))
        rhs2[0], rhs2[-1] = b0, b1
        want = np.linalg.solve(A, rhs2)
        assert np.abs(got[k] - want).max() <= 1e-12 * np.abs(want).max()


# ---- prices of the implementation this one replaced (same grids, same schemes) --------------------------------
BEFORE = [
    (SB, MK, {}, 0.023484089705985377),
    ({**SB, "knocked_in": True}, MK, {}, -0.013925077475785903),
    (SB, {**MK, "vol": 0.03}, {}, 0.11464515121726407),
    (SB, MK, {"time_steps": 100}, 0.02348006099478063),
    (SB, LV, {}, 0.0005771781764810855),
    ({**PH, "memory": True}, MK, {}, 0.03039874625316531),
    ({**PH, "memory": True}, LV, {}, 0.009923242418260328),
    ({"structure": "airbag", "start_date": VD, "tenor": "12M", "ki_pct": 75, "participation_pct": 60}, MK, {},
     0.016198367198238733),
    ({"structure": "barrier", "option_type": "call", "strike_pct": 100, "barrier_pct": 120, "barrier_type": "up_out",
      "start_date": VD, "tenor": "6M"}, MK, {}, 0.018369481969839774),
    ({"structure": "barrier", "option_type": "put", "strike_pct": 100, "barrier_pct": 75, "barrier_type": "down_in",
      "start_date": VD, "tenor": "12M"}, MK, {}, 0.0455933480505264),
    ({"structure": "double_sharkfin", "strike_pct": 100, "barrier_pct": 115, "lower_barrier_pct": 85,
      "start_date": VD, "tenor": "6M"}, MK, {}, 0.04590342091999641),
]


@pytest.mark.parametrize("product,market,options,before", BEFORE)
def test_prices_unchanged_from_the_replaced_solver(product, market, options, before):
    d = price({"product": product, "market": market, "valuation_date": VD, "engine": "fd",
               "engine_options": {"greeks": False, **options}})
    assert d["price"] == pytest.approx(before, abs=SURFACE_ABS["price"] if "vol_surface" in market else 1e-10)


# ---- implied coupon by linearity -------------------------------------------------------------------------------
@pytest.mark.parametrize("product,market,before", [
    ({k: v for k, v in SB.items() if k != "coupon_pct"}, MK, 9.251417920185729),
    ({k: v for k, v in SB.items() if k != "coupon_pct"}, LV, 14.835134985258785),
    (PH, MK, 5.56687155266563),
])
def test_fair_coupon_by_linearity(product, market, before):
    d = _fd(product, market, solve_for="coupon_pct", target_price_pct=0.0)
    assert d["diagnostics"]["linear_in"] == "coupon_pct"  # two solves, no root search
    c = d["solved"]["coupon_pct"]
    assert c == pytest.approx(before, abs=SURFACE_ABS["coupon_pct"] if "vol_surface" in market else 1e-8)
    assert abs(d["price"]) < 1e-10
    assert abs(_fd({**product, "coupon_pct": c}, market)["price"]) < 1e-10  # a plain solve at the answer


def test_linearity_agrees_with_the_bracketing_solver_and_a_target_price():
    vd = dt.date.fromisoformat(VD)
    model = GBMModel(100.0, 0.22, 0.025, 0.0)
    p = product_from_dict({**SB, "coupon_pct": 0.0, "initial_price": 100.0})
    quick = EngineOptions(greeks=False)

    def signed(pp, m, v):
        return ENGINE.price(pp, m, v, quick).price

    def linear(pp, f, a, b):
        at = ENGINE.linear_in(f, pp, model, vd, quick, a, b)
        return None if at is None else (lambda v: at(v)[1].price)

    for target in (0.0, 0.02):
        plain, _, _ = solve_for("coupon_pct", p, model, vd, signed, target)
        fast, _, _ = solve_for("coupon_pct", p, model, vd, signed, target, linear)
        assert fast == pytest.approx(plain, abs=1e-8)


def test_not_affine_fields_take_the_general_way():
    vd = dt.date.fromisoformat(VD)
    model = GBMModel(100.0, 0.22, 0.025, 0.0)
    v = product_from_dict({"structure": "vanilla", "option_type": "call", "strike_pct": 100, "start_date": VD,
                           "tenor": "6M", "initial_price": 100.0})
    assert ENGINE.linear_in("strike_pct", v, model, vd, EngineOptions(greeks=False), 90.0, 110.0) is None
    d = _fd({"structure": "vanilla", "option_type": "call", "strike_pct": 100, "start_date": VD, "tenor": "6M"},
            solve_for="strike_pct", target_price_pct=5.0)
    assert "linear_in" not in d["diagnostics"] and d["price"] == pytest.approx(0.05, abs=1e-9)


def test_affine_check_reads_amounts_only():
    def ko(levels, rebates):
        return KnockOut("up", "discrete", (0.25, 0.5), levels, rebates)
    assert _affine(ko((1.03, 1.03), (0.1, 0.2)), ko((1.03, 1.03), (0.2, 0.4)), ko((1.03, 1.03), (0.3, 0.6)), 2.0)
    assert not _affine(ko((1.03, 1.03), (0.1, 0.2)), ko((1.03, 1.03), (0.2, 0.4)), ko((1.03, 1.03), (0.3, 0.7)), 2.0)
    # a level that moves with the solved field: the price is not affine in it
    assert not _affine(ko((1.03, 1.03), (0.1, 0.2)), ko((1.04, 1.03), (0.2, 0.4)), ko((1.05, 1.03), (0.3, 0.6)), 2.0)


@pytest.mark.parametrize("product,field,values", [
    (SB, "coupon_pct", (5.0, 15.0, 40.0)),
    ({**PH, "memory": True}, "coupon_pct", (6.0, 12.0)),  # memory coupon columns, the general event path
    ({"structure": "sharkfin", "option_type": "call", "strike_pct": 100, "barrier_pct": 120, "rebate_pct": 2,
      "barrier_monitoring": "continuous", "start_date": VD, "tenor": "6M"}, "rebate_pct", (2.0, 5.0)),  # continuous barrier: per-column Dirichlet values
    ({**SB, "knocked_in": True}, "coupon_pct", (10.0, 20.0)),
])
def test_one_pass_for_several_amounts_equals_separate_solves(product, field, values):
    vd = dt.date.fromisoformat(VD)
    model = GBMModel(100.0, 0.22, 0.025, 0.0)
    p = product_from_dict({**product, "initial_price": 100.0})
    group = [p.replace(**{field: v}).resolve(vd, model) for v in values]
    together = fd_solver.solve_many(group, model, 400)
    for res, sol in zip(group, together):
        alone = fd_solver.solve(res, model, 400)
        assert np.abs(sol.values - alone.values).max() < 1e-13
    assert len({round(s.price, 8) for s in together}) == len(values)  # the amounts did differ
