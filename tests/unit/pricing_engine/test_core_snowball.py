"""Snowball / phoenix / airbag on the FD engine: published fair coupons, regression numbers, knock-in
state, mid-life valuation, solver round trips, template equivalence, parities."""
from __future__ import annotations

import datetime as dt

import pytest

from otcdesk.pricing_engine.api import price
from otcdesk.pricing_engine.errors import PricingError

VD = "2026-11-20"
MK = {"spot": 100.0, "vol": 0.22, "rate": 0.025, "div": 0.0}
SB12 = {"structure": "snowball", "start_date": VD, "tenor": "12M", "ko_pct": 103, "ki_pct": 75, "lockup_months": 3,
        "coupon_pct": 15}


def _fd(product, market=MK, vd=VD, greeks=False, **kw):
    return price({"product": product, "market": market, "valuation_date": vd, "engine": "fd",
                  "engine_options": {"greeks": greeks, **kw.pop("engine_options", {})}, **kw})


# ------------------------------------------------------------------------------------------------
DS = {"structure": "snowball", "start_date": "2022-01-05", "maturity_date": "2023-01-05", "ko_pct": 103,
      "ki_pct": 80, "lockup_months": 3}
DS_MK = {"spot": 1.0, "vol": 0.16, "rate": 0.02, "div": 0.04}


def _fair(extra):
    d = _fd({**DS, **extra}, DS_MK, "2022-01-05", solve_for="coupon_pct", target_price_pct=0)
    assert abs(d["price"]) < 1e-10
    return d["solved"]["coupon_pct"]


def test_published_fair_coupons_derivasharp():
    """Independent published fair coupons (option form, ACT/365 accrual from the effective date, SSE
    calendar, monthly knock-out after a 3-month lock-up, rolled forward):
    lilkui/DerivaSharp, tests/Autocallable/FdSnowballEngineTest.cs — effective 2022-01-05, expiry
    2023-01-05, vol 16%, r 2%, q 4%, KO 103%, KI 80%: classic 8.65%, step-down 2%/obs 7.69%,
    dual coupon (4% at maturity) 12.6%, OTM strike 105% 10.7%, loss capped at 80% 7.21%,
    European KI 5.35% (the CONTRACTS.md example also quotes 8.65%).
    Their FD tests knock-in at every one of 1000 time steps (near-continuous), and their MC twin
    (trading-day closes, like ours) accepts ±0.3 coupon points. We monitor daily closes on XSHG
    trading days, which knocks in slightly less often, so our coupons sit 0.1–0.2 points lower;
    monitoring the same product at 1000 equally spaced times gives 8.77% (near-continuous bound).
    """
    cases = [({}, 8.65), ({"ko_stepdown_pct": 2}, 7.69), ({"maturity_coupon_pct": 4}, 12.6),
             ({"strike_pct": 105}, 10.7), ({"loss_cap_pct": 20}, 7.21), ({"ki_observation": "maturity"}, 5.35)]
    for extra, published in cases:
        ours = _fair(extra)
        assert published - 0.3 <= ours <= published + 0.05, (extra, ours, published)
    # regression on the classic under our convention (independent numpy MC: 8.49 ± 0.04)
    assert _fair({}) == pytest.approx(8.491, abs=0.01)


def test_classic_csi500_24m_fair_coupon_in_published_range():
    """中证500 24M, KO 103% monthly after 3M lock-up, KI 75% daily, q = 0, r = 2.5%.

    Desk and broker research quote snowball coupons of roughly 10–20% p.a. on CSI 500 / CSI 1000
    at implied vols of 20–25% (e.g. the Chinese broker research summarised at bigquant.com,
    "雪球结构定价与风险深度分析": typical annualised coupon about 20% (note form with futures basis);
    many retail descriptions: 年化15%-20%). In option form without basis (q = 0) and r = 2.5%, the
    fair coupon must land in the low-to-mid teens and rise with vol.
    """
    p = {"structure": "snowball", "underlying": "000905.SH", "tenor": "24M", "ko_pct": 103, "ki_pct": 75,
         "lockup_months": 3}
    c22 = _fd(p, {"spot": 6050.0, "vol": 0.22, "rate": 0.025, "div": 0.0}, solve_for="coupon_pct")["solved"]["coupon_pct"]
    c25 = _fd(p, {"spot": 6050.0, "vol": 0.25, "rate": 0.025, "div": 0.0}, solve_for="coupon_pct")["solved"]["coupon_pct"]
    assert 9.0 < c22 < 16.0 and 11.0 < c25 < 19.0 and c25 > c22
    assert c22 == pytest.approx(11.70, abs=0.05)  # regression
    # with a 5% futures basis (carry q) the coupon rises, as on the desk
    c_basis = _fd(p, {"spot": 6050.0, "vol": 0.22, "rate": 0.025, "div": 0.05},
                  solve_for="coupon_pct")["solved"]["coupon_pct"]
    assert c_basis > c22 + 2


