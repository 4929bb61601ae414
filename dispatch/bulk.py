"""Inserting many rows at once: COPY on PostgreSQL, ``bulk_create`` elsewhere.

``bulk_create`` on PostgreSQL binds every column of every row as an array parameter; for the
thousands of events, alerts and messages of a sweep that binding costs more than the insert.
COPY takes the same values as rows of a stream: the values of plain columns as they are,
the others (JSON, encrypted text) prepared by their field, as ``bulk_create`` prepares them.
Constraints hold as for any insert.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import connection, models, transaction

# Fields whose Python value is what the column takes (psycopg adapts it); exact types only, so
# that a subclass with its own preparation (an encrypted text field) is prepared by it.
PLAIN = frozenset(
    {
        models.BigIntegerField,
        models.BooleanField,
        models.CharField,
        models.DateField,
        models.DateTimeField,
        models.ForeignKey,
        models.IntegerField,
        models.PositiveIntegerField,
        models.PositiveSmallIntegerField,
        models.SmallIntegerField,
        models.TextField,
    }
)
# Above this many rows, a conflict-ignoring insert goes through a temporary table.
COPY_FROM = 100


def insert(
    model: type[models.Model], rows: Sequence[models.Model], *, ignore_conflicts: bool = False
) -> None:
    """Insert ``rows`` (new instances of ``model``); their primary keys are not read back.

    ``ignore_conflicts``: rows that would break a unique constraint are skipped.
    """
    if not rows:
        return
    if connection.vendor != "postgresql" or (ignore_conflicts and len(rows) < COPY_FROM):
        model._default_manager.bulk_create(rows, ignore_conflicts=ignore_conflicts)
        return
    fields = [
        field
        for field in model._meta.concrete_fields
        if not (field.primary_key and isinstance(field, models.AutoField | models.BigAutoField))
    ]
    plain = [type(field) in PLAIN for field in fields]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    # One savepoint: a failure part-way leaves neither rows nor the temporary table behind.
    with transaction.atomic(), connection.cursor() as cursor:
        target = table
        if ignore_conflicts:
            target = connection.ops.quote_name(f"bulk_{model._meta.db_table}")
            cursor.execute(f"DROP TABLE IF EXISTS {target}")
            cursor.execute(
                f"CREATE TEMPORARY TABLE {target} AS "  # noqa: S608 - names from the model
                f"SELECT {columns} FROM {table} WITH NO DATA"
            )
        with cursor.copy(f"COPY {target} ({columns}) FROM STDIN") as copy:
            for row in rows:
                values = [field.pre_save(row, True) for field in fields]
                copy.write_row(
                    [
                        value if is_plain else field.get_db_prep_save(value, connection)
                        for field, value, is_plain in zip(fields, values, plain, strict=True)
                    ]
                )
        if ignore_conflicts:
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {target} "  # noqa: S608
                "ON CONFLICT DO NOTHING"
            )
            cursor.execute(f"DROP TABLE {target}")
