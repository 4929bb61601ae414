"""Shared builders for the intake and tracking tests (imported, not a conftest)."""

from __future__ import annotations

import uuid

from dispatch import services
from dispatch.models import Case
from people.models import Role
from tests import factories as f

APPLICANT = {
    "name": "王小明",
    "phone": "13912345678",
    "id_number": "11010519491231002X",
    "address": "东关村三组12号",
}
NARRATIVE = "楼上住户每晚十一点后装修，电钻声持续两小时，多次协商未果。"


def intake_data(tree, *, key=None, **overrides) -> dict:
    """The POST body of the intake screen, as a browser sends it."""
    data = {
        "intake_key": str(key or uuid.uuid4()),
        "action": "save",
        "channel": "window",
        "category": "矛盾纠纷 / 邻里纠纷",
        "grade": "ordinary",
        "summary": "楼上装修噪音扰民",
        "narrative": NARRATIVE,
        "region": str(tree.village_a1.pk),
        "address_detail": "东关村三组",
        "accused_unit": "",
        "outcome": "register",
        "result": "",
        "reject_reason": "",
        "referral": "",
        "applicants-TOTAL_FORMS": "1",
        "applicants-INITIAL_FORMS": "0",
        "applicants-MIN_NUM_FORMS": "1",
        "applicants-MAX_NUM_FORMS": "20",
        "applicants-0-name": APPLICANT["name"],
        "applicants-0-phone": APPLICANT["phone"],
        "applicants-0-id_number": APPLICANT["id_number"],
        "applicants-0-address": APPLICANT["address"],
        "respondents-TOTAL_FORMS": "1",
        "respondents-INITIAL_FORMS": "0",
        "respondents-MIN_NUM_FORMS": "1",
        "respondents-MAX_NUM_FORMS": "20",
        "respondents-0-name": "李四",
        "respondents-0-phone": "",
        "respondents-0-id_number": "",
        "respondents-0-address": "",
    }
    data.update(overrides)
    return data


def register_via_http(client, tree, **overrides) -> Case:
    response = client.post("/intake/", intake_data(tree, **overrides))
    assert response.status_code == 302, response.content.decode()[:3000]
    code = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    assert client.get(response["Location"]).status_code == 200  # shows (and consumes) the notice
    return Case.objects.get(code=code)


def drive_to_feedback(case, tree, people, *, now=None):
    """Dispatch to the township police station, sign and report back, through the services."""
    handler = f.user(role=Role.HANDLER, unit=tree.police_a)
    profile = f.profile()
    services.dispatch_case(
        case=case, actor=people.erin, unit=tree.police_a, profile=profile, now=now
    )
    services.sign_case(case=case, actor=handler, now=now)
    services.submit_feedback(case=case, actor=handler, result="已调解，双方达成协议", now=now)
    case.refresh_from_db()
    return case


def drive_to_archive(case, tree, people, *, now=None):
    """``drive_to_feedback``, then the county supervisor verifies and archives it."""
    case = drive_to_feedback(case, tree, people, now=now)
    services.verify_case(case=case, actor=people.dave, passed=True, now=now)
    case.refresh_from_db()
    return case
