"""``manage.py rotate_field_keys`` moves every encrypted column to the current key."""

from __future__ import annotations

import base64
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from people.crypto import get_cipher
from people.models import Party
from people.services import find_parties, save_party

OLD = "old:" + base64.urlsafe_b64encode(b"o" * 32).decode()
NEW = "new:" + base64.urlsafe_b64encode(b"n" * 32).decode()
ID = "11010519491231002X"


@pytest.fixture(autouse=True)
def fresh_cipher():
    get_cipher.cache_clear()
    yield
    get_cipher.cache_clear()


def _raw_tokens() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT phone, id_number, address FROM people_party ORDER BY id")
        return [token for row in cursor.fetchall() for token in row if token]


def _rotate(batch_size: int = 2) -> str:
    out = io.StringIO()
    call_command("rotate_field_keys", "--batch-size", str(batch_size), stdout=out)
    return out.getvalue()


def test_rotation_re_encrypts_every_column_with_the_new_key(db):
    with override_settings(FIELD_ENCRYPTION_KEYS=OLD):
        get_cipher.cache_clear()
        zhang = save_party(name="张三", phone="13812341234", id_number=ID, address="东关村3组")
        for i in range(4):
            save_party(name=f"住户{i}", phone=f"1390000000{i}", address=f"西关村{i}组")
        save_party(name="无电话")
    assert _raw_tokens() and all(t.startswith("v1:old:") for t in _raw_tokens())

    with override_settings(FIELD_ENCRYPTION_KEYS=f"{NEW},{OLD}"):
        get_cipher.cache_clear()
        # Old rows stay readable while both keys are configured.
        assert Party.objects.get(pk=zhang.pk).id_number == ID
        # New writes use the new key at once.
        save_party(name="李四", phone="13700001111")
        output = _rotate()
        tokens = _raw_tokens()
        assert len(tokens) == 5 * 2 + 1 + 1  # 3 for 张三, 2 per 住户, 1 for 李四
        assert all(t.startswith("v1:new:") for t in tokens)
        assert "new" in output
        # Idempotent: a second run finds nothing to do.
        assert "重新加密 0 个字段" in _rotate()

    with override_settings(FIELD_ENCRYPTION_KEYS=NEW):
        get_cipher.cache_clear()
        fresh = Party.objects.get(pk=zhang.pk)
        assert (fresh.phone, fresh.id_number, fresh.address) == ("13812341234", ID, "东关村3组")
        # Blind indexes have their own key: lookups keep working across rotation.
        assert find_parties(id_number=ID) == [fresh]
        assert find_parties(phone="13900000003")[0].address == "西关村3组"


def test_without_the_old_key_old_rows_cannot_be_read(db):
    with override_settings(FIELD_ENCRYPTION_KEYS=OLD):
        get_cipher.cache_clear()
        zhang = save_party(name="张三", phone="13812341234")
    with override_settings(FIELD_ENCRYPTION_KEYS=NEW):
        get_cipher.cache_clear()
        with pytest.raises(ValueError, match="no key 'old'"):
            Party.objects.get(pk=zhang.pk)
