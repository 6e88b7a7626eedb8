"""The Alembic environment: online only, on the connection `otcdesk.app.migrations` puts in the config.

`target_metadata` is set only when drafting a revision (`python -m otcdesk.app.migrations`); upgrades
run the revision modules and need no models. SQLite drafts use batch operations (table copies), the
only way SQLite alters most things.
"""
from alembic import context
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from otcdesk.app.migrations import include_name


def render_item(type_, obj, _autogen_context):
    """Draft SQLModel's column types as the SQLAlchemy types they create, so revisions do not import sqlmodel."""
    if type_ == "type" and isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=context.config.attributes.get("target_metadata"),
    include_name=include_name,
    render_item=render_item,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
