"""Engine registry, the engine interface and the one engine configuration (`EngineOptions`).

An engine is an object with

    name: str                                   # "analytic" | "fd" | "mc"
    market_inputs: frozenset[str]               # the model inputs it can use (models.FLAT_INPUTS, SURFACE_INPUTS)
    surface_use: str                            # with a vol surface: "smile" (exact on the terminal smile),
                                                # "local_vol" (Dupire) or "implied_at_strike"
    supports(product: ProductSpec) -> bool      # cheap, static: can it price this structure?
    price(product, model, valuation_date, options: EngineOptions) -> PricingResult

`price` refuses a model carrying an input outside `market_inputs` (`refuse_unusable_inputs`), and returns
the holder's value per unit notional *before* the `side` sign flip (api applies it), with Greeks in
CONTRACTS.md units when `options.greeks` is true. Engines resolve the product with
`product.resolve(valuation_date, model)` (a `ResolvedSchedule` of plain floats, see blocks.py).

Engines register with `register_engine(engine)`; modules named `analytic_*`, `fd_*` and `mc_*` in this
package are imported on first use, so a new engine module only has to call `register_engine` at import.
`select_engine(product, "auto")` picks analytic when it supports the product, else FD, else MC. Given the model,
`auto` also skips engines that cannot use its inputs and, on a vol surface, the closed forms that would only read
one implied vol (`surface_use == "implied_at_strike"`: barriers, geometric Asians), so a path-dependent product
on a surface goes to the local-vol FD or MC engine; asked for by name, those closed forms price at the implied vol
at the strike and say so (`diagnostics.vol_model`). A Heston model (`market.heston`) carries the input `heston`,
which only the mc engine declares: `auto` picks mc, analytic and fd refuse it by name.
"""
from __future__ import annotations

import importlib
import pkgutil
import time
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Protocol

from otcdesk.pricing_engine.errors import PricingError, UnsupportedMarketError, UnsupportedProductError
from otcdesk.pricing_engine.greeks import bump_greeks
from otcdesk.pricing_engine.models import FLAT_INPUTS, NOT_IMPLEMENTED
from otcdesk.pricing_engine.results import PricingResult

ENGINE_ORDER = ("analytic", "fd", "mc")
SURFACE_INPUTS = FLAT_INPUTS | {"vol_surface"}


@dataclass(frozen=True)
class EngineOptions:
    """The one engine configuration: CONTRACTS.md `engine_options` with their defaults, for every engine.

    Every engine reads what it needs from it: `greeks` all; FD `grid_points`, `time_steps`, `ladder`;
    MC the rest (`paths` .. `rate_bump`, with the paths drawn as in `mc_paths`). Unknown keys are kept
    in `extra`. `dtype` defaults to float64: `otcdesk price` has always priced Monte Carlo in float64
    (the QuantLib and 3-standard-error checks and the CLI numbers rest on it, and float32 rounding,
    1e-7 relative, shows in bump-and-revalue Greeks); float32 is a choice for throughput where the MC
    error dwarfs it (book revaluation, `benchmarks/bench_mc.py`).
    """

    greeks: bool = True
    grid_points: int = 800
    time_steps: int | None = None  # FD: None → daily steps plus observation dates
    ladder: tuple[float, ...] | None = None  # FD spot ladder as x = spot/initial (e.g. 0.8..1.2)
    paths: int = 100_000
    steps_per_year: int = 252  # MC grid for continuous monitoring
    seed: int = 7
    dtype: str = "float64"
    antithetic: bool = True
    sobol: bool = False
    backend: str = "numpy"  # MC array backend, chosen by the app ("numpy" | "cupy" | "auto")
    mc_kernel: str = "auto"  # MC: "fused" (numba, mc_fused), "numpy" (the vectorised reference) or "auto" (fused if usable)
    replicates: int = 32  # Sobol: independent scramblings for the standard error
    chunk_elems: int = 8_000_000  # MC: rows * steps * paths held in memory at once
    spot_bump: float = 0.01  # MC: relative bump of x for delta
    gamma_bump: float = 0.03  # MC: relative bump of x for gamma (wider: knock-in/out jumps make 1% too noisy)
    vol_bump: float = 0.01
    rate_bump: float = 0.001
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        for k in ("grid_points", "paths", "steps_per_year", "replicates", "chunk_elems"):
            if getattr(self, k) <= 0:
                raise PricingError(f"engine_options.{k} must be positive", {"field": f"engine_options.{k}"})
        if self.grid_points < 50:
            raise PricingError("engine_options.grid_points must be at least 50", {"field": "engine_options.grid_points"})
        if self.paths < 2:
            raise PricingError("engine_options.paths must be at least 2", {"field": "engine_options.paths"})
        if self.mc_kernel not in ("auto", "fused", "numpy"):
            raise PricingError(f"engine_options.mc_kernel must be auto, fused or numpy, got {self.mc_kernel!r}",
                               {"field": "engine_options.mc_kernel", "value": self.mc_kernel})
        if self.dtype not in ("float32", "float64"):
            raise PricingError(f"engine_options.dtype must be float32 or float64, got {self.dtype!r}",
                               {"field": "engine_options.dtype", "value": self.dtype})

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "EngineOptions":
        """Options from an `engine_options` object (numbers coerced, None meaning the default)."""
        d = dict(d or {})
        types = {f.name: f.type for f in fields(cls)}
        kw, extra = {}, {}
        for k, v in d.items():
            if k not in types or k == "extra":
                extra[k] = v
            elif v is not None:
                kw[k] = v
        try:
            for k, v in kw.items():
                if types[k] in ("int", "int | None"):
                    kw[k] = int(v)
                elif types[k] == "float":
                    kw[k] = float(v)
            if "ladder" in kw:
                kw["ladder"] = tuple(float(x) for x in kw["ladder"])
        except (TypeError, ValueError):
            raise PricingError("engine_options has a non-numeric value", {"field": "engine_options", "value": d}) from None
        return cls(**kw, extra=extra)


