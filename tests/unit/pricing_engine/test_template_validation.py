"""A template from outside the code: each refusal names its field and reason; the defaults are priced by every
engine that supports the blocks; versions stay priceable; a request asking for a coupon solves it."""
from __future__ import annotations

import pytest

from template_fixtures import capped_snowball
from otcdesk.pricing_engine.api import price
from otcdesk.pricing_engine.templates import Template, declare, template_version
from otcdesk.pricing_engine.templates.validate import (TemplateError, check_template, missing_defaults,
                                                        price_defaults)

MARKET = {"spot": 100.0, "vol": 0.2, "rate": 0.02, "div": 0.0}
VD = "2026-11-20"


def _with(**changes):
    doc = capped_snowball("tv_capped")
    for path, value in changes.items():
        node = doc
        *head, last = path.split("__")
        for k in head:
            node = node[k]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return doc


DELETE = object()

REFUSALS = [
    ("unknown top-level key", _with(payout="x"), "payout", "not a field"),
    ("structure not an identifier", _with(structure="限亏"), "structure", "lower-case identifier"),
    ("structure upper case", _with(structure="Capped"), "structure", "lower-case identifier"),
    ("built-in structure", _with(structure="snowball"), "structure", "built-in"),
    ("shipped template", _with(structure="ki_put"), "structure", "built-in"),
    ("no names", _with(names=DELETE), "names", "non-empty list"),
    ("empty names", _with(names=[]), "names", "non-empty list"),
    ("blank name", _with(names=["限亏雪球", "  "]), "names", "non-empty text"),
    ("name too long", _with(names=["限" * 25]), "names", "at most 24"),
    ("name twice", _with(names=["限亏雪球", "限亏 雪球"]), "names", "twice"),
    ("unknown param setting", _with(params__ko_pct={"default": 103, "step": 1}), "params.ko_pct", "unknown settings"),
    ("default and required", _with(params__ko_pct={"default": 103, "required": True}), "params.ko_pct", "exactly one"),
    ("neither default nor required", _with(params__ko_pct={"min": 80}), "params.ko_pct", "exactly one"),
    ("min above max", _with(params__ko_pct={"default": 103, "min": 130, "max": 80}), "params.ko_pct", "above max"),
    ("default above max", _with(params__ko_pct={"default": 140, "max": 130}), "params.ko_pct", "outside"),
    ("default below min", _with(params__ki_pct={"default": 30, "min": 40}), "params.ki_pct", "outside"),
    ("default of the wrong type", _with(params__ko_pct={"default": "103"}), "params.ko_pct", "is not a float"),
    ("int default not whole", _with(params__lockup_months={"default": 2.5, "type": "int"}), "params.lockup_months",
     "is not a int"),
    ("unknown type", _with(params__ko_pct={"default": 1, "type": "decimal"}), "params.ko_pct", "type must be"),
    ("non-numeric bound", _with(params__ko_pct={"default": 103, "min": "80"}), "params.ko_pct", "finite number"),
    ("a product field as a parameter", _with(params__tenor={"default": 12}), "params.tenor", "field of every product"),
    ("parameter name not an identifier", _with(params__KO={"default": 1}), "params.KO", "lower-case identifier"),
    ("params not an object", _with(params=[1]), "params", "must be an object"),
    ("unknown constraint", _with(constraints=[{"greater": ["ko_pct", "ki_pct"]}]), "constraints[0]", "less"),
    ("constraint on an undeclared parameter", _with(constraints=[{"less": ["ki_pct", "kx_pct"]}]), "constraints[0]",
     "two declared parameters"),
    ("constraint broken by the defaults", _with(constraints=[{"less": ["ko_pct", "ki_pct"]}]), "constraints[0]",
     "does not hold for the defaults"),
    ("no blocks", _with(blocks=[]), "blocks", "non-empty list"),
    ("unknown block", _with(blocks=[{"block": "__import__('os')"}]), "blocks", "unknown block"),
    ("unknown leg kind", _with(blocks=[{"block": "payoff", "legs": [{"kind": "exec", "weight": 1}]}]), "blocks",
     "unknown leg kind"),
    ("undeclared reference", _with(blocks=[{"block": "knock_in", "direction": "down", "level_pct": "$os"}]), "blocks",
     "undeclared parameter"),
    ("misspelt leg key", _with(blocks=[{"block": "payoff", "legs": [{"kind": "put", "strike_pct": 100, "wieght": -1}]}]),
     "blocks", "unknown keys"),  # else the leg's weight is 0: a payoff silently different from the one written
    ("unknown block key", _with(blocks=[{"block": "knock_in", "level_pct": 70, "eval": "x"}]), "blocks",
     "unknown keys"),
    ("too many blocks", _with(blocks=[{"block": "payoff", "legs": []}] * 21), "blocks", "at most 20"),
    ("a leg that is no object", _with(blocks=[{"block": "payoff", "legs": ["call"]}]), "blocks[0]", "object"),
]


