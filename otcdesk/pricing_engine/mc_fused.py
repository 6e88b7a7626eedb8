"""Fused Monte Carlo path kernel (numba): paths, payoff and statistics in one compiled pass.

The vectorised kernel (`mc_core.run_batch` + `mc_blocks.make_kernel`) builds every path of a
chunk as an array (R rows x n steps x m paths) and then reads it back block by block; it is the
reference. This kernel never stores a path: it walks a *tile* of paths through the time grid,
step by step, and keeps per path only its state (Brownian level, alive / knocked-in flags, cash
so far, unpaid coupons, running averages), so everything stays in the core's cache.

* **Threads over blocks.** Paths come in blocks of `BLOCK` base paths (doubled with antithetic
  mirrors); numba's ``prange`` hands blocks to threads. Each block writes its own sums
  (Σy, Σy², and for a control variate Σx, Σx², Σxy) and the host adds them in block order, so
  the result for a seed does not depend on the thread count or the scheduling.
* **Independent streams.** Block ``b`` draws from xoshiro256++ started at the root state
  (``SeedSequence(seed)``) advanced by ``b`` jumps of 2^128 (Vigna's ``jump``): non-overlapping
  streams by construction, reproducible for a seed.
* **Normals: ziggurat** (Marsaglia-Tsang, 256 layers, the layout of NumPy's
  ``standard_normal``): one 64-bit draw, a table look-up, a multiply and a compare for 99% of
  the normals (float32 takes two normals from one 64-bit draw), against a log, a square root, a
  sine and a cosine per pair for Box-Muller, or a rational polynomial (plus a log in the tails)
  for an inverse CDF. NumPy's own ``Generator.standard_normal`` is a ziggurat too but cannot be
  called from parallel numba code, hence this one. Its branches suit a CPU, not a GPU (there, a
  counter-based Philox with Box-Muller is the usual choice, see `benchmarks/bench_gpu.py`).
* **Events inside the loop.** Knock-outs (discrete and BGK-corrected continuous, rebates at the
  hit or at maturity), knock-ins (path or at maturity), coupon strips with memory, Asian
  fixings (with the geometric control), terminal legs and knocked-in legs: the same block
  semantics as `mc_blocks.make_kernel` (coupons, then knock-outs, then knock-in at a date).
* **Models.** Flat vol (GBM, log x affine in W, exactly as the reference) and local vol (Euler
  in log x on the refined grid of `mc_core.fine_grid`, σ read by linear interpolation from a
  per-step table over `mc_core.LV_LOGX`, as the reference does); one row per scenario, every
  row driven by the same normals (common random numbers for bump-and-revalue Greeks).

Not handled here (the caller falls back to the NumPy kernel and says why, see `unsupported`):
Sobol points, a non-NumPy backend, numba missing. Compilation happens on the first call of a
dtype (a few seconds); it is cached on disk next to this module when that folder (or numba's
user cache folder) is writable, else kept in memory for the process (`CACHE`); `warm_up`
compiles both dtypes ahead of the first quote.
"""
from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np

from otcdesk.pricing_engine import mc_core, mc_paths
from otcdesk.pricing_engine.engines import EngineOptions

BLOCK = 256  # base paths per block: the unit of threading and of random streams (fixed: results depend on it)
LEG_CODES = {"call": 0, "put": 1, "digital_call": 2, "digital_put": 3, "cash": 4, "asset": 5}
NSUM = 5  # per block and row: sum y, sum y^2, sum x, sum x^2, sum x y (x: the control variate)

try:  # numba is a dependency, but a broken LLVM install must not take the MC engine down
    import numba
    from numba import njit, prange

    NUMBA_ERROR = None
except Exception as exc:  # pragma: no cover - depends on the install
    numba = None
    NUMBA_ERROR = f"numba is not importable ({type(exc).__name__}: {exc})"

READY: set[str] = set()  # dtypes compiled in this process (by `warm_up` or an explicit fused run)
CACHE = "off"  # where compiled code is kept: "disk" (numba's cache) or "memory" (this process only)
# fast-math without nnan/ninf: reassociation and contraction only (sentinel levels are finite, ±1e30)
_FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}