def test_snowball_regression_and_greeks():
    d = _fd(SB12, greeks=True)
    assert d["engine"] == "fd" and d["stderr"] is None
    assert d["price"] == pytest.approx(0.02348, abs=2e-4)
    g = d["greeks"]
    assert 0.1 < g["delta"] < 0.6 and g["gamma"] < 0 and g["vega"] < 0 and g["theta"] > 0
    lad = d["diagnostics"]["ladder"]
    assert len(lad) == 9 and lad[4]["price"] == pytest.approx(d["price"], abs=1e-9)
    assert lad[0]["price"] < lad[4]["price"]  # a snowball loses value when spot falls
    assert d["diagnostics"]["grid_points"] > 700 and d["diagnostics"]["steps"] > 300


def test_knocked_in_state_and_parity():
    free = _fd(SB12)["price"]
    kin = _fd({**SB12, "knocked_in": True})["price"]
    assert kin == pytest.approx(-0.01393, abs=2e-4)
    assert kin < free
    # with a knock-in level far below spot the not-knocked-in snowball is worth more (less downside)
    low = _fd({**SB12, "ki_pct": 1})["price"]
    assert low > free


def test_mid_life_valuation():
    """After 6 months (3 observations passed), spot 97% of the initial price."""
    p = {**SB12, "initial_price": 100.0}
    mid = _fd(p, {**MK, "spot": 97.0}, "2027-05-20")
    assert mid["price"] == pytest.approx(0.0913, abs=5e-4)
    mid_ki = _fd({**p, "knocked_in": True}, {**MK, "spot": 97.0}, "2027-05-20")
    assert mid_ki["price"] == pytest.approx(-0.0016, abs=5e-4)
    # on an observation date with spot above the knock-out level the coupon is paid today
    ko_today = _fd({**DS, "coupon_pct": 8.45, "initial_price": 1.0}, {**DS_MK, "spot": 1.05}, "2022-04-06")
    assert ko_today["price"] == pytest.approx(0.0845 * 91 / 365, abs=1e-6)  # DerivaSharp: 0.021067


def test_solver_round_trips():
    d = _fd(SB12, solve_for="coupon_pct", target_price_pct=-1.0)
    c = d["solved"]["coupon_pct"]
    assert d["price_pct"] == pytest.approx(-1.0, abs=1e-8)
    back = _fd({**SB12, "coupon_pct": c})
    assert back["price_pct"] == pytest.approx(-1.0, abs=1e-8)
    v = _fd(SB12, solve_for="vol", target_price_pct=0.0)["solved"]["vol"]
    assert _fd(SB12, {**MK, "vol": v})["price"] == pytest.approx(0.0, abs=1e-9)


def test_variants_move_the_right_way():
    base = _fd(SB12)["price"]
    assert _fd({**SB12, "ko_stepdown_pct": 0.5})["price"] > base - 0.01  # earlier KO: less coupon, less KI
    assert _fd({**SB12, "loss_cap_pct": 20})["price"] > base
    assert _fd({**SB12, "strike_pct": 90})["price"] > base  # OTM strike: smaller loss
    assert _fd({**SB12, "ki_observation": "maturity"})["price"] > base
    assert _fd({**SB12, "maturity_coupon_pct": 5})["price"] < base
    assert _fd({**SB12, "final_ko_pct": 90})["price"] > base  # parachute: KO (coupon) at the end more likely
    assert _fd({**SB12, "early_coupon_pct": 25, "early_observations": 3})["price"] > base


def test_template_stepdown_snowball_equals_builtin():
    args = {"start_date": VD, "tenor": "12M", "ko_pct": 103, "ki_pct": 75, "coupon_pct": 12, "lockup_months": 3,
            "ko_stepdown_pct": 0.5}
    a = _fd({"structure": "snowball", **args})["price"]
    b = _fd({"structure": "stepdown_snowball", **args})
    assert b["price"] == pytest.approx(a, abs=1e-12)
    assert b["product"]["structure"] == "stepdown_snowball"
    c = _fd({"structure": "stepdown_snowball", **args}, solve_for="coupon_pct")["solved"]["coupon_pct"]
    assert _fd({"structure": "snowball", **args, "coupon_pct": c})["price"] == pytest.approx(0, abs=1e-9)