@pytest.mark.parametrize("why, doc, field, reason", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_each_refusal_names_its_field_and_reason(why, doc, field, reason):
    with pytest.raises(TemplateError) as exc:
        check_template(doc)
    assert field in exc.value.fields, exc.value.fields
    assert reason in exc.value.fields[field], exc.value.fields
    assert exc.value.detail == {"fields": exc.value.fields}


def test_a_name_another_structure_owns_is_refused_but_a_new_version_keeps_its_own():
    taken = {"早利雪球": "snowball", "限亏雪球": "tv_capped"}
    with pytest.raises(TemplateError) as exc:
        check_template(_with(names=["早利雪球"]), taken_names=taken)
    assert exc.value.fields == {"names": "name '早利雪球' already means snowball"}
    assert check_template(_with(), taken_names=taken).names == ("限亏雪球", "封底雪球")


def test_a_stored_structure_may_get_a_new_version_a_builtin_may_not():
    declare(Template.from_dict(_with(), 1))
    assert check_template(_with(), replaceable={"tv_capped"}).structure == "tv_capped"
    with pytest.raises(TemplateError, match="built-in"):
        check_template(_with())


def test_the_defaults_are_priced_by_every_engine_that_supports_the_blocks():
    t = check_template(_with(structure="tv_capped_price"))
    out = price_defaults(t, MARKET, VD)
    assert set(out) == {"fd", "mc"}  # daily knock-in and monthly knock-out: no closed form
    assert out["fd"]["stderr"] is None and out["mc"]["stderr"] > 0
    assert abs(out["fd"]["price_pct"] - out["mc"]["price_pct"]) < 3 * 100 * out["mc"]["stderr"] + 0.05
    european = check_template({"structure": "tv_bonus", "names": ["奖励二元"], "params": {"payout_pct": {"default": 5}},
                               "blocks": [{"block": "payoff", "legs": [{"kind": "digital_call", "strike_pct": 100,
                                                                        "weight_pct": "$payout_pct"}]}]})
    assert set(price_defaults(european, MARKET, VD)) == {"analytic", "fd", "mc"}


def test_required_parameters_without_defaults_leave_nothing_to_price():
    t = check_template(_with(structure="tv_required", params__ki_pct={"required": True, "min": 40, "max": 100}))
    assert missing_defaults(t) == ["ki_pct"]
    with pytest.raises(TemplateError) as exc:
        price_defaults(t, MARKET, VD)
    assert "params.ki_pct" in exc.value.fields


def test_a_level_on_the_wrong_side_of_spot_is_refused_by_the_engines():
    doc = {"structure": "tv_touch", "names": ["摸高"], "params": {"barrier_pct": {"default": 90}},
           "blocks": [{"block": "knock_out", "direction": "up", "level_pct": "$barrier_pct",
                       "observation": "continuous", "rebate_pct": 10}]}
    with pytest.raises(TemplateError, match="wrong side of spot"):
        price_defaults(check_template(doc), MARKET, VD)


def test_a_product_priced_under_a_version_is_priced_by_that_version_after_a_newer_one():
    v1 = declare(Template.from_dict(_with(structure="tv_versions"), 1))
    doc2 = _with(structure="tv_versions")
    doc2["blocks"][3]["legs"] = [{"kind": "put", "strike_pct": 100, "weight": -1}]  # v2: no floor
    v2 = declare(Template.from_dict(doc2, 2))
    assert template_version("tv_versions", 1) is v1 and template_version("tv_versions", 2) is v2
    base = {"structure": "tv_versions", "tenor": "12M", "coupon_pct": 10}
    doc = {"market": MARKET, "valuation_date": VD, "engine": "fd", "engine_options": {"greeks": False}}
    newest = price({**doc, "product": base})
    first = price({**doc, "product": {**base, "template_version": 1}})
    assert newest["product"]["template_version"] == 2 and first["product"]["template_version"] == 1
    assert first["price"] > newest["price"] + 1e-4  # the floor is worth something to the holder
    declare(v1)  # declaring an older version again does not make it the structure
    assert price({**doc, "product": base})["product"]["template_version"] == 2
    with pytest.raises(Exception, match="no template version 7"):
        price({**doc, "product": {**base, "template_version": 7}})


def test_a_request_asking_for_a_coupon_solves_it_whatever_its_default():
    declare(Template.from_dict(_with(structure="tv_coupon"), 1))
    doc = {"market": MARKET, "valuation_date": VD, "engine": "fd", "engine_options": {"greeks": False},
           "product": {"structure": "tv_coupon", "tenor": "12M", "quote": "coupon"}}
    out = price(doc)
    assert "coupon_pct" in out["solved"] and abs(out["price"]) < 1e-8
    assert out["product"]["coupon_pct"] == pytest.approx(out["solved"]["coupon_pct"])
    assert out["solved"]["coupon_pct"] != pytest.approx(10)
