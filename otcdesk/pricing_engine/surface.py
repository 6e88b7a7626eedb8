"""Implied volatility surfaces (隐含波动率曲面): raw SVI per expiry, total-variance interpolation, Dupire local vol.

Pure: data in, numbers out. The input is CONTRACTS.md's `market.vol_surface` grid (implied Black vols, rows by
expiry, columns by strike in % of the reference spot) or listed option quotes already turned into implied vols
(`app.trading.vol_surfaces` does that for the CSV loader).

Conventions
- Log-forward moneyness y = ln(K / F(T)), F(T) = spot · e^{(rate − div) T}; T = ACT/365 years from the surface's
  valuation date; total implied variance w(y, T) = σ_imp(y, T)² T.
- Per expiry, raw SVI (Gatheral 2004): w(y) = a + b (ρ (y − m) + √((y − m)² + σ²)), fitted to the quotes by
  bounded least squares on the implied-vol error (scipy `least_squares`), parameterised by the minimum total
  variance v = a + bσ√(1−ρ²) ≥ 0, with b(1+|ρ|) ≤ 2 (Lee's wing bound) and a penalty on Gatheral's
  butterfly density g(y) < 0 on the quoted range (the fit is arbitrage-aware, not arbitrage-proof: what
  remains is reported).
- Wings: the SVI slice (asymptotically linear in y, Lee-compliant) is used beyond the outermost quoted strikes
  out to `WING_SD` standard deviations √w_ATM of the expiry; beyond that total variance is held flat in y
  (flat implied vol in strike). The fit's butterfly penalty and the butterfly check cover that whole range,
  so the only kink in the smile sits where the terminal density is negligible (a flat cut-off at the last
  quote would put a concave kink, i.e. a negative density, right at the quoted wing).
- Across expiries: linear in T at fixed y between expiries; before the first expiry w = w₁(y)·T/T₁ and after
  the last w = w_N(y)·T/T_N (flat implied vol in T at fixed moneyness).
- Arbitrage report `{"butterfly": [...], "calendar": [...]}`: g(y) < 0 on a grid of each fitted slice, and
  w_{i+1}(y) < w_i(y) between consecutive fitted slices on a common grid. Calendar arbitrage in the input
  grid itself (total variance falling with T at a quoted strike's moneyness) is refused (`SurfaceError`).
- Local vol (Dupire in total-variance form, Gatheral's formula), with the analytic SVI derivatives in y and the
  exact ∂w/∂T of the linear-in-T interpolation:
      σ_loc²(y, T) = ∂_T w / (1 − (y/w) ∂_y w + ¼(−¼ − 1/w + y²/w²)(∂_y w)² + ½ ∂²_y w),
  clipped to [`LV_MIN`, `LV_MAX`] (a negative denominator, i.e. butterfly arbitrage, gives `LV_MAX`).
- `shift` is a parallel shift of implied vol (vega bumps): the shifted surface's w and derivatives are exact.
- Sticky strike: the surface is anchored at its reference spot and forwards; a model whose spot moves (delta
  bumps, a later spot) reads the same vols at the same absolute strikes.
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Mapping, Sequence

import numpy as np

from otcdesk.pricing_engine.errors import PricingError

LV_MIN, LV_MAX = 0.01, 3.0
MAX_VOL = 5.0
WING_SD = 3.0  # SVI is trusted this many ATM standard deviations beyond the outermost quote
FLY_TOL = 1e-6  # g above −FLY_TOL is rounding, not a negative density
CAL_TOL = 1e-6  # total variance: a fall smaller than this between expiries is rounding, not arbitrage
FIT_STARTS = ((-0.6, 0.1), (-0.3, 0.3), (0.0, 0.05), (-0.8, 0.5))  # (rho, sigma) starting points


class SurfaceError(PricingError):
    """A vol surface that is malformed or arbitrageable; `detail["field"]` is `market.vol_surface...`."""


# ---------------------------------------------------------------------------------------------- SVI
@dataclass(frozen=True)
class SVI:
    """Raw SVI slice: total variance w(y) = a + b (ρ (y − m) + √((y − m)² + σ²))."""

    a: float
    b: float
    rho: float
    m: float
    sigma: float

    def w(self, y):
        d = np.asarray(y, dtype=float) - self.m
        return self.a + self.b * (self.rho * d + np.sqrt(d * d + self.sigma ** 2))

    def derivs(self, y):
        """(w, ∂w/∂y, ∂²w/∂y²) at y."""
        d = np.asarray(y, dtype=float) - self.m
        r = np.sqrt(d * d + self.sigma ** 2)
        w = self.a + self.b * (self.rho * d + r)
        return w, self.b * (self.rho + d / r), self.b * self.sigma ** 2 / r ** 3

    def g(self, y):
        """Gatheral's butterfly density factor; g ≥ 0 ⇔ no butterfly arbitrage at y."""
        w, w1, w2 = self.derivs(y)
        w = np.maximum(w, 1e-12)
        y = np.asarray(y, dtype=float)
        return (1 - y * w1 / (2 * w)) ** 2 - w1 * w1 / 4 * (1 / w + 0.25) + w2 / 2

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "rho": self.rho, "m": self.m, "sigma": self.sigma}


