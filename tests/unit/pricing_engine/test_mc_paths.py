"""Path generation and array backends: moments, the Brownian bridge, reproducibility, CuPy."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from otcdesk.pricing_engine import mc_paths
from otcdesk.pricing_engine.backend import cupy_status, get_xp
from otcdesk.pricing_engine.engines import EngineOptions
from otcdesk.pricing_engine.errors import PricingError
from otcdesk.pricing_engine.mc_engine import MCEngine
from otcdesk.pricing_engine.models import MarketSpec
from otcdesk.pricing_engine.products import product_from_dict

TIMES = np.array([0.1, 0.25, 0.5, 0.6, 1.0])


def _collect(cfg, times=TIMES):
    return np.concatenate([c.w for c in mc_paths.brownian_chunks(np, times, cfg)], axis=1)


@pytest.mark.parametrize("sobol", [False, True])
def test_brownian_covariance_is_min_of_times(sobol):
    cfg = EngineOptions(paths=65_536, seed=3, dtype="float64", antithetic=False, sobol=sobol)
    w = _collect(cfg)
    assert w.shape == (len(TIMES), 65_536)
    cov = np.cov(w)
    expected = np.minimum.outer(TIMES, TIMES)
    assert np.allclose(cov, expected, atol=0.02)
    assert np.abs(w.mean(axis=1)).max() < 0.02


def test_bridge_plan_builds_every_point_once():
    plan = mc_paths.bridge_plan(np.arange(1, 253) / 252)
    assert sorted(plan.order) == list(range(1, 253))
    assert plan.order[0] == 252 and plan.sd[0] == pytest.approx(1.0)


def test_same_paths_whatever_the_chunk_size():
    a = EngineOptions(paths=3_000, seed=9, dtype="float32", chunk_elems=10_000)
    b = EngineOptions(paths=3_000, seed=9, dtype="float32", chunk_elems=10_000_000)
    wa, wb = _collect(a), _collect(b)
    assert sorted(map(tuple, wa.T.round(6))) == sorted(map(tuple, wb.T.round(6)))


def test_antithetic_chunks_are_mirrored():
    for c in mc_paths.brownian_chunks(np, TIMES, EngineOptions(paths=1_000, seed=1, dtype="float32", chunk_elems=2_000)):
        h = c.w.shape[1] // 2
        assert c.antithetic and np.array_equal(c.w[:, :h], -c.w[:, h:])


def test_float32_box_muller_normals():
    z = mc_paths.normals(np, (100, 10_000), seed=5, chunk=0, dtype="float32")
    assert z.dtype == np.float32
    assert abs(float(z.mean())) < 0.005 and abs(float(z.std()) - 1) < 0.005
    assert abs(float((z.astype(np.float64) ** 4).mean()) - 3) < 0.05


def test_accumulator_regression_control_variate_is_exact_for_a_linear_payoff():
    acc = mc_paths.Accumulator(1, 1)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 1, 5_000))
    y = 2.0 + 3.0 * (x[:, 0, :] - 0.0)
    acc.add(np, mc_paths.Chunk(None, False, -1), y, x)
    mean, err = acc.result(np.array([[0.0]]))
    assert mean[0] == pytest.approx(2.0, abs=1e-9) and err[0] < 1e-6


def test_backend_selection():
    assert get_xp("numpy") is np
    ok, reason = cupy_status()
    if not ok:
        assert get_xp("auto") is np
        with pytest.raises(PricingError, match="cupy"):
            get_xp("cupy")
    with pytest.raises(PricingError):
        get_xp("tpu")


def test_cupy_path_matches_numpy_when_a_gpu_is_available():
    ok, reason = cupy_status()
    if not ok:
        print(f"SKIP reason: {reason}")
        pytest.skip(f"CuPy path not run: {reason}")
    model = MarketSpec(spot=100.0, vol=0.2, rate=0.02, div=0.0).to_model()
    vd = dt.date(2026, 1, 5)
    p = product_from_dict({"structure": "snowball", "ko_pct": 103, "ki_pct": 75, "coupon_pct": 15, "tenor": "12M"})
    eng = MCEngine()
    g = eng.price(p, model, vd, EngineOptions(paths=200_000, seed=3, backend="cupy", dtype="float32"))
    c = eng.price(p, model, vd, EngineOptions(paths=200_000, seed=3, backend="numpy", dtype="float32"))
    assert g.diagnostics["backend"] == "cupy"
    assert abs(g.price - c.price) <= 3 * math.hypot(g.stderr, c.stderr)
    assert set(g.greeks) == set(c.greeks)
