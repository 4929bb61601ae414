"""Attachments at intake: real photos and PDFs are kept; empty, oversized and disguised are not."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from dispatch.models import Attachment, Case
from tests.factories import PDF, png_bytes
from tests.intake.intake_helpers import NARRATIVE, intake_data

pytestmark = pytest.mark.django_db


def post(client, tree, *files):
    data = intake_data(tree)
    data["attachments"] = list(files)
    return client.post("/intake/", data)


def test_photo_and_pdf_are_stored_with_their_hash(client, tree, people, cats, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(people.alice)
    photo = png_bytes()
    response = post(
        client,
        tree,
        SimpleUploadedFile("现场.png", photo, "image/png"),
        SimpleUploadedFile("scan.pdf", PDF, "application/pdf"),
    )
    assert response.status_code == 302
    case = Case.objects.get()
    rows = {a.original_name: a for a in Attachment.objects.filter(case=case)}
    assert set(rows) == {"现场.png", "scan.pdf"}
    assert rows["现场.png"].sha256 == hashlib.sha256(photo).hexdigest()
    assert rows["现场.png"].content_type == "image/png"
    assert rows["scan.pdf"].content_type == "application/pdf"
    assert rows["现场.png"].file.read() == photo


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.jpg", b"", "是空文件"),
        ("page.jpg", b"<html><script>alert(1)</script></html>", "不是可接受的图片或PDF"),
        (
            "logo.jpg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "不是可接受的图片或PDF",
        ),
        ("fake.pdf", b"MZ\x90\x00 not a pdf", "不是可接受的图片或PDF"),
        ("broken.png", png_bytes()[:40], "不是可接受的图片或PDF"),
    ],
)
def test_bad_attachments_are_refused_and_the_form_kept(
    client, tree, people, cats, settings, tmp_path, name, content, message
):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(people.alice)
    response = post(client, tree, SimpleUploadedFile(name, content, "image/jpeg"))
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert NARRATIVE in body
    assert not Case.objects.exists()
    assert not list(tmp_path.rglob("*.*"))  # nothing written to disk


def test_oversized_attachment_is_refused(client, tree, people, cats, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.ATTACHMENT_MAX_BYTES = 1024
    client.force_login(people.alice)
    big = PDF + b"0" * 2048
    response = post(client, tree, SimpleUploadedFile("big.pdf", big, "application/pdf"))
    assert response.status_code == 400
    assert "超过大小上限" in response.content.decode()
    assert not Case.objects.exists()


def test_files_are_removed_when_no_case_comes_of_them(tree, people, cats, settings, tmp_path):
    import uuid

    from intake import attachments as att
    from intake.services import IntakeError, Outcome, PartyData, intake_case
    from people.services import PartyDetails

    settings.MEDIA_ROOT = tmp_path
    checked = att.check_upload(SimpleUploadedFile("a.pdf", PDF))
    accused = tree.centre_a  # a centre cannot take a complaint about itself: refused
    with pytest.raises(IntakeError):
        intake_case(
            actor=people.alice,
            outcome=Outcome.REGISTER,
            intake_key=uuid.uuid4(),
            channel="window",
            category=cats["neighbour"],
            summary="投诉窗口态度",
            region=tree.village_a1,
            accused_unit=accused,
            files=[checked],
            parties=[
                PartyData(role="applicant", details=PartyDetails(name="王五", phone="13600001111"))
            ],
        )
    assert not Case.objects.exists()
    assert not list(tmp_path.rglob("*.pdf"))


def test_files_are_kept_while_the_clerk_corrects_the_form(
    client, tree, people, cats, settings, tmp_path
):
    import re

    settings.MEDIA_ROOT = tmp_path
    client.force_login(people.alice)
    photo = png_bytes()
    data = intake_data(tree, **{"applicants-0-phone": "123"})  # a bad phone: re-rendered
    data["attachments"] = [SimpleUploadedFile("现场.png", photo, "image/png")]
    first = client.post("/intake/", data)
    assert first.status_code == 400
    body = first.content.decode()
    assert "现场.png" in body and "无需重新选择" in body
    token = re.search(r'name="pending_attachments" value="([^"]+)"', body).group(1)

    fixed = intake_data(tree, key=data["intake_key"], pending_attachments=token)
    assert client.post("/intake/", fixed).status_code == 302
    attachment = Attachment.objects.get(case=Case.objects.get())
    assert attachment.original_name == "现场.png"
    assert attachment.sha256 == hashlib.sha256(photo).hexdigest()
    assert attachment.file.read() == photo


def test_a_forged_pending_list_names_no_file(client, tree, people, cats, settings, tmp_path):
    from django.core import signing

    from intake import attachments as att

    settings.MEDIA_ROOT = tmp_path
    client.force_login(people.alice)
    forged = signing.dumps(
        [
            {
                "name": "../../etc/passwd",
                "original_name": "x",
                "size": 1,
                "content_type": "image/png",
                "sha256": "0",
            }
        ],
        salt="other",
    )
    ours_but_outside = att.sign_pending(
        [
            {
                "name": "receipts/2026/11/x.pdf",
                "original_name": "x",
                "size": 1,
                "content_type": "application/pdf",
                "sha256": "0",
            }
        ]
    )
    for value in (forged, ours_but_outside, "garbage"):
        response = client.post(
            "/intake/", intake_data(tree, pending_attachments=value, confirm_new="on")
        )
        assert response.status_code == 302
    assert not Attachment.objects.exists()


def test_linking_carries_the_files_to_the_existing_case(
    client, tree, people, cats, settings, tmp_path
):
    from tests.intake.intake_helpers import register_via_http

    settings.MEDIA_ROOT = tmp_path
    client.force_login(people.alice)
    first = register_via_http(client, tree)
    data = intake_data(tree, link_to=first.code)
    data["attachments"] = [SimpleUploadedFile("补充.pdf", PDF, "application/pdf")]
    assert client.post("/intake/", data).status_code == 302
    assert Case.objects.count() == 1
    attachment = Attachment.objects.get(case=first)
    assert attachment.original_name == "补充.pdf"
    assert attachment.event.action == "case.linked"
