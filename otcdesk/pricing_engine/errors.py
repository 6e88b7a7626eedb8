"""Errors raised by the pricing engine (pure library: no I/O)."""
from __future__ import annotations


class PricingError(ValueError):
    """Bad input or an impossible request, with a human-readable reason.

    `str(exc)` is the reason a trader can read; `.detail` carries the offending
    field/value (JSON-serialisable) so callers can show or log it.
    """

    def __init__(self, message: str, detail=None):
        super().__init__(message)
        self.message = message
        self.detail = detail


class UnsupportedProductError(PricingError):
    """The chosen engine cannot price this product (e.g. arithmetic Asian with `analytic`)."""


class NoSolutionError(PricingError):
    """A solver found no root in its search range."""


class UnsupportedMarketError(PricingError):
    """The market carries an input the engine cannot use (e.g. a vol surface before surfaces exist)."""
