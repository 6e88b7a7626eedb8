"""The full check of a template document from outside the code (a file in the data directory, an upload), and the
price of its defaults with every engine that supports its blocks (`otcdesk template check`).

`check_template(doc, taken_names=..., replaceable=...)` → a `Template` (not declared), or `TemplateError` whose
`fields` say what is wrong, field by field:
- `structure`: a lower-case identifier (it is also the parser's value and a margin-table key), not a structure of
  the registry unless it is in `replaceable` (a new version of a template uploaded before);
- `names`: 1–20 non-empty words of at most 24 characters, none twice, none in `taken_names` for another structure
  (the caller knows the parser's vocabulary; this package does not);
- `params.<name>`: a lower-case identifier that is no field of every product (`tenor`, `notional`...), settings among
  `default`, `required`, `min`, `max`, `type`; exactly one of `default` and `required: true`; `type` float (default),
  int, bool or str; numeric `min` ≤ `max`; a default of its type, within `min`/`max`;
- `constraints[i]`: `{"less" | "less_equal": [param, param]}` over declared parameters, holding for the defaults;
- `blocks`: the registered blocks with their keys and leg kinds (`Template.from_dict`), `$` references declared;
- sizes: at most MAX_PARAMS parameters, MAX_BLOCKS blocks, MAX_LEGS legs a block, MAX_CONSTRAINTS constraints.
Nothing in the document is evaluated.
"""
from __future__ import annotations

import math
import re
from typing import Any, Mapping

from otcdesk.pricing_engine.errors import PricingError, UnsupportedProductError
from otcdesk.pricing_engine.products import ProductSpec, field_types
from otcdesk.pricing_engine.registry import get_structure
from otcdesk.pricing_engine.templates import Template

TOP_KEYS = {"structure", "description", "names", "params", "constraints", "blocks"}
PARAM_KEYS = {"default", "required", "min", "max", "type"}
PARAM_TYPES = ("float", "int", "bool", "str")
CONSTRAINT_OPS = ("less", "less_equal")
STRUCTURE_RX = re.compile(r"[a-z][a-z0-9_]{1,47}")
PARAM_RX = re.compile(r"[a-z][a-z0-9_]{0,47}")
RESERVED_PARAMS = set(field_types(ProductSpec)) | {"structure", "template", "template_version", "params",
                                                   "knocked_in", "missing", "assumed"}
MAX_NAMES, MAX_NAME_CHARS, MAX_DESCRIPTION = 20, 24, 2000
MAX_PARAMS, MAX_BLOCKS, MAX_LEGS, MAX_CONSTRAINTS = 40, 20, 20, 20
CHECK_TENOR = "12M"  # the tenor `price_defaults` prices the defaults at


class TemplateError(PricingError):
    """A template refused; `fields` maps each offending field to its reason."""

    def __init__(self, message: str, fields: Mapping[str, str]):
        super().__init__(message, {"fields": dict(fields)})
        self.fields = dict(fields)


def name_key(name: str) -> str:
    """How names are compared: case, spaces, hyphens and underscores ignored (as the parser reads words)."""
    return re.sub(r"[\s_-]+", "", name.lower())


