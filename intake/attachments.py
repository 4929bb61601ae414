"""Uploaded photos, scans and PDFs: sniffed by content, hashed, stored outside the transaction.

A file is accepted for what it is, not for what it is called: images must open and verify in
Pillow, PDFs must start with ``%PDF-``. HTML, SVG or anything else named ``.jpg`` is refused.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

from dispatch.models import Attachment, Case

# Pillow format -> (content type, extension). SVG is not here on purpose: it can carry script.
IMAGE_FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "GIF": ("image/gif", "gif"),
    "WEBP": ("image/webp", "webp"),
    "BMP": ("image/bmp", "bmp"),
    "TIFF": ("image/tiff", "tif"),
}
MAX_FILES = 10
# Decompression bombs: refuse images with more pixels than a 60-megapixel scan.
MAX_PIXELS = 60_000_000


@dataclass
class CheckedFile:
    """An upload that passed the checks, held in memory until it is stored."""

    original_name: str
    content_type: str
    extension: str
    data: bytes
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)


def _safe_name(name: str) -> str:
    name = posixpath.basename((name or "").replace("\\", "/")).strip()
    return name[:200] or "upload"


def check_upload(upload) -> CheckedFile:
    """Read and sniff one uploaded file; raise ``ValidationError`` with a Chinese message."""
    name = _safe_name(getattr(upload, "name", ""))
    limit = settings.ATTACHMENT_MAX_BYTES
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise ValidationError(
            _("附件“%(name)s”超过大小上限（%(mb)d MB）") % {"name": name, "mb": limit // 2**20},
            code="too_large",
        )
    chunks = []
    total = 0
    for chunk in upload.chunks():
        total += len(chunk)
        if total > limit:
            raise ValidationError(
                _("附件“%(name)s”超过大小上限（%(mb)d MB）") % {"name": name, "mb": limit // 2**20},
                code="too_large",
            )
        chunks.append(chunk)
    data = b"".join(chunks)
    if not data:
        raise ValidationError(_("附件“%(name)s”是空文件") % {"name": name}, code="empty")
    content_type, extension = _sniff(data, name)
    return CheckedFile(
        original_name=name,
        content_type=content_type,
        extension=extension,
        data=data,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def _sniff(data: bytes, name: str) -> tuple[str, str]:
    if data.startswith(b"%PDF-"):
        return "application/pdf", "pdf"
    refused = ValidationError(
        _("附件“%(name)s”不是可接受的图片或PDF文件（仅限照片、扫描件和PDF）") % {"name": name},
        code="type",
    )
    try:
        with Image.open(io.BytesIO(data)) as image:
            fmt = image.format
            if fmt not in IMAGE_FORMATS:
                raise refused
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise refused
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise refused from None
    return IMAGE_FORMATS[fmt]


def store_files(files: list[CheckedFile]) -> list[tuple[CheckedFile, str]]:
    """Write the files to storage (before the transaction) and return their stored names."""
    stored = []
    today = timezone.localdate()
    for checked in files:
        path = f"attachments/{today:%Y/%m}/{uuid.uuid4().hex}.{checked.extension}"
        stored.append((checked, default_storage.save(path, ContentFile(checked.data))))
    return stored


PENDING_DIR = "attachments/pending/"
PENDING_SALT = "intake.pending-attachments"
PENDING_MAX_AGE = 24 * 3600


@dataclass
class StoredFile:
    """A checked file already in storage, carried across a re-rendered intake form."""

    original_name: str
    content_type: str
    size: int
    sha256: str


def stash_files(files: list[CheckedFile]) -> list[dict]:
    """Keep checked uploads while the clerk corrects the form; rows for ``sign_pending``."""
    today = timezone.localdate()
    rows = []
    for checked in files:
        path = f"{PENDING_DIR}{today:%Y/%m}/{uuid.uuid4().hex}.{checked.extension}"
        name = default_storage.save(path, ContentFile(checked.data))
        rows.append(
            {
                "name": name,
                "original_name": checked.original_name,
                "content_type": checked.content_type,
                "size": checked.size,
                "sha256": checked.sha256,
            }
        )
    return rows


def sign_pending(rows: list[dict]) -> str:
    """The hidden form value that names stashed files; signed so no other path can be named."""
    return signing.dumps(rows, salt=PENDING_SALT, compress=True) if rows else ""


def unsign_pending(value: str) -> list[dict]:
    if not value:
        return []
    try:
        rows = signing.loads(value, salt=PENDING_SALT, max_age=PENDING_MAX_AGE)
    except signing.BadSignature:
        return []
    return [
        r
        for r in rows
        if isinstance(r, dict)
        and str(r.get("name", "")).startswith(PENDING_DIR)
        and ".." not in r["name"]
    ]


def pending_as_stored(rows: list[dict]) -> list[tuple[StoredFile, str]]:
    return [
        (StoredFile(r["original_name"], r["content_type"], int(r["size"]), r["sha256"]), r["name"])
        for r in rows
    ]


def discard_files(stored: list[tuple[CheckedFile, str]]) -> None:
    """Remove files written for a case that was not created (rollback or a retried submit)."""
    for _checked, name in stored:
        default_storage.delete(name)


def attach_stored(
    *, case: Case, stored: list[tuple[CheckedFile | StoredFile, str]], actor
) -> list[Attachment]:
    """The rows for files already on disk; call inside the case's transaction."""
    return Attachment.objects.bulk_create(
        Attachment(
            case=case,
            file=name,
            original_name=checked.original_name,
            content_type=checked.content_type,
            size=checked.size,
            sha256=checked.sha256,
            uploaded_by=actor,
        )
        for checked, name in stored
    )
