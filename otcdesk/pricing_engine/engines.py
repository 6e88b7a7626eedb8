"""Engine registry and the engine interface.

An engine is an object with

    name: str                                   # "analytic" | "fd" | "mc"
    supports(product: ProductSpec) -> bool      # cheap, static: can it price this structure?
    price(product, model, valuation_date, options: EngineOptions) -> PricingResult

`price` returns the holder's value per unit notional *before* the `side` sign flip (api.price applies
it), with Greeks in CONTRACTS.md units when `options.greeks` is true. Engines resolve the product with
`product.resolve(valuation_date, model)` (a `ResolvedSchedule` of plain floats, see blocks.py).

Engines register with `register_engine(engine)`; modules named `analytic_*`, `fd_*` and `mc_*` in this
package are imported on first use, so a new engine module only has to call `register_engine` at import.
`select_engine(product, "auto")` picks analytic when it supports the product, else FD, else MC.
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Protocol

from otcdesk.pricing_engine.errors import PricingError, UnsupportedProductError

ENGINE_ORDER = ("analytic", "fd", "mc")


@dataclass(frozen=True)
class EngineOptions:
    """The CONTRACTS.md `engine_options`, with defaults; unknown keys are kept in `extra`."""

    paths: int = 100_000
    steps_per_year: int = 252
    seed: int = 7
    grid_points: int = 800
    time_steps: int | None = None  # FD: None → daily steps plus observation dates
    greeks: bool = True
    backend: str = "numpy"  # MC array backend, chosen by the app ("numpy" | "cupy")
    dtype: str = "float64"
    antithetic: bool = True
    sobol: bool = False
    ladder: tuple[float, ...] | None = None  # FD spot ladder as x = spot/initial (e.g. 0.8..1.2)
    extra: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping | None) -> "EngineOptions":
        d = dict(d or {})
        known = {f.name for f in fields(cls)} - {"extra"}
        kw, extra = {}, {}
        for k, v in d.items():
            (kw if k in known else extra)[k] = v
        try:
            for k in ("paths", "steps_per_year", "seed", "grid_points"):
                if k in kw and kw[k] is not None:
                    kw[k] = int(kw[k])
            if kw.get("time_steps") is not None:
                kw["time_steps"] = int(kw["time_steps"])
            if kw.get("ladder") is not None:
                kw["ladder"] = tuple(float(x) for x in kw["ladder"])
        except (TypeError, ValueError):
            raise PricingError("engine_options has a non-numeric value", {"field": "engine_options", "value": d}) from None
        for k in ("paths", "steps_per_year", "grid_points"):
            if k in kw and kw[k] is not None and kw[k] <= 0:
                raise PricingError(f"engine_options.{k} must be positive", {"field": f"engine_options.{k}"})
        if kw.get("grid_points") is not None and kw["grid_points"] < 50:
            raise PricingError("engine_options.grid_points must be at least 50", {"field": "engine_options.grid_points"})
        return cls(**kw, extra=extra)


class Engine(Protocol):
    name: str

    def supports(self, product) -> bool: ...

    def price(self, product, model, valuation_date, options: EngineOptions): ...


class ClosedFormEngine:
    """Base of the analytic engines: `value` is a formula; Greeks by bump-and-revalue on it."""

    name = "analytic"

    def value(self, product, model, valuation_date) -> float:
        raise NotImplementedError

    def method(self, product) -> str:
        raise NotImplementedError

    def price(self, product, model, valuation_date, options: EngineOptions):
        import time

        from otcdesk.pricing_engine.greeks import bump_greeks
        from otcdesk.pricing_engine.results import PricingResult

        t0 = time.perf_counter()
        p = self.value(product, model, valuation_date)
        greeks = bump_greeks(self.value, product, model, valuation_date, p) if options.greeks else {}
        return PricingResult(p, None, greeks, self.name, {"paths": None, "steps": None,
                                                           "elapsed_s": time.perf_counter() - t0,
                                                           "method": self.method(product)})


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


def engines(kind: str | None = None) -> list[Engine]:
    _load_engine_modules()
    if kind is None:
        return [e for k in _REGISTRY for e in _REGISTRY[k]]
    return list(_REGISTRY.get(kind, []))


def select_engine(product, kind: str = "auto") -> Engine:
    """The engine that prices `product`: `kind` = auto | analytic | fd | mc. Raises PricingError."""
    _load_engine_modules()
    kind = (kind or "auto").lower()
    if kind == "auto":
        for k in ENGINE_ORDER:
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