def check_template(doc: Any, *, taken_names: Mapping[str, str] | None = None,
                   replaceable: set[str] | frozenset[str] = frozenset()) -> Template:
    """The validated template of `doc` (see the module docstring); raises TemplateError."""
    if not isinstance(doc, Mapping):
        raise TemplateError("a template must be a JSON object", {"template": "must be a JSON object"})
    errors: dict[str, str] = {}
    for k in sorted(set(doc) - TOP_KEYS):
        errors[k] = "is not a field of a template"
    structure = doc.get("structure")
    if not isinstance(structure, str) or not STRUCTURE_RX.fullmatch(structure):
        errors["structure"] = "must be a lower-case identifier of 2 to 48 characters (a-z, 0-9, _)"
    elif get_structure(structure) is not None and structure not in replaceable:
        errors["structure"] = f"{structure} is a built-in structure; choose another name"
    desc = doc.get("description", "")
    if not isinstance(desc, str) or len(desc) > MAX_DESCRIPTION:
        errors["description"] = f"must be text of at most {MAX_DESCRIPTION} characters"
    _check_names(doc.get("names"), structure, taken_names or {}, errors)
    params = doc.get("params", {})
    defaults: dict[str, Any] = {}
    if not isinstance(params, Mapping):
        errors["params"] = "must be an object {name: {default | required, min, max}}"
        params = {}
    elif len(params) > MAX_PARAMS:
        errors["params"] = f"at most {MAX_PARAMS} parameters"
    else:
        for p, spec in params.items():
            _check_param(p, spec, defaults, errors)
    _check_constraints(doc.get("constraints", []), params, defaults, errors)
    _check_sizes(doc.get("blocks"), errors)
    if errors:
        raise TemplateError(_summary(errors), errors)
    try:
        return Template.from_dict({**doc, "names": [n.strip() for n in doc["names"]]})
    except PricingError as exc:
        raise TemplateError(str(exc), {"blocks": str(exc).removeprefix("template: ")}) from None


def _summary(errors: Mapping[str, str]) -> str:
    return "template refused: " + "; ".join(f"{k} {v}" for k, v in errors.items())


def _check_names(names, structure, taken: Mapping[str, str], errors: dict) -> None:
    if not isinstance(names, list) or not names:
        errors["names"] = "must be a non-empty list of the structure's names (中文名, aliases)"
        return
    if len(names) > MAX_NAMES:
        errors["names"] = f"at most {MAX_NAMES} names"
        return
    seen: set[str] = set()
    for n in names:
        if not isinstance(n, str) or not n.strip() or len(n.strip()) > MAX_NAME_CHARS:
            errors["names"] = f"each name must be non-empty text of at most {MAX_NAME_CHARS} characters, got {n!r}"
            return
        key = name_key(n)
        if not key:
            errors["names"] = f"name {n!r} has no letters"
            return
        if key in seen:
            errors["names"] = f"name {n.strip()!r} is given twice"
            return
        seen.add(key)
        owner = taken.get(key)
        if owner is not None and owner != structure:
            errors["names"] = f"name {n.strip()!r} already means {owner}"
            return


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_param(p, spec, defaults: dict, errors: dict) -> None:
    key = f"params.{p}"
    if not isinstance(p, str) or not PARAM_RX.fullmatch(p):
        errors[key] = "a parameter name must be a lower-case identifier"
        return
    if p in RESERVED_PARAMS:
        errors[key] = f"{p} is a field of every product (request, schedule), not a template parameter"
        return
    if not isinstance(spec, Mapping):
        errors[key] = "must be an object {default | required, min, max}"
        return
    unknown = sorted(set(spec) - PARAM_KEYS)
    if unknown:
        errors[key] = f"unknown settings {unknown}; allowed: default, required, min, max, type"
        return
    has_default, required = "default" in spec, spec.get("required", False)
    if not isinstance(required, bool):
        errors[key] = "required must be true or false"
        return
    if has_default == required:
        errors[key] = "needs exactly one of default and required: true"
        return
    typ = spec.get("type", "float")
    if typ not in PARAM_TYPES:
        errors[key] = f"type must be one of {', '.join(PARAM_TYPES)}"
        return
    lo, hi = spec.get("min"), spec.get("max")
    for bound, v in (("min", lo), ("max", hi)):
        if v is not None and (typ not in ("float", "int") or not _number(v)):
            errors[key] = f"{bound} must be a finite number, for a numeric parameter only"
            return
    if lo is not None and hi is not None and lo > hi:
        errors[key] = f"min {lo} is above max {hi}"
        return
    if not has_default:
        return
    d = spec["default"]
    ok = {"float": _number(d), "int": _number(d) and float(d).is_integer(), "bool": isinstance(d, bool),
          "str": isinstance(d, str) and len(d) <= 64}[typ]
    if not ok:
        errors[key] = f"default {d!r} is not a {typ}"
        return
    if lo is not None and d < lo or hi is not None and d > hi:
        errors[key] = f"default {d} is outside [{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
        return
    defaults[p] = d


