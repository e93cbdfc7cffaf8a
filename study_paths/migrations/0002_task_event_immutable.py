"""Task events are append-only in the database itself: triggers reject UPDATE and DELETE, so no
code path (the ORM, the admin, raw SQL, a bug) can rewrite the audit trail.

Both backends raise an integrity error (Django's IntegrityError). PostgreSQL's TRUNCATE is left
alone: it is what test databases are flushed with, and it needs table-level privileges anyway.
SQLite drops a table's triggers when Django rebuilds the table, so a later migration that alters
TaskEvent on SQLite must re-create them (test_task_event_triggers_exist catches that).
"""

from django.db import migrations

TABLE = "study_paths_taskevent"
MESSAGE = "task events are append-only"

POSTGRESQL_FORWARD = [
    f"""
    CREATE FUNCTION study_paths_task_event_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION USING MESSAGE = '{MESSAGE}: ' || TG_OP || ' rejected', ERRCODE = 'integrity_constraint_violation';
    END;
    $$;
    """,
    f"""
    CREATE TRIGGER task_event_no_update_or_delete BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION study_paths_task_event_immutable();
    """,
]
POSTGRESQL_BACKWARD = [
    f"DROP TRIGGER IF EXISTS task_event_no_update_or_delete ON {TABLE};",
    "DROP FUNCTION IF EXISTS study_paths_task_event_immutable();",
]

SQLITE_FORWARD = [
    f"""
    CREATE TRIGGER task_event_no_update BEFORE UPDATE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}: UPDATE rejected'); END;
    """,
    f"""
    CREATE TRIGGER task_event_no_delete BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}: DELETE rejected'); END;
    """,
]
SQLITE_BACKWARD = ["DROP TRIGGER IF EXISTS task_event_no_update;", "DROP TRIGGER IF EXISTS task_event_no_delete;"]

STATEMENTS = {
    "postgresql": (POSTGRESQL_FORWARD, POSTGRESQL_BACKWARD),
    "sqlite": (SQLITE_FORWARD, SQLITE_BACKWARD),
}


def _statements(schema_editor, direction: int) -> list[str]:
    vendor = schema_editor.connection.vendor
    if vendor not in STATEMENTS:
        # Fail closed: a backend without the triggers would silently allow rewriting events.
        raise NotImplementedError(f"no append-only triggers for the {vendor} backend")
    return STATEMENTS[vendor][direction]


def create_triggers(apps, schema_editor) -> None:
    for statement in _statements(schema_editor, 0):
        schema_editor.execute(statement, params=None)  # no placeholders: SQL as written


def drop_triggers(apps, schema_editor) -> None:
    for statement in _statements(schema_editor, 1):
        schema_editor.execute(statement, params=None)  # no placeholders: SQL as written


class Migration(migrations.Migration):
    dependencies = [("study_paths", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers, elidable=False)]