def _params(x) -> SVI:
    v, b, rho, m, s = x
    return SVI(v - b * s * math.sqrt(max(1 - rho * rho, 0.0)), b, rho, m, s)


@lru_cache(maxsize=512)
def _fit_cached(ks: tuple, vols: tuple, T: float) -> tuple[SVI, float]:
    from scipy.optimize import least_squares

    k = np.asarray(ks)
    iv = np.asarray(vols)
    w_obs = iv * iv * T
    n = len(k)
    span = max(k.max() - k.min(), 0.05)
    ext = wing_extension(k, w_obs)
    grid = np.linspace(k.min() - ext, k.max() + ext, 31)
    lo = [0.0, 1e-6, -0.999, k.min() - span, 1e-3]
    hi = [max(w_obs.max(), 1e-8) * 2.0, 1.0, 0.999, k.max() + span, 2.0]

    pts = np.concatenate([k, grid])
    n_pts = len(pts)
    reg = n < 6  # fewer quotes than a unique fit needs: lean gently towards a plain smile
    k_mean = float(np.mean(k))
    out = np.empty(n + len(grid) + 1 + (2 if reg else 0))

    def resid(x):
        v, b, rho, m, s = x
        d = pts - m
        r = np.sqrt(d * d + s * s)
        w = v - b * s * math.sqrt(max(1 - rho * rho, 0.0)) + b * (rho * d + r)
        w1 = b * (rho + d / r)
        w2 = b * s * s / (r * r * r)
        wk = np.maximum(w[:n], 1e-12)
        out[:n] = np.sqrt(wk / T) - iv
        wg, w1g, yg = np.maximum(w[n:], 1e-12), w1[n:], pts[n:]
        g = (1 - yg * w1g / (2 * wg)) ** 2 - w1g * w1g / 4 * (1 / wg + 0.25) + w2[n:] / 2
        out[n:n_pts] = 10.0 * np.minimum(g, 0.0)  # butterfly penalty
        out[n_pts] = 5.0 * max(0.0, b * (1 + abs(rho)) - 2.0)  # Lee wing bound
        if reg:
            out[n_pts + 1] = 1e-3 * (m - k_mean)
            out[n_pts + 2] = 1e-3 * (s - 0.2)
        return out.copy()

    i_atm = int(np.argmin(np.abs(k)))
    slope = np.polyfit(k, w_obs, 1)[0] if n >= 2 else 0.0
    best = None
    for j, (rho0, s0) in enumerate(FIT_STARTS):
        b0 = min(max(abs(slope) / max(abs(rho0), 0.3), 0.01), 0.9)
        x0 = np.clip([w_obs[i_atm] * 0.9, b0, rho0, 0.0, s0], np.add(lo, 1e-9), np.subtract(hi, 1e-9))
        sol = least_squares(resid, x0, bounds=(lo, hi), x_scale="jac", xtol=1e-10, ftol=1e-10, gtol=1e-10,
                            max_nfev=400)
        if best is None or sol.cost < best.cost:
            best = sol
        # two starts agreeing (or an exact fit) settle it; otherwise try the others
        if j >= 1 and (best.cost < 1e-14 or abs(sol.cost - best.cost) <= 1e-3 * best.cost + 1e-16):
            break
    p = _params(best.x)
    err = float(np.max(np.abs(np.sqrt(np.maximum(p.w(k), 0) / T) - iv)))
    return p, err


