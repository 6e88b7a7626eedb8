"""otcdesk pricing engine: products as data, GBM model, analytic / FD / MC engines, Greeks, solvers.

Pure library: no I/O, no environment variables, no imports from app/agents/bots/workflows.

Entry points:
- `pricing_engine.api.price(doc) -> doc`            the `otcdesk price` contract (CONTRACTS.md)
- `pricing_engine.products.product_from_dict(d)`     validated, frozen `*Spec` with `.to_dict()`, `.resolve()`
- `pricing_engine.engines.register_engine/select_engine`  the engine registry (analytic → fd → mc)
- `pricing_engine.results.PricingResult`, `pricing_engine.errors.PricingError`
"""
from otcdesk.pricing_engine.errors import PricingError  # noqa: F401
from otcdesk.pricing_engine.results import PricingResult  # noqa: F401