def _check_constraints(constraints, params: Mapping, defaults: dict, errors: dict) -> None:
    if not isinstance(constraints, list) or len(constraints) > MAX_CONSTRAINTS:
        errors["constraints"] = f"must be a list of at most {MAX_CONSTRAINTS} constraints"
        return
    for i, c in enumerate(constraints):
        key = f"constraints[{i}]"
        if not isinstance(c, Mapping) or len(c) != 1 or next(iter(c)) not in CONSTRAINT_OPS:
            errors[key] = f"must be {{{' | '.join(CONSTRAINT_OPS)}: [param, param]}}"
            continue
        op, pair = next(iter(c.items()))
        if not isinstance(pair, list) or len(pair) != 2 or not all(isinstance(x, str) and x in params for x in pair):
            errors[key] = f"{op} needs two declared parameters, got {pair!r}"
            continue
        a, b = pair
        if a in defaults and b in defaults:
            va, vb = defaults[a], defaults[b]
            if not (va < vb if op == "less" else va <= vb):
                errors[key] = f"does not hold for the defaults: {a} = {va}, {b} = {vb}"


def _check_sizes(blocks, errors: dict) -> None:
    if not isinstance(blocks, list) or not blocks:
        errors["blocks"] = "must be a non-empty list of blocks"
        return
    if len(blocks) > MAX_BLOCKS:
        errors["blocks"] = f"at most {MAX_BLOCKS} blocks"
        return
    for i, b in enumerate(blocks):
        if not isinstance(b, Mapping):
            errors[f"blocks[{i}]"] = "must be an object"
        elif not isinstance(b.get("legs", []), list) or len(b.get("legs", [])) > MAX_LEGS:
            errors[f"blocks[{i}]"] = f"legs must be a list of at most {MAX_LEGS} legs"
        elif any(not isinstance(leg, Mapping) for leg in b.get("legs", [])):
            errors[f"blocks[{i}]"] = "each leg must be an object"


def missing_defaults(t: Template) -> list[str]:
    """The required parameters without a value to price the defaults with."""
    return [p for p, spec in t.params.items() if "default" not in spec]


def price_defaults(t: Template, market: Mapping, valuation_date: str, *, underlying: str | None = None,
                   paths: int = 20_000, seed: int = 7) -> dict[str, dict]:
    """`{engine: {"price_pct", "stderr"}}` of the template's defaults (tenor CHECK_TENOR) on `market`, by every engine
    that supports its blocks, in `engines.ENGINE_ORDER`. `t` is priced as given, declared or not. Raises
    TemplateError when a required parameter has no default, no engine supports it, or an engine refuses it."""
    from otcdesk.pricing_engine.api import price_product
    from otcdesk.pricing_engine.engines import ENGINE_ORDER, EngineOptions
    from otcdesk.pricing_engine.models import MarketSpec

    lacking = missing_defaults(t)
    if lacking:
        raise TemplateError(f"the defaults cannot be priced: {', '.join(lacking)} {'has' if len(lacking) == 1 else 'have'} "
                            "no default", {f"params.{p}": "is required and has no default to price with" for p in lacking})
    product = t.spec_from_dict({"tenor": CHECK_TENOR, "underlying": underlying})
    spec = MarketSpec.from_dict(dict(market))
    options = EngineOptions(paths=paths, seed=seed, greeks=False)
    out: dict[str, dict] = {}
    for kind in ENGINE_ORDER:
        try:
            res = price_product(product, spec, valuation_date, kind, options)
        except UnsupportedProductError:
            continue
        except PricingError as exc:
            raise TemplateError(f"the {kind} engine refuses the defaults: {exc}", {"blocks": str(exc)}) from None
        out[kind] = {"price_pct": float(res.price) * 100.0,  # stderr: of the price, as in `otcdesk price`
                     "stderr": None if res.stderr is None else float(res.stderr)}
    if not out:
        raise TemplateError("no engine supports these blocks", {"blocks": "no engine supports them"})
    return out
