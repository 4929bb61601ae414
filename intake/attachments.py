"""Intake's part of attachments: uploads kept across a re-rendered intake form.

Checking, storing and recording files is ``dispatch.attachments``; the names are re-exported
here for the intake screen. A clerk who corrects the form does not upload the files again: the
checked files wait under ``attachments/pending/`` and a signed hidden value names them.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core import signing

from dispatch.attachments import (
    MAX_FILES,
    CheckedFile,
    attach_stored,
    check_upload,
    discard_files,
    store_files,
)

__all__ = [
    "MAX_FILES",
    "CheckedFile",
    "StoredFile",
    "attach_stored",
    "check_upload",
    "discard_files",
    "pending_as_stored",
    "sign_pending",
    "stash_files",
    "store_files",
    "unsign_pending",
]

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
    return [
        {
            "name": name,
            "original_name": checked.original_name,
            "content_type": checked.content_type,
            "size": checked.size,
            "sha256": checked.sha256,
        }
        for checked, name in store_files(files, under=PENDING_DIR)
    ]


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
