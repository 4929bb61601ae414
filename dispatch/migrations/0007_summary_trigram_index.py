"""The trigram index the intake's duplicate search reads on PostgreSQL (SQLite compares in Python)."""

from django.db import migrations

INDEX = "dispatch_case_summary_trgm"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON dispatch_case USING gin (summary gin_trgm_ops)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("dispatch", "0006_work_list_indexes")]

    operations = [migrations.RunPython(create, drop)]
