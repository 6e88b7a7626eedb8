"""The one registry of product structures: built-in and template-declared alike.

An entry is anything with `structure` (the discriminator of the CONTRACTS.md `product` object),
`description`, `builtin` and `spec_from_dict(d) -> ProductSpec`. `products` registers each built-in
`*Spec` class; `templates` registers every structure declared in `pricing_engine/templates/*.json` and
any declared at run time. Both read it through `get_structure`, and `products.product_from_dict`
resolves every `structure` here. This module imports neither of them.
"""
from __future__ import annotations

from typing import Any, Mapping, Protocol

from otcdesk.pricing_engine.errors import PricingError


class Structure(Protocol):
    """A registry entry: how one `structure` turns a product object into a validated spec."""

    structure: str
    description: str
    builtin: bool

    def spec_from_dict(self, d: Mapping) -> Any: ...


_STRUCTURES: dict[str, Structure] = {}


def register_structure(entry: Structure) -> Structure:
    """Add (or, for a declared structure, replace) `entry`; a built-in name cannot be taken over."""
    current = _STRUCTURES.get(entry.structure)
    if current is not None and current.builtin and current is not entry:
        raise PricingError(f"{entry.structure} is a built-in structure and cannot be redeclared",
                           {"structure": entry.structure})
    _STRUCTURES[entry.structure] = entry
    return entry


def get_structure(name: str) -> Structure | None:
    """The entry for structure `name`, or None."""
    return _STRUCTURES.get(name)


def structures() -> dict[str, str]:
    """Every structure that can be priced, built-in first, with a one-line description."""
    entries = sorted(_STRUCTURES.values(), key=lambda e: not e.builtin)
    return {e.structure: e.description or f"template {e.structure}" for e in entries}
