"""Builders for test data. They call the services, so tests see what production writes."""

from __future__ import annotations

import io
import itertools

from PIL import Image

from dispatch.actors import LOADER
from dispatch.models import Category, CategoryKind, DeadlineProfile
from dispatch.services import create_case
from grids import services as grid_services
from grids.models import Level, Region, Unit, UnitKind
from people import services as people_services
from people.models import Role, User

_seq = itertools.count(1)


def region(code: str, name: str, level: str, parent: Region | None = None, **kw) -> Region:
    return grid_services.save_region(code=code, name=name, level=level, parent=parent, **kw)


def unit(name: str, region: Region, kind: str = UnitKind.DEPARTMENT, **kw) -> Unit:
    return grid_services.save_unit(name=name, kind=kind, region=region, **kw)


def centre(region: Region) -> Unit:
    return grid_services.save_unit(
        name=f"{region.name}综治中心",
        kind=UnitKind.CENTRE,
        region=region,
        stationed=True,
        phone="0311-12345678",
    )


def user(
    username: str | None = None,
    *,
    role: str | None = None,
    region: Region | None = None,
    unit: Unit | None = None,
    password: str = "pass-Zz-2026",
    **kw,
) -> User:
    username = username or f"user{next(_seq)}"
    obj = User.objects.create_user(
        username=username, password=password, full_name=kw.pop("full_name", username), **kw
    )
    if role:
        people_services.grant_role(user=obj, role=role, region=region, unit=unit)
    return obj


def category(
    code: str = "neighbour",
    name: str = "邻里纠纷",
    parent_code: str = "dispute",
    parent_name: str = "矛盾纠纷",
    kind: str = CategoryKind.DISPUTE,
) -> Category:
    parent, _ = Category.objects.get_or_create(
        code=parent_code, defaults={"name": parent_name, "kind": kind}
    )
    child, _ = Category.objects.get_or_create(
        code=code, defaults={"name": name, "kind": kind, "parent": parent}
    )
    return child


def profile(name: str = "一般诉求") -> DeadlineProfile:
    obj, _ = DeadlineProfile.objects.get_or_create(
        name=name, defaults={"sign_amount": 4, "reply_amount": 3, "complete_amount": 7}
    )
    return obj


def party(name: str = "张三", phone: str = "13812341234", id_number: str = "", **kw):
    return people_services.save_party(name=name, phone=phone, id_number=id_number, **kw)


def case(*, region: Region, owner_unit: Unit, actor: User | None = None, **kw):
    kw.setdefault("channel", "window")
    kw.setdefault("category", category())
    kw.setdefault("summary", "楼上装修噪音扰民")
    obj, _created = create_case(actor=actor or LOADER, region=region, owner_unit=owner_unit, **kw)
    return obj


# The smallest files the upload checks accept as a PDF and as a photo.
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def png_bytes(size: tuple[int, int] = (16, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 120, 200)).save(buf, format="PNG")
    return buf.getvalue()


__all__ = ["Level", "Role"]
