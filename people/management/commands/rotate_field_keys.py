"""``manage.py rotate_field_keys``: re-encrypt personal data with the current field key.

Add the new key at the front of ``FIELD_ENCRYPTION_KEYS`` (keep the old ones after it), deploy,
run this command, then remove the old keys. Rows already under the current key are skipped, so
the command can be interrupted and run again.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.utils.translation import gettext as _

from people.crypto import get_cipher
from people.models import Party

ENCRYPTED_COLUMNS = ["phone", "id_number", "address"]


class Command(BaseCommand):
    help = _("用当前密钥重新加密当事人的电话、身份证号码和住址（可重复执行）")

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, **options):
        stats = rotate_field_keys(batch_size=options["batch_size"])
        self.stdout.write(
            _("已检查 %(rows)d 行，重新加密 %(fields)d 个字段（当前密钥 %(kid)s）") % stats
        )


def rotate_field_keys(*, batch_size: int = 500) -> dict:
    """Re-encrypt every encrypted column not under the current key, in batches by primary key.

    The raw tokens are read with a cursor (not through the model, which would decrypt), and
    each batch is rewritten in its own transaction with the rows locked, so a clerk saving a
    party at the same moment is neither lost nor overwritten with a stale value.
    """
    cipher = get_cipher()
    table = Party._meta.db_table
    columns = ", ".join(ENCRYPTED_COLUMNS)
    last_pk, rows, fields = 0, 0, 0
    while True:
        with transaction.atomic():
            lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT id, {columns} FROM {table} WHERE id > %s "  # noqa: S608 - constants
                    f"ORDER BY id LIMIT %s{lock}",
                    [last_pk, batch_size],
                )
                batch = cursor.fetchall()
                if not batch:
                    break
                for pk, *tokens in batch:
                    changes = {}
                    for column, token in zip(ENCRYPTED_COLUMNS, tokens, strict=True):
                        if token and cipher.kid_of(token) != cipher.current_kid:
                            changes[column] = cipher.encrypt(cipher.decrypt(token))
                    if changes:
                        assignments = ", ".join(f"{c} = %s" for c in changes)
                        cursor.execute(
                            f"UPDATE {table} SET {assignments} WHERE id = %s",  # noqa: S608
                            [*changes.values(), pk],
                        )
                        fields += len(changes)
                rows += len(batch)
                last_pk = batch[-1][0]
    return {"rows": rows, "fields": fields, "kid": cipher.current_kid}