def wing_extension(k, w) -> float:
    """How far beyond the outermost quotes (in y) the SVI wings are used: `WING_SD` × √w at the quote nearest ATM."""
    k, w = np.asarray(k, dtype=float), np.asarray(w, dtype=float)
    return WING_SD * math.sqrt(max(float(w[int(np.argmin(np.abs(k)))]), 1e-8))


def fit_svi(k: Sequence[float], vols: Sequence[float], T: float) -> tuple[SVI, float]:
    """Raw SVI fitted to implied vols `vols` at log-forward moneyness `k` and expiry T (years): (params, max abs
    implied-vol error of the fit)."""
    if len(k) != len(vols) or len(k) < 2:
        raise SurfaceError("an expiry needs implied vols at two strikes at least", {"field": "market.vol_surface"})
    return _fit_cached(tuple(float(x) for x in k), tuple(float(v) for v in vols), float(T))


# ---------------------------------------------------------------------------------------------- surface
def _bad(msg: str, field: str = "market.vol_surface", **detail) -> SurfaceError:
    return SurfaceError(f"market.vol_surface is malformed: {msg}", {"field": field, **detail})


def _iso(d) -> dt.date:
    if isinstance(d, dt.date):
        return d
    try:
        return dt.date.fromisoformat(str(d)[:10])
    except ValueError:
        raise _bad(f"expiry {d!r} is not an ISO date", "market.vol_surface.expiries") from None


def validate_grid(doc: Any) -> tuple[list[dt.date], list[float], list[list[float]]]:
    """The grid's (expiries, strikes_pct, vols) if it is well-formed; SurfaceError with the reason otherwise.
    Checks the shape and values only (no dates: see `VolSurface.from_contract`)."""
    if not isinstance(doc, Mapping):
        raise _bad("it must be an object {expiries, strikes_pct, vols}")
    for key in ("expiries", "strikes_pct", "vols"):
        if key not in doc:
            raise _bad(f"{key} is missing", f"market.vol_surface.{key}")
        if not isinstance(doc[key], (list, tuple)) or not doc[key]:
            raise _bad(f"{key} must be a non-empty list", f"market.vol_surface.{key}")
    expiries = [_iso(e) for e in doc["expiries"]]
    try:
        strikes = [float(s) for s in doc["strikes_pct"]]
    except (TypeError, ValueError):
        raise _bad("strikes_pct must be numbers", "market.vol_surface.strikes_pct") from None
    if any(not math.isfinite(s) or s <= 0 for s in strikes):
        raise _bad("strikes_pct must be positive", "market.vol_surface.strikes_pct")
    if any(b <= a for a, b in zip(strikes, strikes[1:])):
        raise _bad("strikes_pct must be strictly increasing", "market.vol_surface.strikes_pct")
    if len(strikes) < 2:
        raise _bad("give two strikes at least", "market.vol_surface.strikes_pct")
    if any(b <= a for a, b in zip(expiries, expiries[1:])):
        raise _bad("expiries must be strictly increasing", "market.vol_surface.expiries")
    rows = doc["vols"]
    if len(rows) != len(expiries):
        raise _bad(f"vols has {len(rows)} rows for {len(expiries)} expiries (one row per expiry)",
                   "market.vol_surface.vols")
    vols = []
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != len(strikes):
            raise _bad(f"vols row {i} must have one vol per strike ({len(strikes)})", "market.vol_surface.vols",
                       row=i)
        try:
            r = [float(v) for v in row]
        except (TypeError, ValueError):
            raise _bad(f"vols row {i} has a value that is not a number", "market.vol_surface.vols", row=i) from None
        for j, v in enumerate(r):
            if not math.isfinite(v) or v <= 0:
                raise _bad(f"vol {row[j]!r} at expiry {expiries[i]} strike {strikes[j]:g}% must be positive",
                           "market.vol_surface.vols", row=i, column=j)
            if v > MAX_VOL:
                raise _bad(f"vol {v:g} at expiry {expiries[i]} strike {strikes[j]:g}% looks like a percentage; "
                           "give 0.20 for 20%", "market.vol_surface.vols", row=i, column=j)
        vols.append(r)
    return expiries, strikes, vols


