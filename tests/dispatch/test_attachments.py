"""Handlers record progress and feedback with photos and PDFs; only staff in scope see them."""

from __future__ import annotations

import hashlib
import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import ExifTags, Image, ImageSequence

from dispatch import services
from dispatch.attachments import check_upload
from dispatch.models import Attachment, CaseEvent
from dispatch.states import Action, Status
from tests.dispatch import loopkit
from tests.dispatch.loopkit import in_progress
from tests.factories import PDF, png_bytes

pytestmark = pytest.mark.django_db
loop = loopkit.loop  # the fixture


def stored_files(root) -> list:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


NOTE = "现场已整改，附照片和检测报告"


def _post(client, case, action, files=(), **fields):
    """Post one action of the case page as the browser does, files in the multipart body."""
    data = {f"{action}-{key}": value for key, value in fields.items()}
    data[f"{action}-seen"] = type(case).objects.get(pk=case.pk).event_count
    data[f"{action}-attachments"] = list(files)
    return client.post(f"/cases/{case.code}/{action}/", data)


def _post_progress(client, case, *files):
    return _post(client, case, "progress", files, note=NOTE, is_public="on")


def test_progress_with_a_photo_and_a_pdf_links_them_to_the_event(client, tree, people, loop, media):
    case = in_progress(tree, people, loop)
    photo = png_bytes()
    client.force_login(loop.police)
    page = client.get(f"/cases/{case.code}/").content.decode()
    assert 'enctype="multipart/form-data"' in page
    assert 'name="progress-attachments"' in page and "multiple" in page

    response = _post_progress(
        client,
        case,
        SimpleUploadedFile("整改照片.png", photo, "image/png"),
        SimpleUploadedFile("检测报告.pdf", PDF, "application/pdf"),
    )
    assert response.status_code == 302, response.content.decode()[-800:]

    event = CaseEvent.objects.get(case=case, action=Action.PROGRESS)
    rows = {a.original_name: a for a in Attachment.objects.filter(case=case)}
    assert set(rows) == {"整改照片.png", "检测报告.pdf"}
    assert all(a.event_id == event.pk and a.uploaded_by == loop.police for a in rows.values())
    assert rows["整改照片.png"].content_type == "image/png"
    assert rows["整改照片.png"].sha256 == hashlib.sha256(photo).hexdigest()
    assert rows["检测报告.pdf"].content_type == "application/pdf"
    assert len(stored_files(media)) == 2

    page = client.get(f"/cases/{case.code}/").content.decode()
    url = f"/cases/{case.code}/attachments/{rows['整改照片.png'].pk}/"
    assert f'href="{url}"' in page and "整改照片.png" in page

    for user in (loop.police, people.erin):  # the handler and the township's dispatcher
        viewer = Client()
        viewer.force_login(user)
        download = viewer.get(url)
        assert download.status_code == 200
        assert b"".join(download.streaming_content) == photo
        assert download["Content-Type"] == "image/png"
        assert download["Content-Disposition"].startswith("attachment;")
        assert download["X-Content-Type-Options"] == "nosniff"

    other = Client()
    other.force_login(people.bob)  # clerk of township B: not his case
    assert other.get(url).status_code == 404
    assert other.get(f"/cases/{case.code}/attachments/999999/").status_code == 404

    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/login" in anonymous["Location"]


def test_an_attachment_of_another_case_is_not_served_under_this_one(
    client, tree, people, loop, media
):
    mine = in_progress(tree, people, loop)
    other = in_progress(tree, people, loop)
    services.record_progress(
        case=other,
        actor=loop.police,
        note="另一案件的照片",
        files=[check_upload(SimpleUploadedFile("其他.png", png_bytes()))],
    )
    row = Attachment.objects.get(case=other)
    client.force_login(loop.police)
    assert client.get(f"/cases/{mine.code}/attachments/{row.pk}/").status_code == 404
    assert client.get(f"/cases/{other.code}/attachments/{row.pk}/").status_code == 200


