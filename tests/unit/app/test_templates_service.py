"""TemplateService on SQLite and the local PostgreSQL: versions, audit, refusals, the data directory's folder, another
process catching up; and `otcdesk template check`."""
from __future__ import annotations

import json

import pytest

from template_fixtures import capped_snowball
from otcdesk.app.cli import main
from otcdesk.app.repositories import transaction
from otcdesk.app.trading.templates import TemplateService, sha256_of
from otcdesk.ner.structures import DECLARED
from otcdesk.pricing_engine.products import product_from_dict
from otcdesk.pricing_engine.templates.validate import TemplateError


def _audit(engine, action):
    with transaction(engine) as tx:
        return [(a.actor, a.detail) for a in tx.audit.entries(action=action)]


def test_uploads_are_versioned_audited_and_declared(db_engine):
    service = TemplateService(db_engine)
    doc = capped_snowball("svc_capped", ["亏损封顶雪球", "托底雪球"])
    v1 = service.upload(doc, "admin1")
    assert (v1["structure"], v1["version"], v1["unchanged"]) == ("svc_capped", 1, False)
    assert v1["sha256"] == sha256_of(doc) and set(v1["engines"]) == {"fd", "mc"}
    assert service.upload(doc, "admin1")["unchanged"] is True  # the same document is no new version
    doc2 = capped_snowball("svc_capped", ["亏损封顶雪球", "托底雪球", "限亏版雪球"])
    doc2["params"]["floor_pct"]["default"] = 60
    v2 = service.upload(doc2, "admin2")
    assert v2["version"] == 2 and v2["names"] == ["亏损封顶雪球", "托底雪球", "限亏版雪球"]
    assert [r["version"] for r in service.versions("svc_capped")] == [2, 1]
    assert service.versions("svc_capped")[1]["document"] == doc
    assert service.table() == [{**{k: v for k, v in v2.items() if k not in ("engines", "unchanged")}, "versions": 2}]
    assert [(a, d["structure"], d["version"], d["sha256"], d["source"]) for a, d in _audit(db_engine, "template.uploaded")] \
        == [("admin1", "svc_capped", 1, v1["sha256"], "upload"), ("admin2", "svc_capped", 2, v2["sha256"], "upload")]
    assert DECLARED.get("svc_capped").names[-1] == "限亏版雪球" and DECLARED.get("svc_capped").version == 2
    assert product_from_dict({"structure": "svc_capped", "tenor": "6M"}).floor_pct == 60


def test_a_refused_upload_stores_nothing(db_engine):
    service = TemplateService(db_engine)
    for doc, field in ((capped_snowball("svc_bad", ["早利雪球"]), "names"),  # the built-in words' 早利雪球 is a snowball
                       (capped_snowball("snowball", ["新雪球名"]), "structure"),
                       (capped_snowball("svc_bad", ["球"]), "names"),
                       ({**capped_snowball("svc_bad", ["新名字"]), "constraints": [{"less": ["ko_pct", "ki_pct"]}]},
                        "constraints[0]")):
        with pytest.raises(TemplateError) as exc:
            service.upload(doc, "admin1")
        assert field in exc.value.fields
    assert service.table() == [] and _audit(db_engine, "template.uploaded") == []


def test_the_folder_is_stored_at_start_and_another_process_catches_up(db_engine, tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps(capped_snowball("svc_folder", ["文件雪球"]), ensure_ascii=False),
                                   encoding="utf-8")
    (folder / "b.json").write_text("{not json", encoding="utf-8")
    (folder / "c.json").write_text(json.dumps(capped_snowball("svc_folder2", ["文件雪球"]), ensure_ascii=False),
                                   encoding="utf-8")
    other = TemplateService(db_engine)  # another instance on the same database
    out = TemplateService(db_engine, folder).load_folder()
    assert out["loaded"] == [{"file": "a.json", "structure": "svc_folder", "version": 1}]
    assert set(out["refused"]) == {"b.json", "c.json"} and "already means svc_folder" in out["refused"]["c.json"]
    assert TemplateService(db_engine, folder).load_folder()["loaded"] == []  # unchanged files: no new version
    assert [(a, d["source"]) for a, d in _audit(db_engine, "template.loaded")] == [("system", "file:a.json")]
    DECLARED.withdraw("svc_folder")
    assert other.sync() == 1 and DECLARED.get("svc_folder").version == 1
    assert other.sync() == 0


def _cli(capsys, *argv):
    rc = main(list(argv))
    [line] = capsys.readouterr().out.splitlines()
    return rc, json.loads(line)


