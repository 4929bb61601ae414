"""Attachments at intake: real photos and PDFs are kept; empty, oversized and disguised are not."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from dispatch.models import Attachment, Case
from tests.intake import intake_helpers
from tests.intake.intake_helpers import NARRATIVE, intake_data

pytestmark = pytest.mark.django_db
cats = intake_helpers.cats


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


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
            parties=[PartyData(role="applicant", name="王五", phone="13600001111")],
        )
    assert not Case.objects.exists()
    assert not list(tmp_path.rglob("*.pdf"))
