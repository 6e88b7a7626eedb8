"""Alembic migrations (app.migrations) on real SQLite files and the local PostgreSQL.

The migrated schema must equal the models; a database made by the release before Alembic is stamped
at the baseline with its data and its append-only audit log intact, the log chained (verifies) by 0003;
`init_db` is idempotent and safe from two processes at once; `otcdesk db current|upgrade` print one JSON
document.
"""
import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import JSON, Column, DateTime, Integer, MetaData, String, Table, inspect, text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, SQLModel, select

from otcdesk.app import migrations
from otcdesk.app.cli import main
from otcdesk.app.db import init_db, make_engine, unit_of_work
from otcdesk.app.models import InboundMessageRow, ReviewItem, User
from otcdesk.app.repositories.audit import AuditRepository
from otcdesk.app.models import PiiVault

# The audit_log of the release before Alembic (no hash chain yet), frozen here.
_PREVIOUS_RELEASE_AUDIT_LOG = Table(
    "audit_log", MetaData(), Column("id", Integer, primary_key=True),
    Column("ts", DateTime(timezone=True), nullable=False, index=True), Column("actor", String, nullable=False),
    Column("action", String, nullable=False, index=True), Column("subject", String, nullable=False, index=True),
    Column("detail", JSON))
# What the release before Alembic ran after create_all (its db.py, frozen here).
_PREVIOUS_RELEASE_TRIGGERS = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
        "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'audit log is append-only'; END $$",
        "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
        "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    ],
}


@pytest.fixture
def engine(db_settings):
    engine = make_engine(db_settings.db_url)
    yield engine
    engine.dispose()


def schema_diff(engine) -> list:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": migrations.include_name})
        return compare_metadata(context, migrations.desk_metadata())


def assert_audit_log_append_only(engine) -> None:
    """UPDATE, DELETE and, on a table with rows, REPLACE (SQLite) or TRUNCATE (PostgreSQL) are refused."""
    overwrite = {"sqlite": "INSERT OR REPLACE INTO audit_log SELECT * FROM audit_log",
                 "postgresql": "TRUNCATE audit_log"}[engine.dialect.name]
    for stmt in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log", overwrite):
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text(stmt))


def test_upgrade_from_empty_database_matches_the_models(engine, db_settings):
    assert migrations.upgrade(engine) == {"from": None, "stamped": None, "current": migrations.head()}
    if db_settings.is_postgres:  # langgraph's checkpoint tables share the schema; they are not ours to diff
        from otcdesk.app.checkpoints import make_checkpointer

        _saver, close = make_checkpointer(db_settings)
        close()
        assert migrations.FOREIGN_TABLES <= set(inspect(engine).get_table_names())
    assert schema_diff(engine) == []
    if db_settings.is_postgres:  # alembic_version lives in the schema search_path names, like the tables
        with engine.connect() as conn:
            # other schemas (other tests' or left by a killed run) may hold theirs; the default one must not
            schemas = set(conn.execute(text("SELECT table_schema FROM information_schema.tables WHERE table_name = "
                                            "'alembic_version'")).scalars())
            assert conn.scalar(text("SELECT current_schema()")) in schemas and "public" not in schemas
    with unit_of_work(engine) as s:
        AuditRepository(s).record("alice", "review.approved", "review:Q1")
    assert_audit_log_append_only(engine)


def test_schema_diff_reports_a_schema_that_differs_from_the_models(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'desk.db'}")
    init_db(engine)
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_outbox_status"))
    [(op, index)] = schema_diff(engine)
    assert (op, index.name) == ("add_index", "ix_outbox_status")


_LATER_REVIEW_COLUMNS = ("order", "ref_id", "detail")


def make_previous_release_database(engine) -> None:
    """What `init_db` of the release before Alembic made: create_all of the baseline tables (its audit_log),
    the triggers, and the vault table `kb ingest` created on first use."""
    metadata = migrations.desk_metadata()
    SQLModel.metadata.create_all(engine, tables=[metadata.tables[name] for name in migrations.BASELINE_TABLES
                                                 if name != "audit_log"] + [PiiVault.__table__])
    _PREVIOUS_RELEASE_AUDIT_LOG.create(engine)
    with engine.begin() as conn:
        for stmt in _PREVIOUS_RELEASE_TRIGGERS[engine.dialect.name]:
            conn.exec_driver_sql(stmt)
        conn.exec_driver_sql("DROP INDEX ix_review_item_ref_id")  # review_item as the baseline had it (0004 adds)
        for column in _LATER_REVIEW_COLUMNS:
            conn.exec_driver_sql(f'ALTER TABLE review_item DROP COLUMN "{column}"')
        conn.exec_driver_sql("DROP INDEX uq_institution_uscc")  # institution as the baseline had it (0005 adds)
        conn.exec_driver_sql("ALTER TABLE institution DROP COLUMN uscc")