@dataclass(frozen=True)
class VolSurface:
    """An implied vol surface fitted per expiry (see the module docstring). Build with `from_contract`."""

    name: str
    valuation_date: dt.date
    spot: float
    rate: float
    div: float
    expiries: tuple[dt.date, ...]
    times: tuple[float, ...]
    strikes_pct: tuple[float, ...]
    vols: tuple[tuple[float, ...], ...]
    slices: tuple[SVI, ...]
    k_lo: tuple[float, ...]
    k_hi: tuple[float, ...]
    fit_errors: tuple[float, ...]
    shift: float = 0.0
    source: str = ""

    # ---- construction ------------------------------------------------------------------------------
    @classmethod
    def from_contract(cls, doc: Mapping, valuation_date, spot: float, rate: float = 0.0, div: float = 0.0,
                      name: str | None = None) -> "VolSurface":
        """The surface of a CONTRACTS.md `vol_surface` grid against a valuation date and market; SurfaceError
        when it is malformed, has an expiry not after the valuation date, or calendar arbitrage."""
        vd = valuation_date if isinstance(valuation_date, dt.date) else _iso(valuation_date)
        expiries, strikes, vols = validate_grid(doc)
        if expiries[0] <= vd:
            raise _bad(f"expiry {expiries[0]} is not after the valuation date {vd}", "market.vol_surface.expiries")
        times = [(e - vd).days / 365.0 for e in expiries]
        _check_grid_calendar(expiries, times, strikes, vols, rate, div)
        slices, los, his, errs = [], [], [], []
        for T, row in zip(times, vols):
            k = [math.log(s / 100.0) - (rate - div) * T for s in strikes]
            p, e = fit_svi(k, row, T)
            ext = wing_extension(k, np.square(row) * T)
            slices.append(p)
            los.append(k[0] - ext)
            his.append(k[-1] + ext)
            errs.append(e)
        label = name or (doc.get("name") if isinstance(doc.get("name"), str) else None) or "market.vol_surface"
        source = doc.get("source") if isinstance(doc.get("source"), str) else ""
        surf = cls(label, vd, float(spot), float(rate), float(div), tuple(expiries), tuple(times), tuple(strikes),
                   tuple(tuple(r) for r in vols), tuple(slices), tuple(los), tuple(his), tuple(errs), 0.0, source)
        bad = [c for c in surf.arbitrage()["calendar"] if c["excess"] > 1e-4]
        if bad:
            c = bad[0]
            raise SurfaceError(f"market.vol_surface has calendar arbitrage: the fitted total variance falls from "
                               f"{c['w_before']:.5f} ({c['expiry_before']}) to {c['w_after']:.5f} "
                               f"({c['expiry_after']}) at log-moneyness {c['y']:.3f}",
                               {"field": "market.vol_surface", "calendar": bad[:5]})
        return surf

    def to_contract(self) -> dict:
        """The CONTRACTS.md grid, plus `name`, the fitted SVI slices and the fit errors (extra fields)."""
        out = {"expiries": [e.isoformat() for e in self.expiries], "strikes_pct": list(self.strikes_pct),
               "vols": [list(r) for r in self.vols], "name": self.name,
               "svi": [p.to_dict() for p in self.slices], "fit_max_error_vol": list(self.fit_errors)}
        if self.source:
            out["source"] = self.source
        return out

    def shifted(self, shift: float) -> "VolSurface":
        """The same surface with implied vols moved by `shift` (absolute, 0.01 = one vol point) in total."""
        return replace(self, shift=float(shift))

    # ---- evaluation --------------------------------------------------------------------------------
    def forward(self, T: float) -> float:
        return self.spot * math.exp((self.rate - self.div) * T)

    def _slice(self, i: int, y):
        """(w, w_y, w_yy) of slice i with flat wings beyond its quoted range."""
        yc = np.clip(y, self.k_lo[i], self.k_hi[i])
        w, w1, w2 = self.slices[i].derivs(yc)
        inside = (y >= self.k_lo[i]) & (y <= self.k_hi[i])
        return np.maximum(w, 1e-12), np.where(inside, w1, 0.0), np.where(inside, w2, 0.0)

    def total_variance(self, y, T: float):
        """Unshifted (w, ∂w/∂y, ∂²w/∂y², ∂w/∂T) at log-forward moneyness y (array) and time T > 0."""
        y = np.asarray(y, dtype=float)
        ts = self.times
        T = max(float(T), 1e-8)
        if T <= ts[0] or len(ts) == 1:
            w, w1, w2 = self._slice(0 if T <= ts[0] else len(ts) - 1, y)
            T0 = ts[0] if T <= ts[0] else ts[-1]
            f = T / T0
            return w * f, w1 * f, w2 * f, w / T0
        if T >= ts[-1]:
            w, w1, w2 = self._slice(len(ts) - 1, y)
            f = T / ts[-1]
            return w * f, w1 * f, w2 * f, w / ts[-1]
        i = int(np.searchsorted(ts, T)) - 1
        a, b = self._slice(i, y), self._slice(i + 1, y)
        al = (T - ts[i]) / (ts[i + 1] - ts[i])
        return ((1 - al) * a[0] + al * b[0], (1 - al) * a[1] + al * b[1], (1 - al) * a[2] + al * b[2],
                (b[0] - a[0]) / (ts[i + 1] - ts[i]))

    def _shifted_w(self, y, T: float):
        w, w1, w2, wT = self.total_variance(y, T)
        d = self.shift
        if d == 0.0:
            return w, w1, w2, wT
        T = max(float(T), 1e-8)
        q = np.sqrt(T / w)
        return (w + 2 * d * np.sqrt(w * T) + d * d * T, w1 * (1 + d * q),
                w2 * (1 + d * q) - d * math.sqrt(T) * w1 * w1 / (2 * w ** 1.5),
                wT + d * (np.sqrt(w / T) + q * wT) + d * d)

    def implied_vol(self, K, T: float):
        """Implied Black vol at absolute strike(s) K and expiry T (years from the surface's valuation date)."""
        T = max(float(T), 1e-8)
        y = np.log(np.asarray(K, dtype=float) / self.forward(T))
        w = self.total_variance(y, T)[0]
        out = np.sqrt(w / T) + self.shift
        return float(out) if np.ndim(out) == 0 else out

    def implied_vol_pct(self, strike_pct: float, T: float) -> float:
        """Implied vol at a strike in % of the surface's reference spot."""
        return float(self.implied_vol(self.spot * strike_pct / 100.0, T))

    def smile_slope(self, K, T: float):
        """∂σ_imp/∂K at absolute strike(s) K and expiry T (0 in the flat wings)."""
        T = max(float(T), 1e-8)
        K = np.asarray(K, dtype=float)
        y = np.log(K / self.forward(T))
        w, w1, _, _ = self.total_variance(y, T)
        sig = np.sqrt(w / T)
        return w1 / (2 * sig * T * K)

    def local_vol(self, S, t: float):
        """Dupire local vol σ(S, t) at absolute spot level(s) S and time t (years), Gatheral's formula."""
        t = max(float(t), 1e-6)
        y = np.log(np.asarray(S, dtype=float) / self.forward(t))
        w, w1, w2, wT = self._shifted_w(y, t)
        den = 1 - y / w * w1 + 0.25 * (-0.25 - 1 / w + y * y / (w * w)) * w1 * w1 + 0.5 * w2
        var = np.where(den > 1e-8, wT / np.maximum(den, 1e-8), LV_MAX ** 2)
        out = np.sqrt(np.clip(var, LV_MIN ** 2, LV_MAX ** 2))
        return float(out) if np.ndim(out) == 0 else out

    @property
    def ref_vol(self) -> float:
        """ATM-forward implied vol at one year (or the nearest quoted expiry), shift included."""
        T = min(max(1.0, self.times[0]), self.times[-1])
        return float(np.sqrt(self.total_variance(np.array(0.0), T)[0] / T)) + self.shift

    # ---- arbitrage -----------------------------------------------------------------------------------
    def arbitrage(self, points: int = 101) -> dict:
        """`{"butterfly": [{expiry, y, g}], "calendar": [{expiry_before, expiry_after, y, w_before, w_after,
        excess}]}` on grids of `points` log-moneyness values (see the module docstring); empty lists when
        the fitted surface is free of both."""
        fly, cal = [], []
        for i, p in enumerate(self.slices):
            y = np.linspace(self.k_lo[i], self.k_hi[i], points)
            g = p.g(y)
            bad = g < -FLY_TOL
            for yy, gg in zip(y[bad], g[bad]):
                fly.append({"expiry": self.expiries[i].isoformat(), "y": float(yy), "g": float(gg)})
        for i in range(len(self.slices) - 1):
            lo = min(self.k_lo[i], self.k_lo[i + 1])
            hi = max(self.k_hi[i], self.k_hi[i + 1])
            y = np.linspace(lo, hi, points)
            wa, wb = self._slice(i, y)[0], self._slice(i + 1, y)[0]
            ex = wa - wb
            for j in np.nonzero(ex > CAL_TOL)[0]:
                cal.append({"expiry_before": self.expiries[i].isoformat(),
                            "expiry_after": self.expiries[i + 1].isoformat(), "y": float(y[j]),
                            "w_before": float(wa[j]), "w_after": float(wb[j]), "excess": float(ex[j])})
        return {"butterfly": fly, "calendar": cal}

    def describe(self) -> dict:
        """A summary for diagnostics: name, expiries, fit errors (vol points), arbitrage counts."""
        arb = self.arbitrage()
        return {"name": self.name, "expiries": [e.isoformat() for e in self.expiries],
                "fit_max_error_vol_pts": round(100 * max(self.fit_errors), 4),
                "butterfly_violations": len(arb["butterfly"]), "calendar_violations": len(arb["calendar"]),
                "shift": self.shift}


