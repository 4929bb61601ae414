"""Many rows at once (``dispatch.bulk``): what is read back is what was written."""

from __future__ import annotations

import pytest
from django.db import connection

from dispatch import bulk
from dispatch.models import CaseParty, Notification
from tests import factories as f
from tests.clock import at

pytestmark = pytest.mark.django_db


@pytest.fixture
def case(tree, people):
    return f.case(region=tree.village_a1, owner_unit=tree.centre_a, now=at(0, 9))


def _note(case, user, key):
    return Notification(
        dedup_key=key,
        channel=Notification.Channel.INBOX,
        recipient_id=user.pk,
        case_id=case.pk,
        kind="urged",
        title="督办",
        body=f"正文 {key}",
        language="zh-hans",
        state=Notification.State.SENT,
        created_at=at(0, 10),
        sent_at=at(0, 10),
    )


def test_many_rows_skip_the_keys_already_there_and_keep_every_field(case, people):
    bulk.insert(Notification, [_note(case, people.carol, f"k{i}") for i in range(0, 300, 2)])
    # 150 new rows and 150 whose keys are already there: enough for the COPY path.
    rows = [_note(case, people.dave, f"k{i}") for i in range(300)]
    assert len(rows) > bulk.COPY_FROM
    bulk.insert(Notification, rows, ignore_conflicts=True)
    stored = {n.dedup_key: n for n in Notification.objects.all()}
    assert len(stored) == 300
    assert stored["k0"].recipient_id == people.carol.pk  # the first writer's row stays
    assert stored["k1"].recipient_id == people.dave.pk and stored["k1"].body == "正文 k1"
    assert stored["k1"].created_at == at(0, 10) and stored["k1"].case_id == case.pk


def test_a_field_with_its_own_preparation_is_prepared_by_it(case):
    party = f.party()
    bulk.insert(
        CaseParty,
        [CaseParty(case=case, party=party, role="applicant", name="张三", phone="13912345678")],
    )
    stored = CaseParty.objects.get(case=case, party=party)
    assert stored.phone == "13912345678"
    with connection.cursor() as cursor:
        cursor.execute("SELECT phone FROM dispatch_caseparty WHERE id = %s", [stored.pk])
        (raw,) = cursor.fetchone()
    assert "13912345678" not in raw  # stored encrypted, as any save stores it


@pytest.mark.django_db(transaction=True)
def test_a_failed_insert_leaves_nothing_behind_and_the_next_one_works(case, people):
    """Outside a transaction too (each statement its own): no rows, no temporary table left."""
    from django.db import IntegrityError

    if connection.vendor != "postgresql":
        pytest.skip("the temporary table is PostgreSQL's (SQLite's OR IGNORE skips the row)")
    rows = [_note(case, people.dave, f"n{i}") for i in range(bulk.COPY_FROM + 1)]
    broken = _note(case, people.dave, "broken")
    broken.kind = None  # the column takes no NULL
    with pytest.raises(IntegrityError):
        bulk.insert(Notification, [*rows, broken], ignore_conflicts=True)
    assert not Notification.objects.exists()
    bulk.insert(Notification, rows, ignore_conflicts=True)
    assert Notification.objects.count() == len(rows)
