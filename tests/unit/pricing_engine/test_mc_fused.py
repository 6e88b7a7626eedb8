"""The fused (numba) Monte Carlo kernel against the vectorised NumPy reference: its normals, its streams, and
every structure within 3 standard errors (different random numbers: 3 x the combined error), flat and local vol."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from scipy import stats

from otcdesk.pricing_engine import mc_fused
from otcdesk.pricing_engine.api import price
from otcdesk.pricing_engine.engines import EngineOptions
from otcdesk.pricing_engine.errors import PricingError
from otcdesk.pricing_engine.mc_engine import MCEngine
from otcdesk.pricing_engine.models import MarketSpec
from otcdesk.pricing_engine.products import product_from_dict
from test_mc_structures import CASES, OTHERS, SNOW  # the structures the FD comparison covers
from test_surface import MARKET as SURFACE_MARKET, VD as SURFACE_VD

pytestmark = pytest.mark.skipif(mc_fused.NUMBA_ERROR is not None, reason=str(mc_fused.NUMBA_ERROR))

VAL = dt.date(2026, 1, 5)
MODEL = MarketSpec(spot=100.0, vol=0.22, rate=0.025, div=0.01).to_model()
ENGINE = MCEngine()
MORE = {
    "barrier_continuous_up_out": {"structure": "barrier", "option_type": "call", "strike_pct": 100, "barrier_pct": 120,
                                  "barrier_type": "up_out", "rebate_pct": 1, "barrier_monitoring": "continuous",
                                  "tenor": "6M"},
    "barrier_continuous_down_in": {"structure": "barrier", "option_type": "put", "strike_pct": 100, "barrier_pct": 85,
                                   "barrier_type": "down_in", "barrier_monitoring": "continuous", "tenor": "6M"},
    "digital_call": {"structure": "digital", "option_type": "call", "strike_pct": 105, "payout_pct": 100,
                     "tenor": "6M"},
    "asian_arithmetic": {"structure": "asian", "option_type": "call", "strike_pct": 100, "fixings": "monthly",
                         "tenor": "12M"},
    "asian_geometric": {"structure": "asian", "option_type": "put", "strike_pct": 100, "fixings": "monthly",
                        "averaging": "geometric", "tenor": "12M"},
}


def _spec(name):
    if name in CASES:
        return product_from_dict(dict(SNOW, **CASES[name]))
    doc = OTHERS.get(name) or MORE[name]
    return product_from_dict(dict(doc, start_date=VAL.isoformat()))


def _both(p, model=MODEL, **kw):
    opts = dict(paths=20_000, seed=5, greeks=False, **kw)
    f = ENGINE.price(p, model, VAL, EngineOptions(mc_kernel="fused", **opts))
    n = ENGINE.price(p, model, VAL, EngineOptions(mc_kernel="numpy", **opts))
    return f, n


@pytest.mark.parametrize("dtype,bits", [("float64", 52), ("float32", 23)])
def test_ziggurat_normals_are_standard_normal(dtype, bits):
    z = mc_fused.sample_normals(400_000, seed=3, dtype=dtype).astype(np.float64)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    assert abs((z**4).mean() - 3) < 0.1
    assert stats.kstest(z, "norm").pvalue > 1e-3
    tail = np.mean(np.abs(z) > mc_fused.ZIG_R)  # drawn by the tail branch of layer 0
    expect = 2 * stats.norm.sf(mc_fused.ZIG_R)
    assert abs(tail - expect) < 5 * math.sqrt(expect / z.size)
    assert tail > 0
    k, w, f = mc_fused.zig_tables(bits)
    assert f[0] == 1.0 and np.all(np.diff(f[1:]) < 0) and w[255] * 2.0**bits == pytest.approx(mc_fused.ZIG_R)


def test_block_streams_are_reproducible_and_distinct():
    a = mc_fused.sample_normals(1000, seed=1, block=0)
    assert np.array_equal(a, mc_fused.sample_normals(1000, seed=1, block=0))
    b = mc_fused.sample_normals(1000, seed=1, block=1)
    c = mc_fused.sample_normals(1000, seed=2, block=0)
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.15 and not np.array_equal(a, b) and not np.array_equal(a, c)


def test_result_is_independent_of_the_thread_count_and_reproducible():
    from otcdesk.pricing_engine import mc_blocks, mc_core

    p = _spec("snowball_classic")
    rs = p.resolve(VAL, MODEL)
    cfg = EngineOptions(paths=3_000, seed=9)
    terms, shape = [mc_blocks.to_terms(rs, cfg)], mc_blocks.shape_of(rs)
    rows = mc_core.greek_rows(0, rs.spot_x, MODEL.vol, MODEL.rate, MODEL.div, cfg)
    one = mc_fused.run_batch(terms, rows, shape, cfg, threads=1)
    two = mc_fused.run_batch(terms, rows, shape, cfg, threads=2)
    assert one[2]["threads"] == 1 and one[2]["blocks"] > 2
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])
    other = mc_fused.run_batch(terms, rows, shape, EngineOptions(paths=3_000, seed=10))
    assert not np.array_equal(one[0], other[0])


@pytest.mark.parametrize("name", list(CASES) + list(OTHERS) + list(MORE))
def test_fused_matches_the_numpy_kernel_within_three_standard_errors(name):
    f, n = _both(_spec(name))
    assert f.diagnostics["kernel"] == "fused" and n.diagnostics["kernel"] == "numpy"
    assert f.stderr > 0 or n.stderr == 0
    assert abs(f.price - n.price) <= 3 * math.hypot(f.stderr, n.stderr) + 1e-12, (f.price, n.price, f.stderr)


@pytest.mark.parametrize("name", ["snowball_classic", "sharkfin_daily_call"])
def test_fused_float32_matches_float64(name):
    f32, _ = _both(_spec(name), dtype="float32")
    f64, _ = _both(_spec(name), dtype="float64")
    assert abs(f32.price - f64.price) <= 3 * math.hypot(f32.stderr, f64.stderr)


def test_control_variate_and_antithetic_off():
    f, n = _both(_spec("asian_arithmetic"), antithetic=False)
    assert f.stderr < 1e-4 and abs(f.price - n.price) <= 3 * math.hypot(f.stderr, n.stderr)


@pytest.mark.parametrize("kernel", ["fused", "numpy"])
def test_greeks_by_bump_and_reprice_on_common_random_numbers_match_fd(kernel):
    """Each scenario row is driven by the same normals, so the bumped differences are not swamped by noise."""
    from otcdesk.pricing_engine.engines import select_engine

    p = _spec("snowball_classic")
    mc = ENGINE.price(p, MODEL, VAL, EngineOptions(mc_kernel=kernel, paths=40_000, seed=8, greeks=True))
    fd = select_engine(p, "fd").price(p, MODEL, VAL, EngineOptions(greeks=True, grid_points=400))
    assert mc.diagnostics["kernel"] == kernel
    tol = {"delta": 0.03, "gamma": 1.0, "vega": 0.001, "rho": 0.001, "theta": 2.5e-4}
    for g, t in tol.items():
        assert mc.greeks[g] == pytest.approx(fd.greeks[g], abs=t), g


def test_local_vol_fused_matches_numpy():
    base = {"market": SURFACE_MARKET, "valuation_date": SURFACE_VD, "engine": "mc",
            "product": {"structure": "snowball", "tenor": "6M", "ko_pct": 103, "ki_pct": 80, "coupon_pct": 12,
                        "lockup_months": 1}}
    opts = {"greeks": False, "paths": 10_000, "seed": 11}
    f = price({**base, "engine_options": dict(opts, mc_kernel="fused")})
    n = price({**base, "engine_options": dict(opts, mc_kernel="numpy")})
    assert f["diagnostics"]["vol_model"] == n["diagnostics"]["vol_model"] == "local_vol"
    assert f["diagnostics"]["kernel"] == "fused"
    assert abs(f["price"] - n["price"]) <= 3 * math.hypot(f["stderr"], n["stderr"]), (f["price"], n["price"])


def test_what_the_fused_kernel_cannot_do_falls_back_and_says_so():
    p = _spec("snowball_classic")
    r = ENGINE.price(p, MODEL, VAL, EngineOptions(paths=2_000, greeks=False, sobol=True))
    assert r.diagnostics["kernel"] == "numpy" and "Sobol" in r.diagnostics["kernel_note"]
    with pytest.raises(PricingError):
        ENGINE.price(p, MODEL, VAL, EngineOptions(paths=2_000, greeks=False, sobol=True, mc_kernel="fused"))
    with pytest.raises(PricingError):
        EngineOptions(mc_kernel="cuda")
    mc_fused.warm_up(("float64",))
    d = ENGINE.price(p, MODEL, VAL, EngineOptions(paths=2_000, greeks=False)).diagnostics
    assert d["kernel"] == "fused" and d["jit_cache"] in ("disk", "memory") and "kernel_note" not in d


def test_auto_never_waits_for_a_compile(monkeypatch):
    """Before the kernel is compiled in the process, `auto` prices on the reference kernel and says why."""
    monkeypatch.setattr(mc_fused, "READY", set())
    d = ENGINE.price(_spec("snowball_classic"), MODEL, VAL, EngineOptions(paths=2_000, greeks=False)).diagnostics
    assert d["kernel"] == "numpy" and "not compiled" in d["kernel_note"]


def test_warm_up_compiles_both_dtypes():
    out = mc_fused.warm_up()
    assert set(out) == {"float64", "float32", "cache"} and all(out[k] >= 0 for k in ("float64", "float32"))
