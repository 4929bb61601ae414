"""Returning residents at the counter: found masked and by reference, never overwritten.

The lookup answers only what the resident standing at the counter can confirm; a match on a
known ID number or phone with other details is the clerk's decision, and every case keeps the
contact details it was registered with.
"""

from __future__ import annotations

import re

import pytest

from dispatch import recipients
from dispatch.models import Case
from intake import services as intake_services
from intake.selectors import case_for_lookup
from people.models import AuditRecord, Party, PartyChange
from tests.intake.intake_helpers import APPLICANT, intake_data, register_via_http

pytestmark = pytest.mark.django_db

ZHAO = {
    "applicants-0-name": "赵新民",
    "applicants-0-phone": "13812345678",
    "applicants-0-id_number": "11010519491231002X",
    "applicants-0-address": "东关村一组3号",
}
# The same ID number in its old 15-digit form, typed for somebody else.
WANG = {
    "applicants-0-name": "王五",
    "applicants-0-phone": "13900002222",
    "applicants-0-id_number": "110105491231002",
    "applicants-0-address": "",
    "confirm_new": "on",  # not a duplicate of case A: another request
}


def find(client, tree, term):
    empty = {f"applicants-0-{k}": "" for k in ("name", "phone", "id_number", "address")}
    return client.post("/intake/", intake_data(tree, action="find", find=term, **empty))


def known_ref(body: str) -> str:
    return re.search(r'name="applicants-0-known" value="([^"]+)"', body).group(1)


def test_a_returning_resident_is_offered_masked_and_attached_by_reference(
    client, tree, people, cats
):
    client.force_login(people.alice)
    first = register_via_http(client, tree)
    response = find(client, tree, "139 1234 5678")
    body = response.content.decode()
    assert response.status_code == 200
    assert "王*明" in body and "139****5678" in body
    for secret in ("王小明", APPLICANT["id_number"], APPLICANT["address"]):
        assert secret not in body
    assert first.code in body  # their case in the clerk's township is listed
    ref = known_ref(body)
    data = intake_data(
        tree,
        **{
            "applicants-0-known": ref,
            "applicants-0-name": "",
            "applicants-0-phone": APPLICANT["phone"],
            "applicants-0-id_number": "",
            "applicants-0-address": "",
            "confirm_new": "on",
        },
    )
    second = register_via_http(client, tree, **{k: v for k, v in data.items() if k != "intake_key"})
    [link] = second.case_parties.filter(role="applicant")
    assert link.party_id == first.case_parties.get(role="applicant").party_id
    # The details on file stand for what the clerk left empty.
    assert link.name == "王小明" and link.address == APPLICANT["address"]
    assert Party.objects.filter(name="王小明").count() == 1
    record = AuditRecord.objects.filter(action="party.lookup").get()
    assert record.user == people.alice and record.data == {"by": "phone", "found": 1}
    assert "5678" not in str(record.data)


def test_a_clerk_of_another_township_sees_only_the_masked_record(client, tree, people, cats):
    client.force_login(people.alice)
    first = register_via_http(client, tree)
    client.force_login(people.bob)
    body = find(client, tree, APPLICANT["phone"]).content.decode()
    assert "王*明" in body
    assert "王小明" not in body and APPLICANT["id_number"] not in body
    assert first.code not in body


def test_a_reference_works_only_for_the_clerk_who_looked_up(client, tree, people, cats):
    client.force_login(people.alice)
    register_via_http(client, tree)
    ref = known_ref(find(client, tree, APPLICANT["phone"]).content.decode())
    client.force_login(people.bob)
    data = intake_data(
        tree,
        region=str(tree.village_b1.pk),
        **{
            "applicants-0-known": ref,
            "applicants-0-name": "",
            "applicants-0-id_number": "",
            "applicants-0-address": "",
        },
    )
    response = client.post("/intake/", data)
    assert response.status_code == 400
    assert "当事人查找结果已过期" in response.content.decode()


def test_lookups_are_rate_limited_per_clerk(client, tree, people, cats):
    client.force_login(people.alice)
    for _ in range(intake_services.LOOKUP_LIMIT):
        assert "查找过于频繁" not in find(client, tree, "13700000000").content.decode()
    assert "查找过于频繁" in find(client, tree, "13700000000").content.decode()
    assert AuditRecord.objects.filter(action="party.lookup", outcome="limited").count() == 1
    client.force_login(people.bob)  # another clerk is not held back
    assert "查找过于频繁" not in find(client, tree, "13700000000").content.decode()


def test_a_matching_id_number_never_rewrites_another_residents_record(client, tree, people, cats):
    client.force_login(people.alice)
    case_a = register_via_http(client, tree, **ZHAO)
    response = client.post("/intake/", intake_data(tree, **WANG))
    assert response.status_code == 409
    body = response.content.decode()
    assert "赵*民" in body and "138****5678" in body and "赵新民" not in body
    assert 'name="applicants-0-same_person"' in body
    assert Case.objects.count() == 1
    person = case_a.case_parties.get(role="applicant").party
    person.refresh_from_db()
    assert person.name == "赵新民" and person.phone == "13812345678"

    # The clerk finds it is the same person (new name on file, new phone) and says so.
    confirmed = intake_data(tree, **WANG, **{"applicants-0-same_person": "on"})
    case_b = register_via_http(client, tree, **confirmed)
    person.refresh_from_db()
    assert person.name == "王五" and person.phone == "13900002222"
    assert case_b.case_parties.get(role="applicant").party == person
    [change] = PartyChange.objects.filter(party=person)
    assert change.old_name == "赵新民" and change.old_phone == "13812345678"
    assert change.changed_by == people.alice
    # Case A keeps what it was registered with: its page, its SMS, its lost-receipt lookup.
    link_a = recipients.applicant(case_a)
    assert link_a.name == "赵新民" and link_a.phone == "13812345678"
    assert case_for_lookup(case_a.code, "5678") == case_a
    assert case_for_lookup(case_a.code, "2222") is None
    assert recipients.applicant(case_b).phone == "13900002222"
    page = client.get(f"/cases/{case_a.code}/").content.decode()
    assert "赵*民" in page and "王*" not in page.split("当事人", 1)[1].split("</ul>", 1)[0]
