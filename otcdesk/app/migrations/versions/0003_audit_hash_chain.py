"""The audit log becomes a hash chain, and refuses REPLACE (SQLite) and TRUNCATE (PostgreSQL) as well.

Revision ID: 0003
Revises: 0002
Adds `prev_hash` and `entry_hash` (app/repositories/audit.py) and chains the existing rows in id order,
so `otcdesk audit verify` passes right after the upgrade. The append-only guards are lifted only
inside this transaction, to write the hashes. SQLite's REPLACE deletes the conflicting row without
firing delete triggers (unless `recursive_triggers` is on), hence a BEFORE INSERT guard on the id;
PostgreSQL row triggers do not see TRUNCATE, hence a statement trigger. A SQLite file's holder can
still DROP TRIGGER: the chain is what makes that visible.
"""
from alembic import op
import sqlalchemy as sa

from otcdesk.app.repositories.audit import GENESIS, chain

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 1000
_SQLITE_NO_UPDATE_DELETE = [
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END",
]
_SQLITE_NO_REPLACE = (
    "CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log "
    "WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id) "
    "BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END")
_PG_NO_TRUNCATE = ("CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()")
_AUDIT_LOG = sa.table(
    "audit_log", sa.column("id", sa.Integer()), sa.column("ts", sa.DateTime(timezone=True)),
    sa.column("actor", sa.String()), sa.column("action", sa.String()), sa.column("subject", sa.String()),
    sa.column("detail", sa.JSON()), sa.column("prev_hash", sa.String()), sa.column("entry_hash", sa.String()))


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:  # the table copy below drops triggers anyway; they are created again at the end
        op.execute("DROP TRIGGER audit_log_no_update")
        op.execute("DROP TRIGGER audit_log_no_delete")
    else:
        op.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
    op.add_column("audit_log", sa.Column("prev_hash", sa.String(length=64), nullable=True))
    op.add_column("audit_log", sa.Column("entry_hash", sa.String(length=64), nullable=True))
    _chain_existing_rows(op.get_bind())
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("entry_hash", existing_type=sa.String(length=64), nullable=False)
    if sqlite:
        for stmt in (*_SQLITE_NO_UPDATE_DELETE, _SQLITE_NO_REPLACE):
            op.execute(stmt)
    else:
        op.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only")
        op.execute(_PG_NO_TRUNCATE)


def _chain_existing_rows(bind) -> None:
    t, prev_hash, last_id = _AUDIT_LOG, GENESIS, None
    update = (sa.update(t).where(t.c.id == sa.bindparam("row_id"))
              .values(prev_hash=sa.bindparam("prev"), entry_hash=sa.bindparam("digest")))
    while True:
        q = sa.select(t.c.id, t.c.ts, t.c.actor, t.c.action, t.c.subject, t.c.detail).order_by(t.c.id).limit(_BATCH)
        rows = [r._asdict() for r in bind.execute(q if last_id is None else q.where(t.c.id > last_id))]
        if not rows:
            return
        links = list(chain(rows, prev_hash))
        bind.execute(update, [{"row_id": i, "prev": p, "digest": d} for i, p, d in links])
        last_id, _, prev_hash = links[-1]


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        for name in ("audit_log_no_replace", "audit_log_no_update", "audit_log_no_delete"):
            op.execute(f"DROP TRIGGER {name}")
    else:
        op.execute("DROP TRIGGER audit_log_no_truncate ON audit_log")
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.drop_column("entry_hash")
        batch_op.drop_column("prev_hash")
    if sqlite:
        for stmt in _SQLITE_NO_UPDATE_DELETE:
            op.execute(stmt)