def test_a_disguised_file_is_refused_and_nothing_is_saved(client, tree, people, loop, media):
    case = in_progress(tree, people, loop)
    events_before = case.events.count()
    client.force_login(loop.police)
    response = _post_progress(
        client,
        case,
        SimpleUploadedFile("现场.png", png_bytes(), "image/png"),
        SimpleUploadedFile("照片.jpg", b"<html><script>alert(1)</script></html>", "image/jpeg"),
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "附件“照片.jpg”不是可接受的图片或PDF文件" in body
    assert NOTE in body  # what was typed is kept
    assert case.events.count() == events_before
    assert not CaseEvent.objects.filter(case=case, action=Action.PROGRESS).exists()
    assert not Attachment.objects.exists()
    assert stored_files(media) == []


def test_files_are_removed_when_the_transaction_fails(tree, people, loop, media):
    case = in_progress(tree, people, loop)
    checked = [check_upload(SimpleUploadedFile("a.pdf", PDF))]
    with pytest.raises(services.DispatchError):
        # Bob handles nothing on this case: refused inside the transaction, after the write.
        services.record_progress(case=case, actor=people.bob, note="进展", files=checked)
    assert not Attachment.objects.exists()
    assert stored_files(media) == []


def test_feedback_with_attachments(client, tree, people, loop, media):
    case = in_progress(tree, people, loop)
    client.force_login(loop.police)
    response = _post(
        client,
        case,
        "feedback",
        [SimpleUploadedFile("拆除后.png", png_bytes())],
        result="已拆除违章搭建",
    )
    assert response.status_code == 302, response.content.decode()[-800:]
    case.refresh_from_db()
    assert case.status == Status.FEEDBACK
    row = Attachment.objects.get(case=case)
    assert row.event.action == Action.FEEDBACK and row.original_name == "拆除后.png"
    client.force_login(loop.sup_a)
    page = client.get(f"/cases/{case.code}/").content.decode()
    assert f"/cases/{case.code}/attachments/{row.pk}/" in page


def test_the_tracking_page_never_shows_attachments(client, tree, people, loop, media):
    case = in_progress(tree, people, loop)
    client.force_login(loop.police)
    assert (
        _post_progress(
            client, case, SimpleUploadedFile("内部照片-7f3a.png", png_bytes(), "image/png")
        ).status_code
        == 302
    )
    row = Attachment.objects.get(case=case)
    assert row.event.is_public  # the note itself is public
    case.refresh_from_db()
    page = Client().get(f"/t/{case.tracking_token}").content.decode()
    assert "办理进展" in page and tree.police_a.name in page  # the public progress is there ...
    assert "内部照片-7f3a" not in page  # ... its files are not
    assert "/attachments/" not in page
    assert row.file.name not in page


def _phone_photo() -> bytes:
    """A JPEG as a phone writes it: EXIF with the GPS position, the device, the time, and the
    orientation tag saying the picture is to be turned (stored 40 wide and 20 high, upright it
    is 20 wide and 40 high)."""
    image = Image.new("RGB", (40, 20), (200, 40, 40))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.DateTimeOriginal] = "2026:07:01 09:30:00"
    exif[ExifTags.Base.Orientation] = 6  # turn 90 degrees clockwise to view
    exif[ExifTags.IFD.GPSInfo] = {
        ExifTags.GPS.GPSLatitudeRef: "N",
        ExifTags.GPS.GPSLatitude: (39.0, 54.0, 27.0),
        ExifTags.GPS.GPSLongitudeRef: "E",
        ExifTags.GPS.GPSLongitude: (116.0, 23.0, 17.0),
    }
    buf = io.BytesIO()
    image.save(buf, format="JPEG", exif=exif, quality=95)
    return buf.getvalue()


def test_a_photo_is_stored_and_served_without_its_gps_and_upright(
    client, tree, people, loop, media
):
    photo = _phone_photo()
    with Image.open(io.BytesIO(photo)) as sent:  # the upload really carries the position
        assert sent.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    case = in_progress(tree, people, loop)
    client.force_login(loop.police)
    response = _post_progress(client, case, SimpleUploadedFile("现场.jpg", photo, "image/jpeg"))
    assert response.status_code == 302

    attachment = Attachment.objects.get(case=case)
    download = client.get(f"/cases/{case.code}/attachments/{attachment.pk}/")
    served = b"".join(download.streaming_content)
    (stored,) = stored_files(media)
    assert stored.read_bytes() == served
    assert attachment.sha256 == hashlib.sha256(served).hexdigest()
    assert attachment.size == len(served)
    for data in (served, stored.read_bytes()):
        assert b"Exif" not in data and b"PhoneMaker" not in data and b"2026:07:01" not in data
        with Image.open(io.BytesIO(data)) as kept:
            assert kept.format == "JPEG"
            assert not kept.getexif()
            assert kept.size == (20, 40)  # turned as the camera said, then the tag dropped
            red, green, blue = kept.convert("RGB").getpixel((10, 20))
            assert red > 150 and green < 100 and blue < 100


def test_every_page_of_a_scanned_tiff_is_kept_without_its_tags():
    pages = [Image.new("L", (30, 40), shade) for shade in (20, 120, 220)]
    buf = io.BytesIO()
    pages[0].save(
        buf,
        format="TIFF",
        save_all=True,
        append_images=pages[1:],
        tiffinfo={ExifTags.Base.Artist: "scanner-operator", ExifTags.Base.Make: "ScanCo"},
    )
    checked = check_upload(SimpleUploadedFile("调解协议.tif", buf.getvalue()))
    assert b"scanner-operator" not in checked.data and b"ScanCo" not in checked.data
    with Image.open(io.BytesIO(checked.data)) as kept:
        shades = [frame.getpixel((5, 5)) for frame in ImageSequence.Iterator(kept)]
    assert shades == [20, 120, 220]


def test_an_image_over_the_pixel_limit_is_refused_from_its_header():
    # 7,000 x 6,000 = 42 megapixels: a few kilobytes as a one-bit PNG, 126 MB once decoded.
    buf = io.BytesIO()
    Image.new("1", (7000, 6000)).save(buf, format="PNG")
    assert len(buf.getvalue()) < 100_000
    with pytest.raises(ValidationError) as refused:
        check_upload(SimpleUploadedFile("航拍.png", buf.getvalue()))
    assert "不是可接受的图片或PDF文件" in refused.value.messages[0]
