"""otcdesk pricing engine: products as data, market and model, analytic / FD / MC engines, Greeks, solvers, book.

Pure library: no I/O beyond its own template files, no environment variables, no imports from
app/agents/bots/workflows. What lives where:

- `api`            `price(doc) -> doc`, the `otcdesk price` contract (CONTRACTS.md); `price_product`;
                   `solve_field`, the one rule for what a request solves for (also the desk's coupon quotes)
- `registry`       the one registry of structures, built-in and template-declared (`get_structure`, `structures`)
- `products`       frozen, validated `*Spec`s of the built-in structures, registered at import;
                   `product_from_dict`; schedule helpers shared with templates
- `templates`      structures declared as JSON from building blocks (`templates/*.json`, `register_template`);
                   imported below, so the registry is complete whichever module is imported first
- `blocks`         `ResolvedSchedule`: what a spec resolves to for the engines (legs, knock-outs, knock-in, coupons)
- `schedule`       exchange calendars, tenors, observation dates, ACT/365
- `models`         `MarketSpec` (the `market` object: inputs vs informational keys), `GBMModel`
- `heston`         `HestonModel` (`market.heston`) and its QE Monte Carlo, priced by the `mc` engine only
- `engines`        the engine interface and registry (`select_engine`), `EngineOptions` (the one engine
                   configuration, MC included), `refuse_unusable_inputs` (a market input an engine cannot use)
- `analytic_vanilla`, `analytic_barrier`, `analytic_asian`   closed-form engines (`analytic`)
- `fd_solver`, `fd_engine`                                   Crank–Nicolson engine (`fd`)
- `mc_paths`, `mc_core`, `mc_blocks`, `mc_engine`            Monte Carlo engine (`mc`): paths, the batched
                   harness and the Greek scenario rows (`mc_core.GREEK_SCENARIOS`), the payoff kernel, the engine
- `backend`        NumPy / CuPy array module (`xp`)
- `greeks`         bump-and-revalue Greeks for closed forms and FD, `freeze`
- `solvers`        coupon / participation / strike / vol that gives a target price
- `book`           book revaluation: Greeks and the spot x vol grid in batches (in-process or Ray)
- `results`, `errors`   `PricingResult` (what every engine returns), `PricingError` and its kinds
"""
import otcdesk.pricing_engine.templates  # noqa: F401  registers the template-declared structures
from otcdesk.pricing_engine.errors import PricingError  # noqa: F401
from otcdesk.pricing_engine.results import PricingResult  # noqa: F401