def test_template_check_prints_the_contract_document(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OTCDESK_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(capped_snowball("cli_capped", ["命令行雪球"]), ensure_ascii=False), encoding="utf-8")
    rc, out = _cli(capsys, "template", "check", str(good))
    assert rc == 0 and list(out) == ["structure", "valid", "names", "engines"]
    assert out["structure"] == "cli_capped" and out["valid"] is True and out["names"] == ["命令行雪球"]
    assert set(out["engines"]) == {"fd", "mc"} and out["engines"]["fd"]["stderr"] is None
    assert all(set(v) == {"price_pct", "stderr"} for v in out["engines"].values())
    assert not (tmp_path / "var").exists()  # a check creates nothing
    bad = tmp_path / "bad.json"
    doc = capped_snowball("cli_bad", ["命令行坏雪球"])
    doc["params"]["ki_pct"] = {"required": True}
    bad.write_text(json.dumps(doc), encoding="utf-8")
    rc, out = _cli(capsys, "template", "check", str(bad))
    assert rc != 0 and set(out) == {"error", "detail"} and "params.ki_pct" in out["detail"]["fields"]
    rc, out = _cli(capsys, "template", "check", str(tmp_path / "missing.json"))
    assert rc != 0 and "no template file" in out["error"]


def test_a_version_committed_after_a_newer_id_is_still_declared(pg_schema_url, tmp_path):
    """PostgreSQL hands out ids at insert, not at commit: an upload that commits after a later-numbered one (two
    instances at once) must still be declared by every process, not skipped by a high-water mark."""
    from otcdesk.app.db import init_db, make_engine
    from otcdesk.app.settings import load_settings

    engine = make_engine(load_settings(data_dir=tmp_path, DATABASE_URL=pg_schema_url).db_url)
    init_db(engine)
    late, early = capped_snowball("svc_late", ["迟到雪球"]), capped_snowball("svc_early", ["先到雪球"])
    reader = TemplateService(engine)
    try:
        with transaction(engine) as slow:  # instance A: its row has the lower id but commits last
            slow.templates.add("svc_late", late, sha256_of(late), "upload", "admin1")
            with transaction(engine) as tx:  # instance B commits a higher id first
                tx.templates.add("svc_early", early, sha256_of(early), "upload", "admin2")
            assert reader.sync() == 1 and DECLARED.get("svc_early") is not None
        assert reader.sync() == 1 and DECLARED.get("svc_late") is not None
        assert reader.sync() == 0
    finally:
        DECLARED.withdraw("svc_late")
        DECLARED.withdraw("svc_early")
        engine.dispose()


def test_an_oversized_template_is_refused_whatever_the_request_framing(db_engine):
    """The 64 KiB bound holds on the parsed document too (a chunked upload carries no Content-Length)."""
    from otcdesk.app.trading.templates import MAX_TEMPLATE_BYTES

    with pytest.raises(TemplateError) as err:
        TemplateService(db_engine).upload({**capped_snowball(), "description": "x" * MAX_TEMPLATE_BYTES}, "admin1")
    assert err.value.fields == {"template": "too large"}


def test_two_structures_uploaded_at_once_with_one_name_store_only_the_first(db_engine, monkeypatch):
    """Two admins, two instances: each upload passes the parser's check (neither knows the other's structure yet);
    the second to store is refused with the reason and stores and audits nothing (review finding of issue 15)."""
    import otcdesk.app.trading.templates as templates

    a, b = f"svc_race_a_{db_engine.dialect.name}", f"svc_race_b_{db_engine.dialect.name}"  # the pricer keeps both
    first, second = TemplateService(db_engine), TemplateService(db_engine)
    real_check, order = templates.check, []

    def interleaved(doc, replaceable=frozenset()):
        out = real_check(doc, replaceable)
        order.append(doc["structure"])
        if doc["structure"] == a:  # A is checked; B is checked and stored before A stores
            second.upload(capped_snowball(b, ["同名雪球", "乙雪球"]), "admin2")
        return out

    monkeypatch.setattr(templates, "check", interleaved)
    try:
        with pytest.raises(TemplateError) as exc:
            first.upload(capped_snowball(a, ["甲雪球", "同名雪球"]), "admin1")
        assert order == [a, b]
        assert "同名雪球" in str(exc.value) and b in str(exc.value) and "names" in exc.value.fields
        assert [r["structure"] for r in first.table()] == [b]
        assert [d["structure"] for _, d in _audit(db_engine, "template.uploaded")] == [b]
        monkeypatch.setattr(templates, "check", real_check)
        again = first.upload(capped_snowball(a, ["甲雪球"]), "admin1")  # without the taken name it is fine
        assert again["version"] == 1
    finally:
        DECLARED.withdraw(a)
        DECLARED.withdraw(b)


def _parsed_structures(text):
    from otcdesk.ner import parse_message

    return [r.get("structure") for r in parse_message(text).to_dict()["requests"]]


def _price_version(structure, version):
    from otcdesk.pricing_engine.api import price

    market = {"spot": 100.0, "vol": 0.2, "rate": 0.03, "div": 0.0}
    return price({"product": {"structure": structure, "tenor": "12M", "coupon_pct": 10, "template_version": version},
                  "market": market, "valuation_date": "2026-11-20", "engine": "fd",
                  "engine_options": {"greeks": False}})