def test_previous_release_database_is_stamped_and_keeps_its_data(engine):
    make_previous_release_database(engine)
    now = datetime.now(timezone.utc)
    with Session(engine) as s:
        s.add(User(username="trader1", password_hash="$argon2id$x", role="trader"))
        inbound = InboundMessageRow(channel="sim", chat_id="demo", sender_id="zhang", sender_name="张经理",
                                    text="300 平值看跌 1个月", platform_msg_id="m1")
        s.add(inbound)
        s.flush()
        review = ReviewItem(id="Q1", thread_id="t1", inbound_id=inbound.id, channel="sim", chat_id="demo",
                            sender_id="zhang", sender_name="张经理", text=inbound.text, draft_reply="报价 2.1%",
                            expires_at=now + timedelta(minutes=2))
        s.execute(ReviewItem.__table__.insert().values(
            {k: v for k, v in review.model_dump().items() if k not in _LATER_REVIEW_COLUMNS}))
        s.add(PiiVault(kb="desk", token="[PHONE_3f2a9c1d]", kind="mobile", original="13812345678"))
        s.execute(_PREVIOUS_RELEASE_AUDIT_LOG.insert(), [  # id 2 lost to a rolled-back transaction
            {"id": 1, "ts": now, "actor": "system", "action": "inbound.stored", "subject": "inbound:m1",
             "detail": {"chat": "demo", "text": "300 平值看跌"}},
            {"id": 3, "ts": now, "actor": "trader1", "action": "review.approved", "subject": "review:Q1",
             "detail": {"edited": False}}])
        s.commit()

    assert migrations.upgrade(engine) == {"from": None, "stamped": migrations.BASELINE,
                                          "current": migrations.head()}
    init_db(engine)

    with Session(engine) as s:
        assert s.get(User, "trader1").role == "trader"
        assert s.exec(select(InboundMessageRow.text)).one() == "300 平值看跌 1个月"
        review = s.get(ReviewItem, "Q1")
        assert (review.status, review.draft_reply, review.expires_at) == ("pending", "报价 2.1%",
                                                                          now + timedelta(minutes=2))
        assert s.exec(select(PiiVault.original)).one() == "13812345678"
        assert [(r.id, r.actor, r.action, r.detail) for r in AuditRepository(s).entries()] == [
            (1, "system", "inbound.stored", {"chat": "demo", "text": "300 平值看跌"}),
            (3, "trader1", "review.approved", {"edited": False})]
        assert AuditRepository(s).verify()["ok"] and AuditRepository(s).verify()["entries"] == 2
    with unit_of_work(engine) as s:
        AuditRepository(s).record("trader1", "login", "user:trader1")
    with Session(engine) as s:
        assert AuditRepository(s).verify() == {"ok": True, "entries": 3, "first_broken": None,
                                               "head": {"id": 4, "hash": AuditRepository(s).entries()[-1].entry_hash}}
    assert_audit_log_append_only(engine)
    assert schema_diff(engine) == []


def test_audit_chain_revision_downgrades_and_upgrades_again(engine):
    init_db(engine)
    with unit_of_work(engine) as s:
        AuditRepository(s).record("alice", "review.approved", "review:Q1", {"edited": False})
        AuditRepository(s).record("bob", "login", "user:bob")
    with engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "0002")
    assert {c["name"] for c in inspect(engine).get_columns("audit_log")} == {
        "id", "ts", "actor", "action", "subject", "detail"}
    for stmt in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):  # the baseline's guards
        with pytest.raises(DBAPIError, match="append-only"):
            with engine.begin() as conn:
                conn.execute(text(stmt))

    assert migrations.upgrade(engine)["current"] == migrations.head()
    with Session(engine) as s:
        assert AuditRepository(s).verify()["entries"] == 2 and AuditRepository(s).verify()["ok"]
        assert [e.detail for e in AuditRepository(s).entries()] == [{"edited": False}, {}]
    assert_audit_log_append_only(engine)
    assert schema_diff(engine) == []


