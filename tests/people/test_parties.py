"""Residents' phone, ID number and address are ciphertext at rest and found by blind index."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from people.models import Party, PartyChange, Role
from people.services import PartyConflictError, find_parties, save_party
from tests import factories as f

ID = "11010519491231002X"


def _raw_columns(pk: int) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT phone, id_number, address, phone_index, id_number_index "
            "FROM people_party WHERE id = %s",
            [pk],
        )
        row = cursor.fetchone()
    return dict(
        zip(["phone", "id_number", "address", "phone_index", "id_number_index"], row, strict=True)
    )


def test_encrypted_columns_hold_ciphertext(db):
    party = save_party(
        name="张三", phone="+86 138 1234 1234", id_number=ID, address="兴隆台镇东关村3组12号"
    )
    raw = _raw_columns(party.pk)
    for column, plain in [
        ("phone", "13812341234"),
        ("id_number", ID),
        ("address", "兴隆台镇东关村3组12号"),
    ]:
        assert raw[column].startswith("v1:")
        assert plain not in raw[column]
    assert "13812341234" not in raw["phone_index"] and len(raw["phone_index"]) == 64
    # Read back through the model: plaintext again, normalised.
    fresh = Party.objects.get(pk=party.pk)
    assert (fresh.phone, fresh.id_number, fresh.address) == (
        "13812341234",
        ID,
        "兴隆台镇东关村3组12号",
    )
    assert fresh.masked_phone == "138****1234"
    assert fresh.masked_id_number == "1101**********002X"
    assert str(fresh) == "张*"


def test_same_plaintext_gives_different_ciphertext(db):
    a = save_party(name="张三", phone="13812341234")
    b = save_party(name="李四", phone="13812341234")
    assert _raw_columns(a.pk)["phone"] != _raw_columns(b.pk)["phone"]
    assert _raw_columns(a.pk)["phone_index"] == _raw_columns(b.pk)["phone_index"]


def test_lookup_by_phone_and_id_number_in_any_typed_form(db):
    zhang = save_party(name="张三", phone="13812341234", id_number=ID)
    save_party(name="李四", phone="13900001111")
    assert find_parties(phone="138 1234 1234") == [zhang]
    assert find_parties(phone="＋８６１３８１２３４１２３４") == [zhang]
    assert find_parties(id_number=ID.lower()) == [zhang]
    assert find_parties(id_number="110105491231002") == [zhang]
    assert find_parties(phone="13700000000") == []
    assert find_parties() == []


def test_a_known_id_number_with_other_details_is_never_overwritten_silently(db):
    first = save_party(name="张三", phone="13812341234", id_number=ID)
    with pytest.raises(PartyConflictError) as conflict:
        save_party(name="张三", phone="13800000000", id_number=ID.lower())
    assert conflict.value.party == first and conflict.value.fields == ["phone"]
    assert Party.objects.get().phone == "13812341234"


def test_the_clerk_confirms_the_same_person_and_the_old_details_are_kept(db):
    clerk = f.user("clerk", role=Role.CLERK, region=f.region("139901000000", "县", "county"))
    first = save_party(name="张三", phone="13812341234", id_number=ID, address="东关村3组")
    again = save_party(
        name="张三", phone="13800000000", id_number=ID.lower(), actor=clerk, same_person=True
    )
    assert again.pk == first.pk and Party.objects.count() == 1
    assert Party.objects.get().phone == "13800000000"
    assert Party.objects.get().address == "东关村3组"  # not retyped: kept
    [change] = PartyChange.objects.filter(party=first)
    assert change.old_phone == "13812341234" and change.fields == ["phone"]
    assert change.changed_by == clerk


def test_the_same_details_again_are_the_same_person(db):
    first = save_party(name="张三", phone="13812341234", id_number=ID)
    assert save_party(name="张三", phone="", id_number=ID).pk == first.pk
    assert save_party(name="张三", phone="13812341234").pk == first.pk
    assert not PartyChange.objects.exists()


def test_encrypted_field_cannot_be_filtered_on(db):
    with pytest.raises(TypeError, match="encrypted"):
        Party.objects.filter(phone="13812341234")


def test_bad_id_number_is_refused_before_saving(db):
    with pytest.raises(ValidationError):
        save_party(name="张三", id_number=ID[:17] + "1")
    assert Party.objects.count() == 0
