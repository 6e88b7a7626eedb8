"""Structure templates: a new structure declared as data from the registered building blocks.

A template is a JSON file in this folder (registered at import) or any folder passed to
`register_templates`, or a document passed to `register_template`; each declares one structure in
the one registry of structures (`pricing_engine.registry`), next to the built-in ones:

    {"structure": "ki_put", "description": "...", "names": ["敲入看跌"],
     "params": {"strike_pct": {"default": 100, "min": 1, "max": 500},
                "ki_pct": {"required": true, "min": 1, "max": 200}},
     "constraints": [{"less": ["ki_pct", "strike_pct"]}],
     "blocks": [
       {"block": "knock_in", "direction": "down", "level_pct": "$ki_pct", "observation": "daily"},
       {"block": "payoff", "state": "knocked_in",
        "legs": [{"kind": "put", "strike_pct": "$strike_pct", "weight": -1}]}]}

Values are numbers, booleans, strings, or "$name" references to a parameter; nothing is evaluated.
Registered blocks (BLOCKS):
- payoff      {state: any|not_knocked_in|knocked_in, legs: [{kind, strike_pct, weight | weight_pct,
               sign}]}; leg kinds: call, put, digital_call, digital_put, cash, asset, accrued_cash
               (weight_pct × ACT/365(start, maturity): a maturity coupon).
- knock_out   {direction: up|down, level_pct, observation: continuous|daily|monthly|maturity,
               lockup_months, stepdown_pct, rebate_pct, rebate_accrues (rebate × ACT/365(start, date)),
               rebate_at: hit|maturity}
- knock_in    {direction: down|up, level_pct, observation: daily|continuous|maturity}
- coupon      {barrier_pct, coupon_pct (annualised, accrued between observations), memory}
A templated product is priced by every engine that supports its blocks (FD and MC for all of them;
analytic when every event is at maturity). Its `product` JSON is the template's `structure` plus
the base schedule fields and the template's parameters, and `template_version` when the template was declared
with a version (an uploaded one): every version declared stays known (`template_version`), so a product priced or
booked under version n is priced again under version n after version n+1 was declared; `get_structure` gives the
newest. `names` are the words clients use for the structure (the parser's vocabulary, not read here).
A request asking for a coupon (`quote: "coupon"`) without one leaves `coupon_pct` unset, whatever its default, so
that `api.solve_field` solves it, as for a snowball. `validate.check_template` is the full check of a document from
outside the code (an upload); `validate.price_defaults` prices its defaults with every engine that supports it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Mapping

from otcdesk.pricing_engine.blocks import LEG_KINDS, KnockIn, KnockOut, Leg, ResolvedSchedule
from otcdesk.pricing_engine.errors import PricingError
from otcdesk.pricing_engine.products import (ProductSpec, autocall_dates, barrier_times, check_knock_in_spot,
                                             coerce_field, field_types, monthly_coupons, observed_knock_out)
from otcdesk.pricing_engine.registry import get_structure, register_structure
from otcdesk.pricing_engine.schedule import act365

TEMPLATE_DIR = Path(__file__).parent
BLOCKS = ("payoff", "knock_out", "knock_in", "coupon")
_BLOCK_KEYS = {
    "payoff": {"block", "state", "legs"},
    "knock_out": {"block", "direction", "level_pct", "observation", "lockup_months", "stepdown_pct", "rebate_pct",
                  "rebate_accrues", "rebate_at"},
    "knock_in": {"block", "direction", "level_pct", "observation"},
    "coupon": {"block", "barrier_pct", "coupon_pct", "memory"},
}
_LEG_KINDS = (*LEG_KINDS, "accrued_cash")
_LEG_KEYS = {"kind", "strike_pct", "weight", "weight_pct", "sign"}  # a key not read would be ignored: refused


def _bad(msg, detail=None):
    return PricingError(f"template: {msg}", detail)


@dataclass(frozen=True)
class Template:
    """A validated template document; as a `registry.Structure` it turns product objects into `TemplateSpec`s."""

    structure: str
    description: str
    params: Mapping[str, Mapping[str, Any]]
    blocks: tuple[Mapping[str, Any], ...]
    constraints: tuple[Mapping[str, Any], ...] = ()
    names: tuple[str, ...] = ()
    version: int | None = None
    builtin: ClassVar[bool] = False

    @classmethod
    def from_dict(cls, d: Mapping, version: int | None = None) -> "Template":
        name = d.get("structure")
        if not isinstance(name, str) or not name.isidentifier():
            raise _bad("structure must be an identifier", d.get("structure"))
        params = d.get("params") or {}
        for p, spec in params.items():
            if not isinstance(spec, Mapping) or set(spec) - {"default", "required", "min", "max", "type"}:
                raise _bad(f"parameter {p} has unknown settings", spec)
        blocks = tuple(d.get("blocks") or ())
        if not blocks:
            raise _bad(f"{name} declares no blocks")
        for b in blocks:
            kind = b.get("block")
            if kind not in BLOCKS:
                raise _bad(f"unknown block {kind!r}; registered blocks are {BLOCKS}", b)
            extra = set(b) - _BLOCK_KEYS[kind]
            if extra:
                raise _bad(f"block {kind} has unknown keys {sorted(extra)}", b)
            for leg in b.get("legs", ()):
                if leg.get("kind") not in _LEG_KINDS:
                    raise _bad(f"unknown leg kind {leg.get('kind')!r}", leg)
                if set(leg) - _LEG_KEYS:
                    raise _bad(f"a {leg['kind']} leg has unknown keys {sorted(set(leg) - _LEG_KEYS)}", leg)
            _refs_ok(b, params)
        if sum(1 for b in blocks if b["block"] == "knock_in") > 1:
            raise _bad("at most one knock_in block")
        if sum(1 for b in blocks if b["block"] == "coupon") > 1:
            raise _bad("at most one coupon block")
        names = tuple(str(n) for n in (d.get("names") or ()))
        return cls(name, str(d.get("description", "")), params, blocks, tuple(d.get("constraints") or ()), names,
                   version)

    def spec_from_dict(self, d: Mapping) -> "TemplateSpec":
        wanted = coerce_field("template_version", "int", d.get("template_version"))
        if wanted is not None and wanted != self.version:
            other = _VERSIONS.get((self.structure, wanted))
            if other is None:
                raise PricingError(f"{self.structure} has no template version {wanted}",
                                   {"field": "template_version", "value": wanted})
            return other.spec_from_dict(d)
        kw = {k: coerce_field(k, t, d[k]) for k, t in field_types(ProductSpec).items() if d.get(k) is not None}
        solving_coupon = d.get("quote") == "coupon" and d.get("coupon_pct") is None
        values: dict[str, Any] = {}
        for p, spec in self.params.items():
            if p == "coupon_pct" and solving_coupon:
                continue  # the coupon is what is asked: `api.solve_field` solves it
            v = d.get(p, spec.get("default"))
            if v is None:
                if spec.get("required"):
                    raise PricingError(f"{self.structure} needs {p}", {"field": p})
                continue
            typ = spec.get("type", "float")
            v = coerce_field(p, typ, v)
            if typ == "float" and spec.get("min") is not None and v < spec["min"]:
                raise PricingError(f"{p} must be at least {spec['min']}, got {v}", {"field": p, "value": v})
            if typ == "float" and spec.get("max") is not None and v > spec["max"]:
                raise PricingError(f"{p} must be at most {spec['max']}, got {v}", {"field": p, "value": v})
            values[p] = v
        for c in self.constraints:
            for op, (a, b) in c.items():
                va, vb = values.get(a), values.get(b)
                if va is None or vb is None:
                    continue
                ok = {"less": va < vb, "less_equal": va <= vb}.get(op)
                if ok is None:
                    raise _bad(f"unknown constraint {op}")
                if not ok:
                    raise PricingError(f"{a} ({va}) must be {'below' if op == 'less' else 'at most'} {b} ({vb})",
                                       {"field": a, "value": va})
        kin = coerce_field("knocked_in", "bool", d.get("knocked_in")) or False
        return TemplateSpec(template=self.structure, params=tuple(sorted(values.items())), knocked_in=kin,
                            template_version=self.version, definition=self, **kw)


def _refs_ok(obj, params):
    if isinstance(obj, str) and obj.startswith("$"):
        if obj[1:] not in params:
            raise _bad(f"reference {obj} to an undeclared parameter")
    elif isinstance(obj, Mapping):
        for v in obj.values():
            _refs_ok(v, params)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _refs_ok(v, params)


_VERSIONS: dict[tuple[str, int], Template] = {}  # every versioned template declared in this process


def register_template(d: Mapping, version: int | None = None) -> Template:
    """Declare a structure from a template document (validated, never evaluated); see `declare`."""
    return declare(Template.from_dict(d, version))


def declare(t: Template) -> Template:
    """Declare a template: a versioned one is kept under its version and becomes the structure unless a newer
    version of it is declared already."""
    if t.version is not None:
        _VERSIONS[(t.structure, t.version)] = t
        current = get_structure(t.structure)
        if isinstance(current, Template) and current.version is not None and current.version > t.version:
            return t
    return register_structure(t)


def template_version(structure: str, version: int) -> Template | None:
    """Version `version` of a declared template, or None."""
    return _VERSIONS.get((structure, version))


def register_templates(folder: str | Path) -> list[Template]:
    """Declare every template `*.json` in `folder` (sorted by file name)."""
    return [register_template(json.loads(path.read_text(encoding="utf-8")))
            for path in sorted(Path(folder).glob("*.json"))]


def _tpl(spec: "TemplateSpec") -> Template:
    if spec.definition is not None:
        return spec.definition
    if spec.template_version is not None:
        t = _VERSIONS.get((spec.template, spec.template_version))
        if t is not None:
            return t
    t = get_structure(spec.template)
    if not isinstance(t, Template):
        raise PricingError(f"unknown structure {spec.template!r}", {"field": "structure"})
    return t


@dataclass(frozen=True, kw_only=True)
class TemplateSpec(ProductSpec):
    """A product of a templated structure: base schedule fields + the template's parameters."""

    template: str = ""
    params: tuple[tuple[str, Any], ...] = ()
    knocked_in: bool = False
    template_version: int | None = None
    definition: Template | None = field(default=None, compare=False, repr=False)  # the template that built it

    @property
    def structure(self) -> str:  # the template's name is the structure discriminator
        return self.template

    def __getattr__(self, name):  # template parameters read like fields (for solvers)
        if name.startswith("__"):
            raise AttributeError(name)
        for k, v in object.__getattribute__(self, "params"):
            if k == name:
                return v
        if name in _tpl(self).params:
            return None
        raise AttributeError(name)

    def __hash__(self):
        return hash((self.template, self.template_version, self.params))

    def replace(self, **changes):
        pnames = set(_tpl(self).params)
        p = dict(self.params)
        base = {}
        for k, v in changes.items():
            if k in pnames:
                p[k] = v
            else:
                base[k] = v
        d = self.to_dict()
        d.update(p)
        d.update({k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in base.items()})
        return _tpl(self).spec_from_dict(d)

    def to_dict(self) -> dict:
        out = {"structure": self.template}
        for f in fields(ProductSpec):
            v = getattr(self, f.name)
            if v is not None:
                out[f.name] = v.isoformat() if hasattr(v, "isoformat") else v
        out.update(dict(self.params))
        if self.knocked_in:
            out["knocked_in"] = True
        if self.template_version is not None:
            out["template_version"] = self.template_version
        return out

    # --- what engines can do with it ---------------------------------------------------------
    def _blocks(self):
        p = dict(self.params)

        def val(v):
            if isinstance(v, str) and v.startswith("$"):
                return p.get(v[1:])
            return v
        return [{k: (val(v) if k != "legs" else [{kk: val(vv) for kk, vv in leg.items()} for leg in v])
                 for k, v in b.items()} for b in _tpl(self).blocks]

    def is_european(self) -> bool:
        for b in self._blocks():
            if b["block"] in ("knock_out", "knock_in") and b.get("observation") != "maturity":
                return False
            if b["block"] == "coupon":
                return False
        return True

    def fd_supported(self) -> bool:
        bl = self._blocks()
        cont_ki = any(b["block"] == "knock_in" and b.get("observation") == "continuous" for b in bl)
        return not (cont_ki and any(b["block"] in ("knock_out", "coupon") for b in bl))

    def resolve(self, valuation_date, model) -> ResolvedSchedule:
        b = self._base(valuation_date, model)
        start, mat = b["start_date"], b["maturity_date"]
        legs: list[Leg] = []
        legs_ki: list[Leg] | None = None
        kos: list[KnockOut] = []
        ki = None
        strip = None
        for blk in self._blocks():
            kind = blk["block"]
            if kind == "payoff":
                lg = []
                for leg in blk.get("legs", ()):
                    w = leg.get("weight")
                    if w is None:
                        w = (leg.get("weight_pct") or 0.0) / 100.0
                    w = float(w) * float(leg.get("sign", 1.0))
                    k = (leg.get("strike_pct") or 0.0) / 100.0
                    if leg["kind"] == "accrued_cash":
                        lg.append(Leg("cash", 0.0, w * b["maturity_accrual"]))
                    else:
                        lg.append(Leg(leg["kind"], k, w))
                state = blk.get("state", "any")
                if state in ("any", "not_knocked_in"):
                    legs += lg
                if state in ("any", "knocked_in"):
                    legs_ki = (legs_ki or []) + lg
            elif kind == "knock_out":
                obs = blk.get("observation", "continuous")
                lvl0 = blk["level_pct"] / 100.0
                step = (blk.get("stepdown_pct") or 0.0) / 100.0
                rb = (blk.get("rebate_pct") or 0.0) / 100.0
                if obs == "monthly":
                    dates = autocall_dates(self.calendar, int(blk.get("lockup_months") or 0), "monthly", start, mat)
                    kos.append(observed_knock_out(blk.get("direction", "up"), dates,
                                                  [lvl0 - i * step for i in range(len(dates))], [rb] * len(dates), b,
                                                  accrue=bool(blk.get("rebate_accrues")),
                                                  rebate_at=blk.get("rebate_at", "hit")))
                else:
                    mon, times, dates = barrier_times(self, b, obs)
                    n = max(len(times), 1)
                    rebs = (tuple(rb * act365(start, d) for d in dates) if blk.get("rebate_accrues") and dates
                            else (rb,) * n)
                    x = b["spot_x"]
                    d = blk.get("direction", "up")
                    if obs != "maturity" and ((d == "up" and x >= lvl0) or (d == "down" and x <= lvl0)):
                        raise PricingError(f"knock-out level {100 * lvl0:.2f}% is on the wrong side of spot",
                                           {"field": "level_pct"})
                    kos.append(KnockOut(d, mon, times, (lvl0,) * n, rebs,
                                        blk.get("rebate_at", "maturity" if obs == "maturity" else "hit"), dates=dates))
            elif kind == "knock_in":
                obs = blk.get("observation", "daily")
                lvl = blk["level_pct"] / 100.0
                d = blk.get("direction", "down")
                if obs == "maturity":
                    ki = KnockIn(d, "maturity", lvl, (b["T"],), (mat,))
                else:
                    mon, times, dates = barrier_times(self, b, "continuous" if obs == "continuous" else "daily")
                    ki = KnockIn(d, mon, lvl, times, dates)
            elif kind == "coupon":
                strip = monthly_coupons(self.calendar, b, blk["coupon_pct"], blk["barrier_pct"] / 100.0,
                                        bool(blk.get("memory", False)))
        knocked_in = self.knocked_in
        if ki is None:
            legs_ki = None
        check_knock_in_spot(b, ki, knocked_in, "level_pct")
        b["structure"] = self.template
        return ResolvedSchedule(**b, legs=tuple(legs), legs_ki=None if legs_ki is None else tuple(legs_ki),
                                knock_outs=tuple(kos), knock_in=ki, knocked_in=knocked_in, coupons=strip)


register_templates(TEMPLATE_DIR)
