"""Brownian paths for the Monte Carlo engines, on an array backend ``xp``.

Paths are generated only on the time grid the products need (observation, fixing and
payment dates; a daily grid for daily monitoring), as standard Brownian motion
``W(t_k)`` in blocks of ``(n_steps, m)`` paths, streamed chunk by chunk so memory stays
bounded whatever the path count. Under GBM every contract of a batch (each with its own
spot, vol, rate and dividend) is then an affine map of the *same* ``W``::

    log x_c(t_k) = log x0_c + (r_c - q_c - sigma_c^2 / 2) t_k + sigma_c W(t_k)

which is what makes batched pricing and Greeks with common random numbers cheap.

What is drawn is read from the one engine configuration, `engines.EngineOptions` (``paths``,
``seed``, ``dtype``, ``antithetic``, ``sobol``, ``replicates``, ``chunk_elems``).

Random numbers:

* pseudo-random (default): on NumPy a counter-free ``SFC64`` generator seeded with
  ``SeedSequence([seed, chunk])`` and Box-Muller normals computed in the working dtype
  (in float32 the uniforms have 24 bits, so normals are truncated at about 5.8 sigma);
  on CuPy ``cupy.random.RandomState`` normals. Explicit seeds: the same seed, path count
  and chunk size give the same numbers.
* ``antithetic``: each chunk holds ``[W, -W]``; estimators pair them (``m`` is even).
* ``sobol``: scrambled Sobol points (``scipy.stats.qmc`` on CPU, one dimension per time
  step) mapped to normals and assembled with a Brownian bridge, so the first dimensions
  carry the coarse shape of the path. ``replicates`` independent scramblings give the
  standard error.

Cumulative sums over time run as a loop over time steps of whole-row adds on NumPy
(one vectorised op over all paths of the block per step; ~10x faster than
``np.cumsum(axis=0)`` on this layout) and as ``xp.cumsum`` on CuPy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType
from typing import Iterator

import numpy as np

from otcdesk.pricing_engine.backend import backend_name
from otcdesk.pricing_engine.engines import EngineOptions


SUB_BLOCK = 16384  # paths per independently seeded block of normals


@dataclass
class Chunk:
    """One block of Brownian paths ``w`` (n_steps, m) and how its columns pair/group.

    With antithetic variates a chunk may hold only the first half (``half``); ``w`` then
    builds ``[half, -half]`` on first use, and callers that can use the mirror directly
    (``log x = base -+ sigma * half``) skip that copy.
    """

    _w: object
    antithetic: bool  # columns [0:m/2] and [m/2:m] are antithetic pairs
    replicate: int  # Sobol replicate index, -1 for pseudo-random
    half: object = None

    @property
    def w(self):
        if self._w is None:
            xp = _module_of(self.half)
            h = self.half.shape[1]
            full = xp.empty((self.half.shape[0], 2 * h), dtype=self.half.dtype)
            full[:, :h] = self.half
            xp.negative(self.half, out=full[:, h:])
            self._w = full
        return self._w

    @property
    def m(self) -> int:
        return self._w.shape[1] if self._w is not None else 2 * self.half.shape[1]


def _module_of(a):
    if isinstance(a, np.ndarray):
        return np
    import cupy  # noqa: PLC0415 - only reached with CuPy arrays

    return cupy


def time_increments(times) -> np.ndarray:
    """dt_k = t_k - t_{k-1} with t_0 = 0; the grid must be strictly increasing and > 0."""
    t = np.asarray(times, dtype=np.float64)
    if t.ndim != 1 or t.size == 0:
        raise ValueError("time grid must be a non-empty 1-d array")
    dt = np.diff(np.concatenate(([0.0], t)))
    if np.any(dt <= 0):
        raise ValueError("time grid must be strictly increasing and after the valuation date")
    return dt


def _box_muller(rng: np.random.Generator, n: int, dtype) -> np.ndarray:
    """n standard normals in ``dtype`` from Box-Muller (vectorised, in place)."""
    h = (n + 1) // 2
    u1 = rng.random(h, dtype=dtype)
    u2 = rng.random(h, dtype=dtype)
    one = dtype(1.0)
    np.subtract(one, u1, out=u1)  # (0, 1]
    np.log(u1, out=u1)
    np.multiply(u1, dtype(-2.0), out=u1)
    np.sqrt(u1, out=u1)
    np.multiply(u2, dtype(2.0 * math.pi), out=u2)
    z = np.empty(2 * h, dtype=dtype)
    np.cos(u2, out=z[:h])
    np.sin(u2, out=z[h:])
    np.multiply(z[:h], u1, out=z[:h])
    np.multiply(z[h:], u1, out=z[h:])
    return z[:n]


def normals(xp: ModuleType, shape: tuple[int, int], seed: int, chunk: int, dtype: str):
    """Pseudo-random standard normals of ``shape`` for block ``chunk`` of stream ``seed``."""
    n = shape[0] * shape[1]
    if xp is np:
        rng = np.random.Generator(np.random.SFC64(np.random.SeedSequence([int(seed), int(chunk)])))
        return _box_muller(rng, n, np.dtype(dtype).type).reshape(shape)
    rs = xp.random.RandomState(int(np.random.SeedSequence([int(seed), int(chunk)]).generate_state(1)[0]))
    return rs.standard_normal(shape, dtype=dtype)


def cumsum_time(xp: ModuleType, a):
    """In-place cumulative sum over axis 0 of a (n_steps, m) block."""
    if xp is np:
        for k in range(1, a.shape[0]):
            np.add(a[k - 1], a[k], out=a[k])
        return a
    return xp.cumsum(a, axis=0, out=a)


def brownian_from_normals(xp: ModuleType, z, dt: np.ndarray):
    """W(t_k) from iid normals z (n_steps, m), scaled by sqrt(dt) and summed in place."""
    sq = xp.asarray(np.sqrt(dt).astype(z.dtype))[:, None]
    z *= sq
    return cumsum_time(xp, z)


@dataclass(frozen=True)
class BridgePlan:
    """Brownian-bridge construction order for a time grid (Glasserman, ch. 3.1)."""

    order: tuple[int, ...]
    left: tuple[int, ...]
    right: tuple[int, ...]
    wl: tuple[float, ...]
    wr: tuple[float, ...]
    sd: tuple[float, ...]


def bridge_plan(times) -> BridgePlan:
    """Bisection order: W(t_n) first, then midpoints; -1 means the origin / no right point."""
    t = np.concatenate(([0.0], np.asarray(times, dtype=np.float64)))
    n = len(t) - 1
    order, left, right, wl, wr, sd = [n], [0], [-1], [0.0], [0.0], [math.sqrt(t[n])]
    built = {0, n}
    queue = [(0, n)]
    while queue:
        nxt = []
        for lo, hi in queue:
            if hi - lo < 2:
                continue
            mid = (lo + hi) // 2
            a, b, c = t[lo], t[mid], t[hi]
            order.append(mid)
            left.append(lo)
            right.append(hi)
            wl.append((c - b) / (c - a))
            wr.append((b - a) / (c - a))
            sd.append(math.sqrt((b - a) * (c - b) / (c - a)))
            built.add(mid)
            nxt += [(lo, mid), (mid, hi)]
        queue = nxt
    assert len(built) == n + 1
    return BridgePlan(tuple(order), tuple(left), tuple(right), tuple(wl), tuple(wr), tuple(sd))


def brownian_bridge(xp: ModuleType, z, plan: BridgePlan):
    """W(t_1..t_n) (n, m) from normals z (n, m) consumed in bridge order (row j -> plan.order[j])."""
    n, m = z.shape
    w = xp.zeros((n + 1, m), dtype=z.dtype)  # row 0 is W(0) = 0
    for j, k in enumerate(plan.order):
        if plan.right[j] < 0:
            w[k] = plan.sd[j] * z[j]
        else:
            w[k] = plan.wl[j] * w[plan.left[j]] + plan.wr[j] * w[plan.right[j]] + plan.sd[j] * z[j]
    return w[1:]


def paths_per_chunk(cfg: EngineOptions, n_steps: int, expansion: int = 1) -> int:
    """Paths per block so that n_steps * m * expansion stays under ``cfg.chunk_elems``."""
    m = max(2, cfg.chunk_elems // max(1, n_steps * max(1, expansion)))
    return min(m, cfg.paths + (cfg.paths % 2))


def brownian_chunks(xp: ModuleType, times, cfg: EngineOptions, expansion: int = 1) -> Iterator[Chunk]:
    """Yield blocks of standard Brownian motion on ``times`` totalling ``cfg.paths`` paths.

    ``expansion`` is how many arrays of the block's size the caller builds per block
    (e.g. contracts x bump scenarios), to size blocks for a bounded memory footprint.
    """
    dt = time_increments(times)
    n = len(dt)
    m_max = paths_per_chunk(cfg, n, expansion)
    if cfg.sobol:
        yield from _sobol_chunks(xp, np.asarray(times, dtype=np.float64), cfg, m_max)
        return
    # Normals come in fixed sub-blocks of SUB_BLOCK paths, each seeded by (seed, index), so the
    # same seed and path count give the same paths whatever the chunk size (common random
    # numbers across calls that size their chunks differently).
    base_total = (cfg.paths + 1) // 2 if cfg.antithetic else cfg.paths
    n_sub = -(-base_total // SUB_BLOCK)
    width = max(1, m_max // 2 if cfg.antithetic else m_max)  # base paths per chunk
    per = max(1, width // SUB_BLOCK)
    for c0 in range(0, n_sub, per):
        subs = range(c0, min(c0 + per, n_sub))
        parts = [normals(xp, (n, min(SUB_BLOCK, base_total - s * SUB_BLOCK)), cfg.seed, s, cfg.dtype) for s in subs]
        z = parts[0] if len(parts) == 1 else xp.concatenate(parts, axis=1)
        w = brownian_from_normals(xp, z, dt)
        # a chunk narrower than one sub-block takes column slices of it
        step = width if width < w.shape[1] else w.shape[1]
        for lo in range(0, w.shape[1], step):
            ws = w[:, lo:lo + step]
            if cfg.antithetic:
                yield Chunk(None, True, -1, half=ws)
            else:
                yield Chunk(ws, False, -1)


def _sobol_chunks(xp: ModuleType, times: np.ndarray, cfg: EngineOptions, m_max: int) -> Iterator[Chunk]:
    from scipy.special import ndtri  # noqa: PLC0415
    from scipy.stats import qmc  # noqa: PLC0415

    n = len(times)
    plan = bridge_plan(times)
    reps = max(2, min(cfg.replicates, cfg.paths // 2))
    per_rep = max(2, cfg.paths // reps)
    seeds = np.random.SeedSequence(int(cfg.seed)).spawn(reps)
    for rep in range(reps):
        eng = qmc.Sobol(d=n, scramble=True, seed=np.random.default_rng(seeds[rep]))
        base = per_rep // 2 if cfg.antithetic else per_rep
        step = max(1, m_max // 2 if cfg.antithetic else m_max)
        done = 0
        while done < base:
            k = min(step, base - done)
            u = eng.random(k)  # (k, n) in (0, 1)
            np.clip(u, 1e-12, 1 - 1e-12, out=u)
            z = xp.asarray(np.ascontiguousarray(ndtri(u).T).astype(cfg.dtype))
            w = brownian_bridge(xp, z, plan)
            if cfg.antithetic:
                yield Chunk(None, True, rep, half=w)
            else:
                yield Chunk(w, False, rep)
            done += k


class Accumulator:
    """Streaming mean / standard error of per-path values for C contracts.

    Antithetic pairs are averaged before the variance is taken; Sobol replicates give
    the error from the spread of replicate means. Optional control variates (K of them,
    with known means) are applied with regression coefficients fitted on all paths.
    """

    def __init__(self, n_contracts: int, n_controls: int = 0):
        c, k = n_contracts, n_controls
        self.n = 0
        self.k = k
        self.s_y = np.zeros(c)
        self.s_yy = np.zeros(c)
        self.s_x = np.zeros((c, k))
        self.s_xx = np.zeros((c, k, k))
        self.s_xy = np.zeros((c, k))
        self.rep: dict[int, list] = {}

    def add(self, xp: ModuleType, chunk: Chunk, y, controls=None) -> None:
        """y: (C, m) per-path values; controls: (C, K, m) control variates or None."""
        if chunk.antithetic:
            h = y.shape[-1] // 2
            y = 0.5 * (y[..., :h] + y[..., h:])
            if controls is not None:
                controls = 0.5 * (controls[..., :h] + controls[..., h:])
        y = y.astype(xp.float64)
        m = y.shape[-1]
        sums = [y.sum(axis=-1), (y * y).sum(axis=-1)]
        if self.k:
            x = controls.astype(xp.float64)
            sums += [x.sum(axis=-1), xp.einsum("ckm,cjm->ckj", x, x), xp.einsum("ckm,cm->ck", x, y)]
        sums = [np.asarray(_host(xp, s)) for s in sums]
        if chunk.replicate >= 0:
            acc = self.rep.setdefault(chunk.replicate, [0, *[np.zeros_like(s) for s in sums]])
            acc[0] += m
            for i, s in enumerate(sums):
                acc[i + 1] += s
        self.n += m
        self.s_y += sums[0]
        self.s_yy += sums[1]
        if self.k:
            self.s_x += sums[2]
            self.s_xx += sums[3]
            self.s_xy += sums[4]

    def _estimate(self, n, s_y, s_yy, s_x=None, s_xx=None, s_xy=None, means=None, beta=None):
        mean_y = s_y / n
        if not self.k:
            var = np.maximum(s_yy / n - mean_y**2, 0.0)
            return mean_y, var, None
        mean_x = s_x / n
        cov_xx = s_xx / n - mean_x[:, :, None] * mean_x[:, None, :]
        cov_xy = s_xy / n - mean_x * mean_y[:, None]
        if beta is None:
            beta = np.zeros_like(mean_x)
            for c in range(len(mean_y)):
                try:
                    beta[c] = np.linalg.solve(cov_xx[c] + 1e-300 * np.eye(self.k), cov_xy[c])
                except np.linalg.LinAlgError:
                    beta[c] = 0.0
        est = mean_y - np.einsum("ck,ck->c", beta, mean_x - means)
        var_y = s_yy / n - mean_y**2
        var = var_y - 2 * np.einsum("ck,ck->c", beta, cov_xy) + np.einsum("ck,ckj,cj->c", beta, cov_xx, beta)
        return est, np.maximum(var, 0.0), beta

    def result(self, control_means=None) -> tuple[np.ndarray, np.ndarray]:
        """(mean, standard error) per contract."""
        means = None if not self.k else np.asarray(control_means, dtype=np.float64)
        est, var, beta = self._estimate(self.n, self.s_y, self.s_yy, self.s_x, self.s_xx, self.s_xy, means)
        if self.rep:
            reps = [self._estimate(*acc, means=means, beta=beta)[0] for acc in self.rep.values()]
            r = np.array(reps)
            return est, r.std(axis=0, ddof=1) / math.sqrt(len(r))
        return est, np.sqrt(var / self.n)


def _host(xp: ModuleType, a):
    return a if xp is np else a.get()


def describe(xp: ModuleType, cfg: EngineOptions, n_steps: int) -> dict:
    """The diagnostics an engine reports about its paths."""
    return {
        "paths": int(cfg.paths),
        "steps": int(n_steps),
        "seed": int(cfg.seed),
        "dtype": cfg.dtype,
        "antithetic": bool(cfg.antithetic),
        "sobol": bool(cfg.sobol),
        "backend": backend_name(xp),
    }