class Engine(Protocol):
    name: str
    market_inputs: frozenset[str]  # the model inputs it can use (see `refuse_unusable_inputs`)

    def supports(self, product) -> bool: ...

    def price(self, product, model, valuation_date, options: EngineOptions): ...


def refuse_unusable_inputs(user: str, usable: frozenset[str], model) -> None:
    """Raise UnsupportedMarketError when `model` carries a market input that `user` cannot use.

    Every engine calls it before pricing (and the book before revaluing): an input it would ignore,
    such as a `vol_surface` while every engine prices with the flat vol, is refused, never ignored.
    """
    unusable = sorted(model.inputs() - usable)
    if not unusable and model.vol_surface is not None and getattr(model, "surface", None) is None:
        raise UnsupportedMarketError(f"{user} cannot use market.vol_surface before it is fitted against a valuation "
                                     "date (MarketSpec.to_model(valuation_date))",
                                     {"field": "market.vol_surface", "engine": user})
    if unusable:
        k = unusable[0]
        raise UnsupportedMarketError(f"{user} cannot use market.{k}: {NOT_IMPLEMENTED.get(k, 'not an input it knows')}",
                                     {"field": f"market.{k}", "engine": user})


def reference_levels(product, model, valuation_date) -> dict:
    """The levels whose vols describe a product on a surface: `strike` (first call/put/digital leg, knocked-in legs
    when the product has no other), `knock_in`, as x = level / initial price, and `T` (years to maturity)."""
    res = product.resolve(valuation_date, model)
    out: dict = {"T": res.T, "initial_price": res.initial_price}
    for legs in (res.legs, res.legs_ki or ()):
        k = next((leg.strike for leg in legs if leg.kind in ("call", "put", "digital_call", "digital_put")), None)
        if k is not None:
            out["strike"] = k
            break
    if res.knock_in is not None:
        out["knock_in"] = res.knock_in.level
    return out


def surface_time(model, valuation_date) -> float:
    """Years from the surface's valuation date to `valuation_date` (a later date for theta), 0 without one."""
    surf = getattr(model, "surface", None)
    if surf is None:
        return 0.0
    from otcdesk.pricing_engine.schedule import to_date
    return (to_date(valuation_date, "valuation_date") - surf.valuation_date).days / 365.0


def vol_used(product, model, valuation_date, vol_model: str) -> dict:
    """What volatility priced the product: `{"vol_model", "surface", "vol", "vol_at_strike", "vol_at_knock_in",
    "strike_pct", "knock_in_pct", "expiry_years"}` (vols None where the product has no such level; under Heston
    all None, with `heston` (the parameters) and `feller` (whether 2κθ ≥ ξ²))."""
    surf = getattr(model, "surface", None)
    if "heston" in model.inputs():  # no one vol priced it: the variance is a process
        return {"vol_model": "heston", "surface": None, "vol": None, "vol_at_strike": None, "vol_at_knock_in": None,
                "heston": model.params(), "feller": model.feller()["satisfied"]}
    if surf is None:
        return {"vol_model": "flat", "surface": None, "vol": model.vol, "vol_at_strike": model.vol,
                "vol_at_knock_in": model.vol if _has_ki(product, model, valuation_date) else None}
    lv = reference_levels(product, model, valuation_date)
    T = lv["T"] + surface_time(model, valuation_date)
    s0 = lv["initial_price"]
    out = {"vol_model": vol_model, "surface": surf.name, "vol": None, "expiry_years": T, "shift": surf.shift,
           "strike_pct": None, "vol_at_strike": None, "knock_in_pct": None, "vol_at_knock_in": None}
    if "strike" in lv:
        out["strike_pct"] = 100 * lv["strike"]
        out["vol_at_strike"] = surf.implied_vol(lv["strike"] * s0, T)
    if "knock_in" in lv:
        out["knock_in_pct"] = 100 * lv["knock_in"]
        out["vol_at_knock_in"] = surf.implied_vol(lv["knock_in"] * s0, T)
    out["vol"] = out["vol_at_strike"] if out["vol_at_strike"] is not None else surf.implied_vol(s0, T)
    return out