def test_part_of_a_pre_alembic_schema_is_refused_untouched(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'desk.db'}")
    SQLModel.metadata.create_all(engine, tables=[migrations.desk_metadata().tables["audit_log"]])
    with pytest.raises(migrations.UnknownSchemaError, match="lacks"):
        init_db(engine)
    assert inspect(engine).get_table_names() == ["audit_log"]


_INIT_DB_WHEN_TOLD = """
import pathlib, sys, time
from otcdesk.app.db import init_db, make_engine, unit_of_work
engine = make_engine(sys.argv[1])
ready, go = pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3])
ready.touch()
while not go.exists():
    time.sleep(0.005)
started = time.time()
init_db(engine)
print(started, time.time())
"""


def test_init_db_is_safe_twice_and_from_two_processes_at_once(engine, db_settings, tmp_path):
    go = tmp_path / "go"
    readies = [tmp_path / f"ready{i}" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", _INIT_DB_WHEN_TOLD, db_settings.db_url, str(r), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in readies]
    deadline = time.time() + 120
    while not all(r.exists() for r in readies) and time.time() < deadline:
        time.sleep(0.01)
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _out, err in outs]
    (start1, end1), (start2, end2) = (map(float, out.split()) for out, _err in outs)
    assert max(start1, start2) < min(end1, end2)  # the two migrations really overlapped in time

    init_db(engine)
    init_db(engine)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM alembic_version")) == 1
        assert migrations.current(conn) == migrations.head()
    assert schema_diff(engine) == []


def test_db_current_and_upgrade_commands_on_a_fresh_data_dir(tmp_path, monkeypatch, capsys):
    data_dir = tmp_path / "var"
    monkeypatch.setenv("OTCDESK_DATA_DIR", str(data_dir))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    database = f"sqlite:///{data_dir.resolve() / 'otcdesk.db'}"
    head = migrations.head()

    def run(*argv):
        assert main(list(argv)) == 0
        [line] = capsys.readouterr().out.splitlines()
        return json.loads(line)

    assert run("db", "current") == {"database": database, "current": None, "head": head, "up_to_date": False}
    assert not data_dir.exists()  # reading the revision creates nothing
    assert run("db", "upgrade") == {"database": database, "from": None, "stamped": None, "current": head,
                                    "head": head}
    assert run("db", "current") == {"database": database, "current": head, "head": head, "up_to_date": True}
    assert run("db", "upgrade")["from"] == head


def test_db_upgrade_refuses_an_unknown_schema_with_a_json_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OTCDESK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    engine = make_engine(f"sqlite:///{tmp_path / 'otcdesk.db'}")
    SQLModel.metadata.create_all(engine, tables=[migrations.desk_metadata().tables["user"]])
    engine.dispose()
    assert main(["db", "upgrade"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert "lacks" in doc["error"] and doc["detail"]["database"].endswith("otcdesk.db")


def test_template_withdrawal_revision_keeps_the_stored_versions_not_withdrawn(engine):
    """0009 adds `withdrawn_at`/`withdrawn_by` to `structure_template`: a version stored under 0008 stays, not
    withdrawn; the revision downgrades and upgrades again."""
    from otcdesk.app.models import StructureTemplate

    with engine.begin() as conn:
        command.upgrade(migrations.alembic_config(conn), "0008")
        conn.execute(text("INSERT INTO structure_template (structure, version, document, sha256, source, uploaded_by, "
                          "uploaded_at) VALUES ('mig_capped', 1, '{}', 'abc', 'upload', 'admin1', :at)"),
                     {"at": datetime.now(timezone.utc)})
    assert "withdrawn_at" not in {c["name"] for c in inspect(engine).get_columns("structure_template")}
    assert migrations.upgrade(engine)["current"] == migrations.head()
    columns = {c["name"]: c for c in inspect(engine).get_columns("structure_template")}
    assert columns["withdrawn_at"]["nullable"] and columns["withdrawn_by"]["nullable"]
    with Session(engine) as s:
        row = s.exec(select(StructureTemplate)).one()
        assert (row.structure, row.withdrawn_at, row.withdrawn_by) == ("mig_capped", None, None)
    assert schema_diff(engine) == []
    with engine.begin() as conn:
        command.downgrade(migrations.alembic_config(conn), "0008")
    assert {"withdrawn_at", "withdrawn_by"}.isdisjoint(c["name"] for c in inspect(engine).get_columns("structure_template"))
    assert migrations.upgrade(engine)["current"] == migrations.head() and schema_diff(engine) == []
