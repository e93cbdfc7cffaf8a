"""Session migration batches: `manage.py migrate_sessions_to_study_tasks` stamps every path, task,
event and evaluation it creates with its batch, so `--rollback BATCH` removes exactly those rows.

Task events stay append-only with one exception: a row carrying a batch id may be deleted (the
rollback). UPDATE is still always rejected, so no ordinary event can be given a batch id to make
it deletable; events the service writes never carry one.

SQLite: adding a nullable column keeps the table (and its triggers), but removing a foreign key
rebuilds it and drops them. So the operations run in an order that also holds backwards: the
original triggers of 0002 are put back last when unapplying, after the table was rebuilt.
"""

import importlib

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

append_only = importlib.import_module("study_paths.migrations.0002_task_event_immutable")
TABLE, MESSAGE = append_only.TABLE, append_only.MESSAGE

POSTGRESQL_FORWARD = [
    f"DROP TRIGGER IF EXISTS task_event_no_update_or_delete ON {TABLE};",
    f"""
    CREATE OR REPLACE FUNCTION study_paths_task_event_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'DELETE' AND OLD.migration_batch_id IS NOT NULL THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION USING MESSAGE = '{MESSAGE}: ' || TG_OP || ' rejected', ERRCODE = 'integrity_constraint_violation';
    END;
    $$;
    """,
    f"""
    CREATE TRIGGER task_event_no_update_or_delete BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION study_paths_task_event_immutable();
    """,
]
SQLITE_FORWARD = [
    "DROP TRIGGER IF EXISTS task_event_no_delete;",
    f"""
    CREATE TRIGGER task_event_no_delete BEFORE DELETE ON {TABLE} WHEN OLD.migration_batch_id IS NULL
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}: DELETE rejected'); END;
    """,
]
FORWARD = {"postgresql": POSTGRESQL_FORWARD, "sqlite": SQLITE_FORWARD}


def _vendor(schema_editor) -> str:
    vendor = schema_editor.connection.vendor
    if vendor not in FORWARD:
        raise NotImplementedError(f"no append-only triggers for the {vendor} backend")
    return vendor


def allow_batch_deletes(apps, schema_editor) -> None:
    for statement in FORWARD[_vendor(schema_editor)]:
        schema_editor.execute(statement, params=None)  # no placeholders: SQL as written


def original_triggers(apps, schema_editor) -> None:
    """0002's triggers, whatever is there now (a rebuilt SQLite table has none)."""
    append_only.drop_triggers(apps, schema_editor)
    append_only.create_triggers(apps, schema_editor)


def drop_triggers(apps, schema_editor) -> None:
    """The triggers as they stand after this migration, dropped (tests lift them to flush SQLite)."""
    append_only.drop_triggers(apps, schema_editor)


def create_triggers(apps, schema_editor) -> None:
    """The triggers as they stand after this migration."""
    append_only.create_triggers(apps, schema_editor)
    allow_batch_deletes(apps, schema_editor)


def nothing(apps, schema_editor) -> None:
    return None


class Migration(migrations.Migration):
    dependencies = [
        ("study_paths", "0004_study_task_list_order_index"),
    ]

    operations = [
        # Backwards, this runs last: 0002's triggers again on the rebuilt table.
        migrations.RunPython(nothing, original_triggers, elidable=False),
        migrations.CreateModel(
            name="SessionMigrationBatch",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("learner_id", models.CharField(blank=True, default="", help_text="`--learner`, when given.", max_length=255)),
                ("since", models.DateTimeField(blank=True, help_text="`--since`, when given.", null=True)),
                (
                    "created",
                    models.JSONField(blank=True, default=dict, help_text="Rows created: {paths, tasks, evaluations, events}."),
                ),
                ("started_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("rolled_back_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "ordering": ("id",),
            },
        ),
        migrations.AddField(
            model_name="studypath",
            name="migration_batch",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="study_paths.sessionmigrationbatch",
            ),
        ),
        migrations.AddField(
            model_name="studytask",
            name="migration_batch",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="study_paths.sessionmigrationbatch",
            ),
        ),
        migrations.AddField(
            model_name="taskevaluation",
            name="migration_batch",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="study_paths.sessionmigrationbatch",
            ),
        ),
        migrations.AddField(
            model_name="taskevent",
            name="migration_batch",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="study_paths.sessionmigrationbatch",
            ),
        ),
        # Backwards, this runs first; it is undone by the rebuild (SQLite) or by original_triggers.
        migrations.RunPython(allow_batch_deletes, nothing, elidable=False),
    ]