def test_a_withdrawn_template_is_no_longer_parsed_but_its_versions_still_price(db_engine):
    """Withdrawal (admin): the parser drops the structure on this instance at once and on another at its next sync;
    the pricer keeps every version (a booked trade names its version); audited; twice is a conflict; a re-upload
    is the next version and brings it back."""
    from otcdesk.app.trading.templates import TemplateAlreadyWithdrawn, TemplateConflict, TemplateNotFound

    structure, bystander = f"svc_withdrawn_{db_engine.dialect.name}", f"svc_bystander_{db_engine.dialect.name}"
    text = "中证500 一年 撤回测试雪球 103/75 2000万"
    service, other = TemplateService(db_engine), TemplateService(db_engine)  # two instances on one database
    try:
        doc = capped_snowball(structure, ["撤回测试雪球"])
        service.upload(doc, "admin1")
        assert other.sync() == 1 and _parsed_structures(text) == [structure]
        with pytest.raises(TemplateNotFound):
            service.withdraw("svc_nothing_here", "admin1", "broken")
        with pytest.raises(ValueError):
            service.withdraw(structure, "admin1", "   ")
        out = service.withdraw(structure, "admin2", "floor leg is wrong")
        assert (out["structure"], out["version"], out["versions"], out["withdrawn_by"]) == (structure, 1, 1, "admin2")
        assert out["withdrawn_at"] is not None
        assert DECLARED.get(structure) is None and structure not in _parsed_structures(text)
        assert _price_version(structure, 1)["product"]["template_version"] == 1  # the pricer keeps the version
        [row] = service.table()
        assert (row["withdrawn_by"], row["withdrawn_at"]) == ("admin2", out["withdrawn_at"])
        assert [(a, d) for a, d in _audit(db_engine, "template.withdrawn")] == \
            [("admin2", {"structure": structure, "version": 1, "reason": "floor leg is wrong"})]
        with transaction(db_engine) as tx:
            [entry] = tx.audit.entries(action="template.withdrawn")
            assert entry.subject == f"structure_template:{structure}"
        with pytest.raises(TemplateAlreadyWithdrawn) as exc:
            service.withdraw(structure, "admin1", "again")
        assert isinstance(exc.value, TemplateConflict) and len(_audit(db_engine, "template.withdrawn")) == 1

        # another instance: it declared the structure before; its next sync sees the withdrawal
        service.upload(capped_snowball(bystander, ["旁观雪球"]), "admin1")  # unrelated, seen in the same sync
        from otcdesk.ner.structures import DeclaredStructure

        DECLARED.declare(DeclaredStructure(structure, ("撤回测试雪球",), doc["params"], 1))  # as `other` had it
        assert other.sync() == 2 and DECLARED.get(structure) is None and DECLARED.get(bystander) is not None
        assert other.sync() == 0
        fresh = TemplateService(db_engine)  # a process started after the withdrawal never parses it
        assert fresh.sync() == 3 and DECLARED.get(structure) is None
        assert _price_version(structure, 1)["product"]["template_version"] == 1

        # the same document uploaded again is the next version, not withdrawn
        back = service.upload(doc, "admin1")
        assert (back["version"], back["unchanged"], back["withdrawn_at"]) == (2, False, None)
        assert DECLARED.get(structure).version == 2 and _parsed_structures(text) == [structure]
        assert other.sync() == 1 and DECLARED.get(structure).version == 2
        assert [(r["version"], r["withdrawn_by"]) for r in service.versions(structure)] == [(2, None), (1, "admin2")]
        assert service.withdraw(structure, "admin1", "still broken")["version"] == 2
    finally:
        DECLARED.withdraw(structure)
        DECLARED.withdraw(bystander)


def test_the_folder_leaves_a_withdrawn_template_withdrawn_until_its_file_changes(db_engine, tmp_path):
    structure = f"svc_folder_wd_{db_engine.dialect.name}"
    folder = tmp_path / "templates"
    folder.mkdir()
    doc = capped_snowball(structure, ["文件撤回雪球"])
    (folder / "w.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    try:
        assert TemplateService(db_engine, folder).load_folder()["loaded"] == [
            {"file": "w.json", "structure": structure, "version": 1}]
        TemplateService(db_engine).withdraw(structure, "admin1", "wrong knock-in")
        restarted = TemplateService(db_engine, folder)  # the next start reads the same file
        out = restarted.load_folder()
        assert out == {"loaded": [], "refused": {}, "withdrawn": [{"file": "w.json", "structure": structure,
                                                                    "version": 1}]}
        assert DECLARED.get(structure) is None and restarted.table()[0]["withdrawn_by"] == "admin1"
        assert [d["version"] for _, d in _audit(db_engine, "template.loaded")] == [1]
        doc["params"]["floor_pct"]["default"] = 60  # a fixed file is the next version
        (folder / "w.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        out = TemplateService(db_engine, folder).load_folder()
        assert out["loaded"] == [{"file": "w.json", "structure": structure, "version": 2}] and out["withdrawn"] == []
        assert DECLARED.get(structure).version == 2
    finally:
        DECLARED.withdraw(structure)
