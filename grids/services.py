"""The only writers of the administrative tree."""

from __future__ import annotations

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Concat, Substr
from django.utils.translation import gettext as _

from grids.models import CHILD_LEVEL, PATH_SEPARATOR, Level, Region, Unit
from grids.pinyin import pinyin_full, pinyin_initials


class GridsError(Exception):
    """A change to the tree that the tree's rules refuse; the message is for the user."""


def _path_for(*, code: str, parent: Region | None) -> str:
    prefix = parent.path if parent else PATH_SEPARATOR
    return f"{prefix}{code}{PATH_SEPARATOR}"


def _check_parent(*, level: str, code: str, parent: Region | None) -> None:
    if level == Level.COUNTY:
        if parent is not None:
            raise GridsError(_("县/区是区划树的根，不能有上级"))
        return
    if parent is None:
        raise GridsError(_("除县/区外，每个区划都必须有上级"))
    if CHILD_LEVEL.get(Level(parent.level)) != level:
        raise GridsError(
            _("%(child)s的上级必须是%(parent)s")
            % {"child": Level(level).label, "parent": Level(parent.level).label}
        )
    if level == Level.GRID and len(code) != 15:
        raise GridsError(_("网格代码应为所属村/社区的12位代码加3位序号"))
    if level != Level.GRID and len(code) != 12:
        raise GridsError(_("区划代码应为12位数字"))


def save_region(
    *,
    code: str,
    name: str,
    level: str,
    parent: Region | None,
    households: int | None = None,
    boundary: dict | None = None,
) -> Region:
    """Create the region with this code, or update its name and attributes (idempotent)."""
    _check_parent(level=level, code=code, parent=parent)
    defaults = {
        "name": name,
        "level": level,
        "parent": parent,
        "path": _path_for(code=code, parent=parent),
        "pinyin": pinyin_full(name),
        "pinyin_initials": pinyin_initials(name),
        "households": households,
        "boundary": boundary,
    }
    with transaction.atomic():
        region = Region.objects.select_for_update().filter(code=code).first()
        if region is None:
            return Region.objects.create(code=code, **defaults)
        if region.parent_id != (parent.pk if parent else None):
            raise GridsError(_("区划%(code)s已存在于别处；请使用“移动”") % {"code": code})
        for field, value in defaults.items():
            setattr(region, field, value)
        region.save()
        return region


def move_region(*, region: Region, new_parent: Region) -> Region:
    """Move a node and its whole subtree under ``new_parent`` in one transaction."""
    _check_parent(level=region.level, code=region.code, parent=new_parent)
    if new_parent.path.startswith(region.path):
        raise GridsError(_("不能把区划移到它自己的下级之下"))
    with transaction.atomic():
        # Lock the subtree so that a concurrent move or creation under it waits for us.
        list(Region.objects.select_for_update().filter(path__startswith=region.path))
        old_path = region.path
        new_path = _path_for(code=region.code, parent=new_parent)
        # One UPDATE rewrites every descendant's prefix: path = new_path || substr(path, n+1).
        Region.objects.filter(path__startswith=old_path).update(
            path=Concat(Value(new_path), Substr(F("path"), len(old_path) + 1))
        )
        Region.objects.filter(pk=region.pk).update(parent=new_parent)
        region.refresh_from_db()
        return region


def save_unit(
    *,
    name: str,
    kind: str,
    region: Region,
    stationed: bool = False,
    short_name: str = "",
    phone: str = "",
    address: str = "",
) -> Unit:
    """Create the unit named ``name`` in ``region`` or update it (idempotent)."""
    unit, _created = Unit.objects.update_or_create(
        region=region,
        name=name,
        defaults={
            "kind": kind,
            "level": region.level,
            "stationed": stationed,
            "short_name": short_name,
            "phone": phone,
            "address": address,
            "pinyin_initials": pinyin_initials(short_name or name),
        },
    )
    return unit
