"""The one registry of structures: built-in and template-declared structures resolve through it alike,
and `products` / `templates` import without a cycle."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from otcdesk.pricing_engine import products, registry
from otcdesk.pricing_engine.errors import PricingError
from otcdesk.pricing_engine.products import BUILTIN_SPECS, SnowballSpec, product_from_dict
from otcdesk.pricing_engine.templates import Template, TemplateSpec, register_template

ROOT = Path(__file__).resolve().parents[3]


def test_builtin_and_template_structures_resolve_through_the_same_registry():
    builtin, declared = registry.get_structure("snowball"), registry.get_structure("stepdown_snowball")
    assert builtin.builtin and builtin.spec is SnowballSpec
    assert isinstance(declared, Template) and not declared.builtin
    terms = {"ko_pct": 103, "ki_pct": 75, "coupon_pct": 15, "tenor": "12M"}
    assert isinstance(product_from_dict({"structure": "snowball", **terms}), SnowballSpec)
    spec = product_from_dict({"structure": "stepdown_snowball", **terms})
    assert isinstance(spec, TemplateSpec) and spec.structure == "stepdown_snowball" and spec.ko_pct == 103
    listed = registry.structures()
    assert list(listed)[:len(BUILTIN_SPECS)] == list(BUILTIN_SPECS)  # built-ins first
    assert {"snowball", "stepdown_snowball", "ki_put", "one_touch"} <= set(listed)
    assert listed["snowball"] == builtin.description and listed["stepdown_snowball"] == declared.description


def test_a_structure_declared_at_run_time_joins_the_registry():
    assert registry.get_structure("capped_call_registry_test") is None
    with pytest.raises(PricingError, match="unknown structure"):
        product_from_dict({"structure": "capped_call_registry_test", "tenor": "6M"})
    t = register_template({"structure": "capped_call_registry_test", "description": "call spread as blocks",
                           "params": {"cap_pct": {"default": 120}},
                           "blocks": [{"block": "payoff", "legs": [{"kind": "call", "strike_pct": 100, "weight": 1},
                                                                   {"kind": "call", "strike_pct": "$cap_pct",
                                                                    "weight": -1}]}]})
    assert registry.get_structure("capped_call_registry_test") is t
    assert product_from_dict({"structure": "capped_call_registry_test", "tenor": "6M"}).cap_pct == 120.0
    assert registry.structures()["capped_call_registry_test"] == "call spread as blocks"


def test_a_template_cannot_take_over_a_builtin_structure():
    with pytest.raises(PricingError, match="built-in structure"):
        register_template({"structure": "vanilla", "params": {},
                           "blocks": [{"block": "payoff", "legs": [{"kind": "cash", "weight": 1}]}]})
    assert registry.get_structure("vanilla").spec is BUILTIN_SPECS["vanilla"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_products_and_the_registry_know_nothing_about_templates():
    for module in (products, registry):
        names = _imports(Path(module.__file__))
        assert not any("templates" in n for n in names), (module.__name__, names)
    assert not any("products" in n for n in _imports(Path(registry.__file__)))


@pytest.mark.parametrize("module", ["otcdesk.pricing_engine.templates", "otcdesk.pricing_engine.products",
                                    "otcdesk.pricing_engine.registry"])
def test_each_module_imports_alone_in_a_fresh_interpreter(module):
    code = (f"import importlib; importlib.import_module({module!r}); "
            "from otcdesk.pricing_engine.products import product_from_dict; "
            "print(product_from_dict({'structure': 'ki_put', 'ki_pct': 80, 'tenor': '1M'}).structure)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "ki_put"
