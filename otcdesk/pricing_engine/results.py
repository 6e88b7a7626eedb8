"""`PricingResult`: what every engine returns (analytic, FD and MC alike)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

GREEK_NAMES = ("delta", "gamma", "vega", "theta", "rho")


@dataclass(frozen=True)
class PricingResult:
    """Value of a product to its holder, per unit of notional (see `pricing_engine.products`).

    price       -- value per unit notional (fraction: 0.0941 = 9.41%)
    stderr      -- Monte Carlo standard error of `price`; None for analytic/FD
    greeks      -- {delta, gamma, vega, theta, rho} per unit notional, in CONTRACTS.md units:
                   delta = dV/dx, gamma = d2V/dx2 with x = spot/initial_price,
                   vega per 0.01 vol, theta per calendar day, rho per 0.01 rate. May be empty
                   when the caller asked for no Greeks.
    engine      -- "analytic" | "fd" | "mc"
    diagnostics -- free-form: paths, steps, elapsed_s, grid_points, ladder, ...
    """

    price: float
    stderr: float | None = None
    greeks: Mapping[str, float] = field(default_factory=dict)
    engine: str = ""
    diagnostics: Mapping[str, Any] = field(default_factory=dict)

    def scaled(self, sign: float) -> "PricingResult":
        """The same result with price, Greeks and any spot ladder multiplied by `sign` (for `side`)."""
        diag = dict(self.diagnostics)
        if isinstance(diag.get("ladder"), list):
            diag["ladder"] = [{**row, "price": sign * row["price"]}
                              if isinstance(row, dict) and isinstance(row.get("price"), float) else row
                              for row in diag["ladder"]]
        return replace(self, price=sign * self.price, greeks={k: sign * v for k, v in self.greeks.items()},
                       diagnostics=diag)
