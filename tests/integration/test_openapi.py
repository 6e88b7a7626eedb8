"""GET /api/openapi.json (CONTRACTS "Operations"): every route described, generated from the models the handlers
validate with, valid OpenAPI 3.1; the answer check that `RunningDesk` applies to every integration test can fail."""
from __future__ import annotations

import json

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from desk_fixtures import RunningDesk
from otcdesk.app import openapi
from otcdesk.app.routes.market import FixingSpec
from otcdesk.app.server import DEMO, create_app
from otcdesk.app.settings import load_settings


@pytest.fixture(params=[True, False], ids=["demo", "no-demo"])
def app(request, tmp_path) -> web.Application:
    return create_app(load_settings(data_dir=tmp_path, DATABASE_URL=None), demo=request.param)


def test_every_route_is_described(app):
    missing = openapi.missing_operations(app.router)
    assert not missing, "routes without @api(...) beside their handler: " + "; ".join(missing)
    spec = openapi.build_spec(app)
    assert "x-undescribed" not in spec
    routes = list(openapi.documented_routes(app.router))
    for method, path, _ in routes:
        assert method in spec["paths"].get(path, {}), (method, path)
    assert sum(len(ops) for ops in spec["paths"].values()) == len(routes)
    # the exclusion rule is small: the static files and the HEAD twin of every GET, nothing else
    described = {(m, p) for m, p, _ in routes}
    excluded = [r for r in app.router.routes() if (r.method.lower(), openapi.path_of(r.resource)) not in described]
    assert excluded and all(r.method == "HEAD" or isinstance(r.resource, web.StaticResource) for r in excluded)
    assert ("/api/sim/groups/{group}/messages" in spec["paths"]) == app[DEMO]


def test_the_description_is_openapi_3_1(app):
    spec = openapi.build_spec(app)
    validate(spec)  # the OpenAPI 3.1 meta-schema, JSON Schema 2020-12 inside
    assert spec["openapi"].startswith("3.1")
    trades = spec["paths"]["/api/trades/{id}"]["get"]
    assert trades["x-roles"] == ["trader", "risk", "compliance"] and {"401", "403", "404"} <= set(trades["responses"])
    assert spec["paths"]["/api/kyc/applications"]["post"]["x-auth"].startswith("the invitation token")
    assert "application/pdf" in spec["paths"]["/api/trades/{id}/confirmation.pdf"]["get"]["responses"]["200"]["content"]
    # the request body's schema is the model's own, the one `read_json` validates with
    body = spec["paths"]["/api/market/fixings"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert spec["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]] == \
        FixingSpec.model_json_schema(ref_template="#/components/schemas/{model}")


async def test_served_without_login_and_bodies_refused_by_the_described_model(desk):
    async with desk.session() as anon:
        r = await anon.get("/api/openapi.json")
        assert r.status == 200 and r.content_type == "application/json"
        served = await r.json()
        assert served == json.loads(json.dumps(openapi.build_spec(desk.app), ensure_ascii=False))
        assert (await anon.post("/api/openapi.json", json={})).status == 405
    async with await desk.login("risk1", "risk-password-1") as risk:
        r = await risk.post("/api/market/fixings", json={"date": 20270222, "closes": ["000905.SH", 6300]})
        assert r.status == 422
        body = await r.json()
        assert set(body["fields"]) == {"date", "closes"} and body["detail"]["code"] == "invalid"
        required = served["components"]["schemas"]["FixingSpec"]["required"]
        assert sorted(required) == ["closes", "date"]
    async with desk.session() as anon:
        r = await anon.post("/api/sim/groups/demo/messages", json={"sender": "张经理", "text": ["x"]})
        assert r.status == 400 and "text" in (await r.json())["fields"]


def test_the_answer_check_finds_what_the_description_does_not_allow(app):
    spec = openapi.build_spec(app)
    trade = {"id": "T1", "status": "live", "institution": "i", "group": "g", "client": "c", "quote_id": None,
             "product": {"structure": "snowball"}, "notional": 1e7, "price_pct": 0.0, "premium_cny": 0.0,
             "booked_by": "trader1", "booked_at": "2027-01-04T10:00:00+08:00", "approvals": [], "events": [],
             "extra_field": "allowed"}

    def problems(status=200, ctype="application/json", body=trade, path="/api/trades/{id}"):
        return openapi.answer_problems(spec, "GET", path, status, ctype, json.dumps(body).encode())

    assert problems() == []
    assert problems(body={k: v for k, v in trade.items() if k != "status"})  # a contract field missing
    assert problems(body={**trade, "status": "sleeping"})  # not a trade state
    assert problems(body={**trade, "notional": "10000000"})  # a number as text
    assert problems(status=201)  # a success status not described
    assert problems(ctype="text/html")  # another media type
    assert problems(status=404, body={"error": "no trade T1", "detail": {"code": "not_found"}}) == []
    assert problems(status=500, body={"message": "oops"})  # a refusal not in the API's error shape
    assert problems(status=200, ctype="application/pdf", path="/api/trades/{id}/confirmation.pdf", body="") == []