def _check_grid_calendar(expiries, times, strikes, vols, rate, div) -> None:
    """Refuse a grid whose total variance falls with T at a quoted strike's forward moneyness (linear
    interpolation of the later expiry's quotes in y; flat beyond its quotes)."""
    for i in range(len(times) - 1):
        T0, T1 = times[i], times[i + 1]
        k0 = np.log(np.asarray(strikes) / 100.0) - (rate - div) * T0
        k1 = np.log(np.asarray(strikes) / 100.0) - (rate - div) * T1
        w0 = np.asarray(vols[i]) ** 2 * T0
        w1 = np.interp(k0, k1, np.asarray(vols[i + 1]) ** 2 * T1)
        bad = np.nonzero(w1 < w0 - CAL_TOL)[0]
        if bad.size:
            j = int(bad[0])
            raise SurfaceError(
                f"market.vol_surface has calendar arbitrage: total variance σ²T falls from {w0[j]:.5f} at "
                f"{expiries[i]} to {w1[j]:.5f} at {expiries[i + 1]} at strike {strikes[j]:g}% "
                f"(vol {vols[i][j]:g} → about {math.sqrt(w1[j] / T1):.4f})",
                {"field": "market.vol_surface.vols", "row": i + 1, "column": j})


def surface_from_quotes(quotes: Sequence[Mapping], valuation_date, spot: float, rate: float = 0.0,
                        div: float = 0.0, strikes_pct: Sequence[float] | None = None,
                        name: str = "") -> VolSurface:
    """A surface from scattered implied-vol quotes `{expiry, strike (absolute), iv}`: SVI fitted per expiry on the
    expiry's own strikes, then sampled on `strikes_pct` (default: 80..120 by 5, clipped to each expiry's quoted
    range is NOT applied: SVI wings are sampled) to give the contract grid, which is refitted (so the stored
    grid and the surface agree)."""
    vd = valuation_date if isinstance(valuation_date, dt.date) else _iso(valuation_date)
    by: dict[dt.date, list] = {}
    for q in quotes:
        by.setdefault(_iso(q["expiry"]), []).append((float(q["strike"]), float(q["iv"])))
    exps = sorted(e for e in by if e > vd)
    if not exps:
        raise SurfaceError("no quote expires after the valuation date", {"field": "quotes"})
    grid = list(strikes_pct or (70, 80, 85, 90, 95, 100, 105, 110, 115, 120, 130))
    rows = []
    for e in exps:
        pts = sorted(by[e])
        if len(pts) < 3:
            raise SurfaceError(f"expiry {e} has {len(pts)} quote(s); three strikes at least are needed",
                               {"field": "quotes", "expiry": e.isoformat()})
        T = (e - vd).days / 365.0
        k = [math.log(K / spot) - (rate - div) * T for K, _ in pts]
        p, _ = fit_svi(k, [v for _, v in pts], T)
        kg = np.log(np.asarray(grid) / 100.0) - (rate - div) * T
        kg = np.clip(kg, min(k), max(k))  # flat beyond the quoted strikes
        rows.append([round(float(math.sqrt(max(p.w(y), 1e-12) / T)), 6) for y in kg])
    return VolSurface.from_contract({"expiries": [e.isoformat() for e in exps], "strikes_pct": grid, "vols": rows},
                                    vd, spot, rate, div, name=name)