def test_phoenix_memory_and_coupon_barrier():
    ph = {"structure": "phoenix", "start_date": VD, "tenor": "12M", "ko_pct": 100, "ki_pct": 70,
          "coupon_barrier_pct": 80, "lockup_months": 3, "coupon_pct": 12}
    plain = _fd(ph)["price"]
    mem = _fd({**ph, "memory": True})["price"]
    assert plain == pytest.approx(0.02780, abs=3e-4)
    assert mem > plain
    assert _fd({**ph, "coupon_barrier_pct": 70})["price"] > plain
    fair = _fd(ph, solve_for="coupon_pct")["solved"]["coupon_pct"]
    assert 0 < fair < 12


def test_airbag_and_european_consistency():
    ab = {"structure": "airbag", "start_date": VD, "tenor": "12M", "ki_pct": 75, "participation_pct": 60}
    eu = {**ab, "ki_observation": "maturity"}
    an = price({"product": eu, "market": MK, "valuation_date": VD, "engine": "auto"})
    assert an["engine"] == "analytic"
    assert _fd(eu)["price"] == pytest.approx(an["price"], abs=1e-4)
    assert _fd(ab)["price"] < an["price"]  # daily knock-in bites more often than at maturity


def test_fd_barrier_in_out_parity_and_put_call_parity():
    def fd(p):
        return _fd({"start_date": VD, "tenor": "6M", **p})["price"]
    kw = {"structure": "barrier", "option_type": "call", "strike_pct": 100, "barrier_pct": 85}
    v = fd({"structure": "vanilla", "option_type": "call", "strike_pct": 100})
    assert fd({**kw, "barrier_type": "down_in"}) + fd({**kw, "barrier_type": "down_out"}) == pytest.approx(v, abs=2e-4)
    kwd = {**kw, "barrier_monitoring": "daily"}
    assert (fd({**kwd, "barrier_type": "down_in"}) + fd({**kwd, "barrier_type": "down_out"})
            == pytest.approx(v, abs=2e-4))
    c = fd({"structure": "vanilla", "option_type": "call", "strike_pct": 95})
    p = fd({"structure": "vanilla", "option_type": "put", "strike_pct": 95})
    import math

    from otcdesk.pricing_engine.models import GBMModel
    from otcdesk.pricing_engine.products import product_from_dict
    r = product_from_dict({"structure": "vanilla", "option_type": "call", "start_date": VD, "tenor": "6M"}).resolve(
        dt.date.fromisoformat(VD), GBMModel(100, 0.22, 0.025, 0))
    assert c - p == pytest.approx(1.0 - 0.95 * math.exp(-0.025 * r.T), abs=1e-4)


def test_daily_barrier_fd_close_to_bgk_analytic():
    p = {"structure": "barrier", "option_type": "call", "strike_pct": 100, "barrier_pct": 120,
         "barrier_type": "up_out", "barrier_monitoring": "daily", "start_date": VD, "tenor": "6M"}
    fd = _fd(p)["price"]
    an = price({"product": p, "market": MK, "valuation_date": VD, "engine": "analytic",
                "engine_options": {"greeks": False}})["price"]
    assert fd == pytest.approx(an, abs=1.5e-3)  # BGK is an approximation; FD observes the real dates


def test_one_touch_template_vs_reiner_rubinstein():
    from otcdesk.pricing_engine.analytic_barrier import barrier_price
    from otcdesk.pricing_engine.models import GBMModel
    from otcdesk.pricing_engine.products import product_from_dict
    d = _fd({"structure": "one_touch", "barrier_pct": 110, "start_date": VD, "tenor": "6M", "payout_pct": 100})
    r = product_from_dict({"structure": "vanilla", "option_type": "call", "start_date": VD, "tenor": "6M"}).resolve(
        dt.date.fromisoformat(VD), GBMModel(100, 0.22, 0.025, 0))
    ref = (barrier_price("up_out", "call", 1.0, 50.0, 1.1, 1.0, r.T, 0.025, 0.0, 0.22)
           - barrier_price("up_out", "call", 1.0, 50.0, 1.1, 0.0, r.T, 0.025, 0.0, 0.22))
    assert d["price"] == pytest.approx(ref, abs=5e-4)


def test_spot_below_knock_in_is_refused_unless_knocked_in():
    with pytest.raises(PricingError, match="knocked_in"):
        _fd({**SB12, "initial_price": 100.0}, {**MK, "spot": 70.0}, "2027-02-01")
    assert _fd({**SB12, "initial_price": 100.0, "knocked_in": True}, {**MK, "spot": 70.0}, "2027-02-01")["price"] < -0.2