def _jit(**kw):
    """``njit`` with ``cache=True`` when numba finds a writable cache folder, else without (read-only installs)."""
    def deco(fn):
        global CACHE
        try:
            out = njit(cache=True, **kw)(fn)
            CACHE = "disk"
            return out
        except RuntimeError:  # "cannot cache function ...: no locator available"
            CACHE = "memory"
            return njit(cache=False, **kw)(fn)

    return deco


# --------------------------------------------------------------------------- ziggurat tables

ZIG_R = 3.6541528853610088  # right edge of the base layer (256 layers)
ZIG_V = 0.00492867323399  # area of each layer


def zig_tables(bits: int):
    """(k, w, f) of the 256-layer ziggurat for ``bits``-bit magnitudes (52: float64, 23: float32).

    Layer 0 is the base strip with the tail; a draw ``j`` in layer i is ``x = j w[i]``, accepted at
    once when ``j < k[i]`` (x inside the layer above), else by the wedge test on f = exp(-x^2/2).
    """
    m = float(2 ** bits)
    k = np.zeros(256, dtype=np.uint64)
    w = np.zeros(256)
    f = np.zeros(256)
    dn = tn = ZIG_R
    q = ZIG_V / math.exp(-0.5 * dn * dn)
    k[0] = np.uint64((dn / q) * m)
    w[0], w[255] = q / m, dn / m
    f[0], f[255] = 1.0, math.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(ZIG_V / dn + math.exp(-0.5 * dn * dn)))
        k[i + 1] = np.uint64((dn / tn) * m)
        tn = dn
        f[i] = math.exp(-0.5 * dn * dn)
        w[i] = dn / m
    return k, w, f


ZK64, ZW64, ZF64 = zig_tables(52)
ZK32, ZW32, ZF32 = zig_tables(23)
_JUMP = np.array([0x180EC6D33CFD0ABA, 0xD5A61266F0C9392C, 0xA9582618E03FC9AA, 0x39ABDC4529B1661C], dtype=np.uint64)

