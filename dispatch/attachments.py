"""Uploaded photos, scans and PDFs: sniffed by content, hashed, stored outside the transaction.

A file is accepted for what it is, not for what it is called: images must open and verify in
Pillow, PDFs must start with ``%PDF-``. HTML, SVG or anything else named ``.jpg`` is refused.

Photos are stored as their pixels only: each image is decoded and encoded again, so what a
camera or phone wrote beside the picture (EXIF with the GPS position, time and device, XMP,
comments, embedded thumbnails) is neither stored nor served. The orientation the camera
recorded is applied first, so the photo still stands as it was taken. An image with more pixels
than ``MAX_PIXELS`` is refused from its header, before anything is decoded.

The files are written before the database transaction that records them (no disk I/O while
rows are locked) and removed again when that transaction does not commit.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from dispatch.models import Attachment, Case, CaseEvent

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
# Decompression bombs: refuse images with more pixels than a 40-megapixel photo or scan.
MAX_PIXELS = 40_000_000
# Lossy formats are encoded again at this quality (Pillow's default, 75, visibly blurs text).
REENCODE_QUALITY = 90
STORAGE_DIR = "attachments/"


class FileFacts(Protocol):
    """What an attachment row records about a file, whether held in memory or already stored."""

    original_name: str
    content_type: str
    sha256: str

    @property
    def size(self) -> int: ...


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
    if content_type != "application/pdf":
        data = _pixels_only(data)
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


def _bare(frame: Image.Image) -> Image.Image:
    """A new image holding only the pixels (and palette) of ``frame``: no metadata at all."""
    upright = ImageOps.exif_transpose(frame) or frame
    bare = Image.frombytes(upright.mode, upright.size, upright.tobytes())
    palette = upright.getpalette() if upright.mode in ("P", "PA") else None
    if palette:
        bare.putpalette(palette)
    return bare


def _pixels_only(data: bytes) -> bytes:
    """The image of ``data`` (already sniffed) encoded again from its pixels, in its format.

    Every frame is kept (a multi-page TIFF scan, an animated GIF), each without metadata.
    """
    with Image.open(io.BytesIO(data)) as image:
        fmt = image.format
        frames = [_bare(frame.copy()) for frame in ImageSequence.Iterator(image)]
    options: dict = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = REENCODE_QUALITY
    if fmt == "JPEG":
        frames = [f if f.mode in ("RGB", "L", "CMYK") else f.convert("RGB") for f in frames]
    if len(frames) > 1 and fmt in ("TIFF", "GIF", "WEBP"):
        options.update(save_all=True, append_images=frames[1:])
    out = io.BytesIO()
    frames[0].save(out, format=fmt, **options)
    return out.getvalue()


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several uploads in one input; cleans to the list of ``CheckedFile``, every refusal shown."""

    widget = MultipleFileInput

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(*args, **kwargs)
        self.widget.attrs.setdefault("accept", "image/*,application/pdf")

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else ([data] if data else [])
        if len(files) > MAX_FILES:
            raise ValidationError(_("附件最多%(n)d个") % {"n": MAX_FILES})
        checked, errors = [], []
        for upload in files:
            try:
                checked.append(check_upload(upload))
            except ValidationError as exc:
                errors.extend(exc.messages)
        if errors:
            raise ValidationError(errors)
        return checked


def store_files(
    files: Sequence[CheckedFile], *, under: str = STORAGE_DIR
) -> list[tuple[CheckedFile, str]]:
    """Write the files to storage (before the transaction) and return their stored names."""
    stored = []
    today = timezone.localdate()
    for checked in files:
        path = f"{under}{today:%Y/%m}/{uuid.uuid4().hex}.{checked.extension}"
        stored.append((checked, default_storage.save(path, ContentFile(checked.data))))
    return stored


def discard_files(stored: Sequence[tuple[FileFacts, str]]) -> None:
    """Remove files written for rows that were not saved (rollback or a retried submit)."""
    for _checked, name in stored:
        default_storage.delete(name)


@contextmanager
def files_stored(files: Sequence[CheckedFile]) -> Iterator[list[tuple[CheckedFile, str]]]:
    """Store ``files`` now; remove them again if the block (the transaction) raises."""
    stored = store_files(files)
    try:
        yield stored
    except BaseException:
        discard_files(stored)
        raise


def attach_stored(
    *,
    case: Case,
    stored: Sequence[tuple[FileFacts, str]],
    actor,
    event: CaseEvent | None = None,
) -> list[Attachment]:
    """The rows for files already on disk; call inside the case's transaction."""
    return Attachment.objects.bulk_create(
        Attachment(
            case=case,
            event=event,
            file=name,
            original_name=checked.original_name,
            content_type=checked.content_type,
            size=checked.size,
            sha256=checked.sha256,
            uploaded_by=actor,
        )
        for checked, name in stored
    )