def _has_ki(product, model, valuation_date) -> bool:
    try:
        return product.resolve(valuation_date, model).knock_in is not None
    except PricingError:
        return False


class ClosedFormEngine:
    """Base of the analytic engines: `value` is a formula; Greeks by bump-and-revalue on it.

    On a vol surface an engine with `surface_use == "implied_at_strike"` prices on a flat model at the surface's
    implied vol at the product's strike and maturity (Greeks on that flat model: vega is a parallel shift);
    one with `surface_use == "smile"` reads the surface itself in `value`."""

    name = "analytic"
    market_inputs = SURFACE_INPUTS
    surface_use = "implied_at_strike"

    def value(self, product, model, valuation_date) -> float:
        raise NotImplementedError

    def method(self, product) -> str:
        raise NotImplementedError

    def price(self, product, model, valuation_date, options: EngineOptions):
        refuse_unusable_inputs(f"the {self.name} engine", self.market_inputs, model)
        t0 = time.perf_counter()
        vol_model = "flat"
        if model.surface is not None:
            vol_model = self.surface_use
            if self.surface_use == "implied_at_strike":
                used = vol_used(product, model, valuation_date, vol_model)
                model = model.flat(used["vol"])
        p = self.value(product, model, valuation_date)
        greeks = bump_greeks(self.value, product, model, valuation_date, p) if options.greeks else {}
        return PricingResult(p, None, greeks, self.name, {"paths": None, "steps": None,
                                                           "elapsed_s": time.perf_counter() - t0,
                                                           "method": self.method(product), "vol_model": vol_model})


_REGISTRY: dict[str, list[Engine]] = {}
LOAD_ERRORS: dict[str, str] = {}  # engine module → import error (one broken module must not break the others)
_loaded = False


def register_engine(engine: Engine) -> Engine:
    """Add an engine under `engine.name` (later registrations are tried first)."""
    lst = _REGISTRY.setdefault(engine.name, [])
    if all(type(e) is not type(engine) for e in lst):
        lst.insert(0, engine)
    return engine


def _load_engine_modules() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    from otcdesk import pricing_engine
    for info in sorted(pkgutil.iter_modules(pricing_engine.__path__), key=lambda m: m.name):
        if info.name.startswith(("analytic_", "fd_", "mc_")):
            try:
                importlib.import_module(f"{pricing_engine.__name__}.{info.name}")
            except Exception as exc:  # noqa: BLE001 - reported through LOAD_ERRORS / select_engine
                LOAD_ERRORS[info.name] = f"{type(exc).__name__}: {exc}"


def _fits(engine, model) -> bool:
    """Whether `auto` may pick `engine` for `model` (see the module docstring)."""
    if model is None:
        return True
    if model.inputs() - engine.market_inputs:
        return False
    return getattr(model, "surface", None) is None or getattr(engine, "surface_use", "") != "implied_at_strike"


def select_engine(product, kind: str = "auto", model=None) -> Engine:
    """The engine that prices `product` (on `model`, when given): `kind` = auto | analytic | fd | mc.
    Raises PricingError."""
    _load_engine_modules()
    kind = (kind or "auto").lower()
    if kind == "auto":
        for k in ENGINE_ORDER:
            for e in _REGISTRY.get(k, []):
                if e.supports(product) and _fits(e, model):
                    return e
        for k in ENGINE_ORDER:  # nothing fits the model: the first that supports the product says why
            for e in _REGISTRY.get(k, []):
                if e.supports(product):
                    return e
        raise UnsupportedProductError(f"no engine can price structure {product.structure!r}",
                                      {"structure": product.structure})
    if kind not in ENGINE_ORDER:
        raise PricingError(f"engine must be auto, analytic, fd or mc, got {kind!r}", {"field": "engine", "value": kind})
    for e in _REGISTRY.get(kind, []):
        if e.supports(product):
            return e
    raise UnsupportedProductError(
        f"the {kind} engine does not support this {product.structure} product"
        + ("" if _REGISTRY.get(kind) else f" (no {kind} engine is installed)"),
        {"structure": product.structure, "engine": kind, "load_errors": dict(LOAD_ERRORS)} if LOAD_ERRORS else
        {"structure": product.structure, "engine": kind})