if numba is not None:
    _U1, _U8, _U9, _U11, _U17, _U23, _U32, _U45 = (np.uint64(v) for v in (1, 8, 9, 11, 17, 23, 32, 45))
    _U64 = np.uint64(64)
    _M52 = np.uint64(0x000FFFFFFFFFFFFF)
    _M23 = np.uint64(0x7FFFFF)
    _MFF = np.uint64(0xFF)
    _M32 = np.uint64(0xFFFFFFFF)
    _INV53 = 1.0 / 9007199254740992.0

    @njit(inline="always")
    def _rotl(x, k):
        return (x << k) | (x >> (_U64 - k))

    @njit(inline="always")
    def _next(st):
        """One xoshiro256++ output; advances the 4-word state array in place."""
        s0, s1, s2, s3 = st[0], st[1], st[2], st[3]
        r = _rotl(s0 + s3, _U23) + s0
        t = s1 << _U17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = _rotl(s3, _U45)
        st[0], st[1], st[2], st[3] = s0, s1, s2, s3
        return r

    @njit(inline="always")
    def _uniform(st):
        """A double in [0, 1) from the top 53 bits."""
        return float(_next(st) >> _U11) * _INV53

    @_jit()
    def block_states(root, n_blocks):
        """(n_blocks, 4) start states: block b is the root advanced by b jumps of 2^128 draws."""
        out = np.empty((n_blocks, 4), dtype=np.uint64)
        st = root.copy()
        for b in range(n_blocks):
            out[b] = st
            a0 = a1 = a2 = a3 = np.uint64(0)
            for i in range(4):
                for bit in range(64):
                    if _JUMP[i] & (_U1 << np.uint64(bit)):
                        a0 ^= st[0]
                        a1 ^= st[1]
                        a2 ^= st[2]
                        a3 ^= st[3]
                    _next(st)
            st[0], st[1], st[2], st[3] = a0, a1, a2, a3
        return out

    @njit
    def _zig_slow(st, idx, x, rabs, fi):
        """The ziggurat's rare branch (~1%): the tail beyond r for layer 0, the wedge test otherwise; nan: retry."""
        if idx == 0:
            while True:
                xx = -math.log1p(-_uniform(st)) / ZIG_R
                yy = -math.log1p(-_uniform(st))
                if yy + yy > xx * xx:
                    return -(ZIG_R + xx) if (rabs >> _U8) & _U1 else ZIG_R + xx
        if (fi[idx - 1] - fi[idx]) * _uniform(st) + fi[idx] < math.exp(-0.5 * x * x):
            return x
        return np.nan

    @njit
    def _normals64(st, out, n, ki, wi, fi):
        """n standard normals (float64: 8 bits layer, 1 bit sign, 52 bits magnitude per draw) into out[:n]."""
        s0, s1, s2, s3 = st[0], st[1], st[2], st[3]
        i = 0
        while i < n:
            r = _rotl(s0 + s3, _U23) + s0  # xoshiro256++, state in registers
            t = s1 << _U17
            s2 ^= s0
            s3 ^= s1
            s1 ^= s2
            s0 ^= s3
            s2 ^= t
            s3 = _rotl(s3, _U45)
            idx = int(r & _MFF)
            r >>= _U8
            rabs = (r >> _U1) & _M52
            x = float(rabs) * wi[idx]
            if r & _U1:
                x = -x
            if rabs < ki[idx]:
                out[i] = x
                i += 1
                continue
            st[0], st[1], st[2], st[3] = s0, s1, s2, s3
            x = _zig_slow(st, idx, x, rabs, fi)
            s0, s1, s2, s3 = st[0], st[1], st[2], st[3]
            if not np.isnan(x):
                out[i] = x
                i += 1
        st[0], st[1], st[2], st[3] = s0, s1, s2, s3

    @njit
    def _normals32(st, out, n, ki, wi, fi):
        """n standard normals (float32: two 32-bit draws per 64-bit output; 8 + 1 + 23 bits each) into out[:n]."""
        s0, s1, s2, s3 = st[0], st[1], st[2], st[3]
        i = 0
        while i < n:
            r64 = _rotl(s0 + s3, _U23) + s0
            t = s1 << _U17
            s2 ^= s0
            s3 ^= s1
            s1 ^= s2
            s0 ^= s3
            s2 ^= t
            s3 = _rotl(s3, _U45)
            for half in range(2):
                if i >= n:
                    break
                r = (r64 >> _U32) if half else (r64 & _M32)
                idx = int(r & _MFF)
                rabs = (r >> _U9) & _M23
                x = float(rabs) * wi[idx]
                if (r >> _U8) & _U1:
                    x = -x
                if rabs < ki[idx]:
                    out[i] = x
                    i += 1
                    continue
                st[0], st[1], st[2], st[3] = s0, s1, s2, s3
                x = _zig_slow(st, idx, x, rabs, fi)
                s0, s1, s2, s3 = st[0], st[1], st[2], st[3]
                if not np.isnan(x):
                    out[i] = x
                    i += 1
        st[0], st[1], st[2], st[3] = s0, s1, s2, s3

    @njit(inline="always")
    def _legs(kinds, ks, ws, r, u):
        v = 0.0
        for i in range(kinds.shape[0]):
            kd = kinds[i]
            k = ks[r, i]
            if kd == 0:
                e = u - k if u > k else 0.0
            elif kd == 1:
                e = k - u if k > u else 0.0
            elif kd == 2:
                e = 1.0 if u > k else 0.0
            elif kd == 3:
                e = 1.0 if u < k else 0.0
            elif kd == 4:
                e = 1.0
            else:
                e = u
            v += e * ws[r, i]
        return v

    @_jit(fastmath=_FASTMATH)
    def _block(b, states, n_base, anti, is32, sqdt, gidx, local,
                base, sig, aw, lx0, ldrift, ldt, lscale, lvtab, lv_lo, lv_invh,
                mat, ev, df, df_mat,
                ko_up, ko_hit, ko_m, ko_l, ko_r,
                has_kil, ki_mode, ki_up, ki_m, ki_l, ki_lvl, kin,
                cp_mode, cp_m, cp_b, cp_a, unpaid0,
                avg_mode, fx_m, past_sum, past_logsum, n_fix,
                leg_kind, leg_k, leg_w, kil_kind, kil_k, kil_w, ctrl,
                zk, zw, zf, out):
        """Block b: its paths walked through the grid, tile-wise; out[b, r] = its sums for row r (see `NSUM`)."""
        R = base.shape[0]
        nf = sqdt.shape[0]
        nko = ko_m.shape[0]
        nlv = lvtab.shape[2]
        st = states[b].copy()
        P = min(BLOCK, n_base - b * BLOCK)
        M = 2 * P if anti else P
        z = np.empty(M, dtype=sqdt.dtype)
        W = np.zeros(M, dtype=sqdt.dtype)
        W0 = np.zeros(M, dtype=sqdt.dtype)
        L = np.empty(M, dtype=sqdt.dtype)
        cur = np.empty((R, M), dtype=sqdt.dtype)
        for r in range(R):
            cur[r, :] = lx0[r]
        alive = np.ones((R, M), dtype=np.bool_)
        kih = np.zeros((R, M), dtype=np.bool_)
        yko = np.zeros((R, M), dtype=sqdt.dtype)
        cash = np.zeros((R, M), dtype=sqdt.dtype)
        unpaid = np.empty((R, M), dtype=sqdt.dtype)
        gsum = np.zeros((R, M), dtype=sqdt.dtype)
        asum = np.zeros((R, M), dtype=sqdt.dtype)
        yfin = np.zeros((R, M), dtype=sqdt.dtype)
        cfin = np.zeros((R, M), dtype=sqdt.dtype)
        for r in range(R):
            unpaid[r, :] = unpaid0[r]
            if kin[r] > 0.5:
                kih[r, :] = True
        for k in range(nf):
            if is32:
                _normals32(st, z, P, zk, zw, zf)
            else:
                _normals64(st, z, P, zk, zw, zf)
            s = sqdt[k]
            for p in range(P):
                z[p] *= s  # dW
            g = gidx[k]
            if local:
                if anti:
                    for p in range(P):
                        z[P + p] = -z[p]
            else:  # flat: the mirror lanes are -W, so only the first P lanes carry W
                for p in range(P):
                    W[p] += z[p]
                if k == 0:
                    for p in range(P):
                        W0[p] = W[p]
            for r in range(R):
                if local:
                    dtr = ldt[r, k]
                    if dtr > 0:
                        sc = lscale[r, k]
                        dr = ldrift[r]
                        for p in range(M):
                            c = cur[r, p]
                            pos = (c - lv_lo) * lv_invh
                            if pos <= 0:
                                sv = lvtab[r, k, 0]
                            elif pos >= nlv - 1:
                                sv = lvtab[r, k, nlv - 1]
                            else:
                                i0 = int(pos)
                                fr = pos - i0
                                sv = lvtab[r, k, i0] + (lvtab[r, k, i0 + 1] - lvtab[r, k, i0]) * fr
                            cur[r, p] = c + (dr - 0.5 * sv * sv) * dtr + sv * (sc * z[p])
                if g < 0 or g > mat[r] or not ev[r, g]:  # nothing observed: no level needed
                    continue
                if local:
                    for p in range(M):
                        L[p] = cur[r, p]
                else:
                    bb, ss, aa = base[r, g], sig[r], sig[r] * aw[r]
                    for p in range(P):
                        dev = ss * W[p] + aa * W0[p]
                        L[p] = bb + dev
                        if anti:
                            L[P + p] = bb - dev
                # coupons (paid on a knock-out date too), then knock-outs, then knock-in
                if cp_mode > 0 and cp_m[r, g] > 0.5:
                    lvl, amt, d = cp_b[r, g], cp_a[r, g], df[r, g]
                    for p in range(M):
                        if alive[r, p]:
                            if L[p] >= lvl:
                                a = unpaid[r, p] + amt if cp_mode == 2 else amt
                                cash[r, p] += a * d
                                unpaid[r, p] = 0
                            elif cp_mode == 2:
                                unpaid[r, p] += amt
                for j in range(nko):
                    if ko_m[j, r, g] > 0.5:
                        lvl = ko_l[j, r, g]
                        val = ko_r[j, r, g] * (df[r, g] if ko_hit[j] else df_mat[r])
                        up = ko_up[j]
                        for p in range(M):  # branch-free: selects, so the loop vectorises
                            hit = alive[r, p] & ((L[p] >= lvl) if up else (L[p] <= lvl))
                            yko[r, p] = val if hit else yko[r, p]
                            alive[r, p] = alive[r, p] & (not hit)
                if ki_mode == 1 and ki_m[r, g] > 0.5:
                    lvl = ki_l[r, g]
                    for p in range(M):
                        kih[r, p] = kih[r, p] | ((L[p] >= lvl) if ki_up else (L[p] <= lvl))
                if avg_mode > 0 and fx_m[r, g] > 0.5:
                    for p in range(M):
                        gsum[r, p] += L[p]
                        if avg_mode == 2:
                            asum[r, p] += math.exp(L[p])
                if g == mat[r]:
                    dm = df_mat[r]
                    for p in range(M):
                        if avg_mode == 1:
                            u = math.exp((past_logsum[r] + gsum[r, p]) / n_fix[r])
                        elif avg_mode == 2:
                            u = (past_sum[r] + asum[r, p]) / n_fix[r]
                        else:
                            u = math.exp(L[p])
                        if ki_mode == 2 and ((L[p] >= ki_lvl[r]) if ki_up else (L[p] <= ki_lvl[r])):
                            kih[r, p] = True
                        if has_kil and kih[r, p]:
                            v = _legs(kil_kind, kil_k, kil_w, r, u)
                        else:
                            v = _legs(leg_kind, leg_k, leg_w, r, u)
                        yfin[r, p] = (v * dm if alive[r, p] else yko[r, p]) + cash[r, p]
                        if ctrl:
                            gm = math.exp((past_logsum[r] + gsum[r, p]) / n_fix[r])
                            cfin[r, p] = _legs(leg_kind, leg_k, leg_w, r, gm) * dm
        for r in range(R):
            sy = syy = sx = sxx = sxy = 0.0
            for p in range(P):
                if anti:
                    y = 0.5 * (float(yfin[r, p]) + float(yfin[r, P + p]))
                    x = 0.5 * (float(cfin[r, p]) + float(cfin[r, P + p]))
                else:
                    y = float(yfin[r, p])
                    x = float(cfin[r, p])
                sy += y
                syy += y * y
                sx += x
                sxx += x * x
                sxy += x * y
            out[b, r, 0] = sy
            out[b, r, 1] = syy
            out[b, r, 2] = sx
            out[b, r, 3] = sxx
            out[b, r, 4] = sxy

    @_jit(parallel=True)
    def _kernel(states, n_base, anti, is32, sqdt, gidx, local,
                base, sig, aw, lx0, ldrift, ldt, lscale, lvtab, lv_lo, lv_invh,
                mat, ev, df, df_mat,
                ko_up, ko_hit, ko_m, ko_l, ko_r,
                has_kil, ki_mode, ki_up, ki_m, ki_l, ki_lvl, kin,
                cp_mode, cp_m, cp_b, cp_a, unpaid0,
                avg_mode, fx_m, past_sum, past_logsum, n_fix,
                leg_kind, leg_k, leg_w, kil_kind, kil_k, kil_w, ctrl,
                zk, zw, zf, out):
        """All blocks on numba's threads (block sums land in out[b]: no shared accumulator)."""
        for b in prange(states.shape[0]):
            _block(b, states, n_base, anti, is32, sqdt, gidx, local, base, sig, aw, lx0, ldrift, ldt, lscale, lvtab, lv_lo, lv_invh, mat, ev, df, df_mat, ko_up, ko_hit, ko_m, ko_l, ko_r, has_kil, ki_mode, ki_up, ki_m, ki_l, ki_lvl, kin, cp_mode, cp_m, cp_b, cp_a, unpaid0, avg_mode, fx_m, past_sum, past_logsum, n_fix, leg_kind, leg_k, leg_w, kil_kind, kil_k, kil_w, ctrl, zk, zw, zf, out)


def unsupported(xp, cfg: EngineOptions) -> str | None:
    """Why the fused kernel cannot price with ``cfg`` on ``xp`` (None when it can)."""
    if NUMBA_ERROR:
        return NUMBA_ERROR
    if xp is not np:
        return "the fused kernel runs on the CPU (NumPy backend); this backend uses the vectorised kernel"
    if cfg.sobol:
        return "Sobol points are generated by the vectorised kernel only"
    return None


def sample_normals(n: int, seed: int, dtype: str = "float64", block: int = 0) -> np.ndarray:
    """``n`` normals of block ``block`` of stream ``seed``, as the kernel draws them (for tests)."""
    st = block_states(np.random.SeedSequence(int(seed)).generate_state(4, np.uint64), block + 1)[block].copy()
    out = np.empty(n, dtype=dtype)
    if dtype == "float32":
        _normals32(st, out, n, ZK32, ZW32.astype(np.float32), ZF32)
    else:
        _normals64(st, out, n, ZK64, ZW64, ZF64)
    return out


def _leg_arrays(kinds, prefix: str, s_np: dict, ci: np.ndarray, dtype):
    codes = np.array([LEG_CODES[k] for k in kinds], dtype=np.int64)
    ks = np.zeros((len(ci), len(kinds)), dtype=dtype)
    ws = np.zeros((len(ci), len(kinds)), dtype=dtype)
    for i in range(len(kinds)):
        ks[:, i] = s_np[f"{prefix}{i}_k"][ci]
        ws[:, i] = s_np[f"{prefix}{i}_w"][ci]
    return codes, ks, ws


def run_batch(terms: Sequence[mc_core.MCTerms], rows: Sequence[mc_core.Row], shape, cfg: EngineOptions,
              control_means: mc_core.ControlMeans | None = None, n_controls: int = 0,
              grid: np.ndarray | None = None, local_vols: Sequence | None = None,
              threads: int | None = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """`mc_core.run_batch` on the fused kernel: (price (R,), stderr (R,), diagnostics) for contracts of one
    `mc_blocks.Shape`. ``threads``: numba threads for this call (default: all)."""
    from otcdesk.pricing_engine.mc_blocks import BGK_BETA  # noqa: PLC0415 - mc_blocks imports the engine config

    t0 = time.perf_counter()
    grid = mc_core.batch_grid(terms) if grid is None else np.asarray(grid, dtype=np.float64)
    n = len(grid)
    dtype = np.dtype(cfg.dtype)
    s_np, ser_np, mat_np = mc_core._stack_params(terms, grid)
    R = len(rows)
    ci, x0, sig, rate, div, mu, t_rows, a_rows = mc_core._row_arrays(rows, grid)
    dt_rows = np.diff(np.concatenate([np.zeros((R, 1)), t_rows], axis=1), axis=1)
    mat = mat_np[ci].astype(np.int64)
    within = np.arange(n)[None, :] <= mat[:, None]
    df = np.exp(-rate[:, None] * t_rows)
    df_mat = df[np.arange(R), mat]
    bgk = BGK_BETA * sig[:, None] * np.sqrt(dt_rows) if shape.continuous else np.zeros((R, n))
    d = lambda a: np.ascontiguousarray(np.asarray(a, dtype=np.float64).astype(dtype))  # noqa: E731
    ser = {k: v[ci] for k, v in ser_np.items()}
    s = {k: v[ci] for k, v in s_np.items()}

    nko = len(shape.kos)
    ko_m, ko_l, ko_r = (np.zeros((nko, R, n)) for _ in range(3))
    for j, (direction, mon, _at) in enumerate(shape.kos):
        if mon == "continuous":
            ko_m[j] = within
            lvl = s[f"ko{j}_lvl"][:, None]
            ko_l[j] = lvl - bgk if direction == "up" else lvl + bgk
            ko_r[j] = s[f"ko{j}_reb"][:, None]
        else:
            ko_m[j], ko_l[j], ko_r[j] = ser[f"ko{j}_m"], ser[f"ko{j}_l"], ser[f"ko{j}_r"]
    ko_up = np.array([k[0] == "up" for k in shape.kos], dtype=np.bool_)
    ko_hit = np.array([k[2] == "hit" for k in shape.kos], dtype=np.bool_)
    ki_mode, ki_up = 0, False
    ki_m, ki_l = np.zeros((R, n)), np.zeros((R, n))
    ki_lvl = s.get("ki_lvl", np.zeros(R))
    if shape.legs_ki is not None and shape.ki is not None:
        direction, mon = shape.ki
        ki_up = direction == "up"
        if mon == "maturity":
            ki_mode = 2
        else:
            ki_mode = 1
            if mon == "continuous":
                ki_m = within.astype(float)
                ki_l = ki_lvl[:, None] + (-bgk if ki_up else bgk)
            else:
                ki_m = ser["ki_m"]
                ki_l = np.broadcast_to(ki_lvl[:, None], (R, n))
    cp_mode = 0 if shape.coupons is None else (2 if shape.coupons else 1)
    zeros = np.zeros((R, n))
    avg_mode = {None: 0, "geometric": 1, "arithmetic": 2}[shape.averaging]
    use_ctrl = bool(n_controls)
    if use_ctrl:
        avg_mode = 2
    leg = _leg_arrays(shape.legs, "L", s, np.arange(R), dtype)
    kil = _leg_arrays(shape.legs_ki or (), "K", s, np.arange(R), dtype)

    local = local_vols is not None
    if local:
        fine, fidx = mc_core.fine_grid(grid, cfg.steps_per_year)
        dtf = mc_paths.time_increments(fine)
        gidx = np.full(len(fine), -1, dtype=np.int64)
        gidx[fidx] = np.arange(n)
        ldt = np.empty((R, len(fine)))
        lscale = np.empty((R, len(fine)))
        lvtab = np.empty((R, len(fine), len(mc_core.LV_LOGX)), dtype=dtype)
        xs = np.exp(mc_core.LV_LOGX)
        for r, row in enumerate(rows):
            tf = np.maximum(fine - row.shift, 0.0)
            dtr = np.diff(np.concatenate([[0.0], tf]))
            ldt[r] = dtr
            lscale[r] = np.sqrt(np.divide(dtr, dtf, out=np.zeros_like(dtf), where=dtf > 0))
            t_prev = np.concatenate([[0.0], tf[:-1]])
            for k in range(len(fine)):
                lvtab[r, k] = np.asarray(local_vols[r](xs, t_prev[k]), dtype=float) if dtr[k] > 0 else 0.0
        lx0, ldrift = np.log(x0), rate - div
    else:
        fine = grid
        dtf = mc_paths.time_increments(grid)
        gidx = np.arange(n, dtype=np.int64)
        ldt = lscale = np.zeros((R, 1))
        lvtab = np.zeros((R, 1, 2), dtype=dtype)
        lx0, ldrift = np.zeros(R), np.zeros(R)
    ev = ko_m.any(axis=0) | (ki_m > 0.5) | (ser.get("cp_m", zeros) > 0.5) | (ser.get("fx_m", zeros) > 0.5)
    ev[np.arange(R), mat] = True  # (R, n): steps where a row reads its level
    lv_lo = float(mc_core.LV_LOGX[0])
    lv_invh = float((len(mc_core.LV_LOGX) - 1) / (mc_core.LV_LOGX[-1] - mc_core.LV_LOGX[0]))

    anti = bool(cfg.antithetic)
    n_base = (cfg.paths + 1) // 2 if anti else cfg.paths
    n_blocks = -(-n_base // BLOCK)
    states = block_states(np.random.SeedSequence(int(cfg.seed)).generate_state(4, np.uint64), n_blocks)
    is32 = dtype == np.float32
    zk, zw, zf = (ZK32, ZW32, ZF32) if is32 else (ZK64, ZW64, ZF64)
    out = np.zeros((n_blocks, R, NSUM))
    base = np.log(x0)[:, None] + mu[:, None] * t_rows
    args = (states, n_base, anti, is32, d(np.sqrt(dtf)), gidx, local,
            d(base), d(sig), d(a_rows), d(lx0), d(ldrift), d(ldt), d(lscale), lvtab, lv_lo, lv_invh,
            mat, ev, d(df), d(df_mat),
            ko_up, ko_hit, d(ko_m), d(ko_l), d(ko_r),
            shape.legs_ki is not None, ki_mode, ki_up, d(ki_m), d(ki_l), d(ki_lvl), d(s.get("knocked_in", np.zeros(R))),
            cp_mode, d(ser.get("cp_m", zeros)), d(ser.get("cp_b", zeros)), d(ser.get("cp_a", zeros)),
            d(s.get("unpaid", np.zeros(R))),
            avg_mode, d(ser.get("fx_m", zeros)), d(s.get("past_sum", np.zeros(R))),
            d(s.get("past_logsum", np.zeros(R))), d(s.get("n_fix", np.ones(R))),
            *leg, *kil, use_ctrl, zk, zw.astype(dtype), zf, out)
    t_setup = time.perf_counter() - t0
    prev = numba.get_num_threads()
    if threads:
        numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    try:
        t1 = time.perf_counter()
        compiled = len(_kernel.signatures)
        _kernel(*args)
        t_kernel = time.perf_counter() - t1
        new_sig = len(_kernel.signatures) > compiled
        READY.add(str(np.dtype(dtype)))
    finally:
        numba.set_num_threads(prev)
    tot = out.sum(axis=0)  # (R, NSUM), block order: independent of the thread count
    acc = mc_paths.Accumulator(R, 1 if use_ctrl else 0)
    acc.n = n_base
    acc.s_y, acc.s_yy = tot[:, 0].copy(), tot[:, 1].copy()
    if use_ctrl:
        acc.s_x, acc.s_xx, acc.s_xy = tot[:, 2:3].copy(), tot[:, 3:4, None].copy(), tot[:, 4:5].copy()
    cm = control_means(terms, rows, grid) if use_ctrl else None
    price, stderr = acc.result(cm)
    diag = mc_paths.describe(np, cfg, len(fine))
    diag.update(rows=R, contracts=len(terms), kernel="fused", threads=int(threads or numba.get_num_threads()),
                blocks=n_blocks, setup_s=round(t_setup, 6), kernel_s=round(t_kernel, 6), jit_cache=CACHE,
                compiled_now=bool(new_sig), elapsed_s=time.perf_counter() - t0)
    return price, stderr, diag


def warm_up(dtypes: Sequence[str] = ("float64", "float32")) -> dict:
    """Compile (or load from the disk cache) the kernel for ``dtypes``, flat and local vol; seconds per dtype."""
    if NUMBA_ERROR:
        return {"error": NUMBA_ERROR}
    from otcdesk.pricing_engine import mc_blocks  # noqa: PLC0415
    from otcdesk.pricing_engine.blocks import Leg, ResolvedSchedule  # noqa: PLC0415
    import datetime as dt  # noqa: PLC0415

    d = dt.date(2026, 1, 5)
    rs = ResolvedSchedule(structure="vanilla", valuation_date=d, start_date=d, maturity_date=d + dt.timedelta(30),
                          T=30 / 365, spot_x=1.0, initial_price=1.0, legs=(Leg("call", 1.0, 1.0),))
    shape = mc_blocks.shape_of(rs)
    out = {}
    for dtype in dtypes:
        t0 = time.perf_counter()
        cfg = EngineOptions(paths=64, dtype=dtype, greeks=False)
        terms = [mc_blocks.to_terms(rs, cfg)]
        run_batch(terms, [mc_core.Row(0, 1.0, 0.2, 0.0, 0.0)], shape, cfg)
        run_batch(terms, [mc_core.Row(0, 1.0, 0.2, 0.0, 0.0)], shape, cfg, local_vols=[lambda x, t: 0.2 + 0 * x])
        out[dtype] = round(time.perf_counter() - t0, 3)
        READY.add(str(np.dtype(dtype)))
    out["cache"] = CACHE
    return out


def ready(dtype: str) -> bool:
    """Whether the kernel for ``dtype`` is compiled in this process (a first call would not wait for numba)."""
    return str(np.dtype(dtype)) in READY
