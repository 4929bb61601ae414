"""The administrative tree (county -> township -> village -> grid) and the units that act in it.

Scope everywhere in the product comes from this tree: a role granted on a township covers every
node whose materialized ``path`` starts with the township's path, one indexed prefix query.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Level(models.TextChoices):
    COUNTY = "county", _("县/区")
    TOWNSHIP = "township", _("乡镇/街道")
    VILLAGE = "village", _("村/社区")
    GRID = "grid", _("网格")


# Depth of each level in the tree and the length of its statistical code. Grids extend the
# 12-digit village code with a 3-digit serial.
LEVEL_DEPTH = {Level.COUNTY: 0, Level.TOWNSHIP: 1, Level.VILLAGE: 2, Level.GRID: 3}
LEVEL_ORDER = [Level.GRID, Level.VILLAGE, Level.TOWNSHIP, Level.COUNTY]  # lowest first
CHILD_LEVEL = {
    Level.COUNTY: Level.TOWNSHIP,
    Level.TOWNSHIP: Level.VILLAGE,
    Level.VILLAGE: Level.GRID,
}
PATH_SEPARATOR = "/"

code_validator = RegexValidator(r"^\d{12}(\d{3})?$", _("区划代码应为12位数字，网格为15位数字"))


class Region(models.Model):
    code = models.CharField(_("区划代码"), max_length=15, unique=True, validators=[code_validator])
    name = models.CharField(_("名称"), max_length=64)
    level = models.CharField(_("层级"), max_length=16, choices=Level.choices)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("上级"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    # "/<county code>/<township code>/.../<own code>/". Written only by grids.services so that a
    # move rewrites the whole subtree in one transaction. db_index on a CharField also gives
    # PostgreSQL the varchar_pattern_ops index that LIKE 'prefix%' needs.
    path = models.CharField(_("路径"), max_length=255, unique=True, db_index=True, editable=False)
    pinyin = models.CharField(_("拼音"), max_length=255, blank=True, editable=False)
    pinyin_initials = models.CharField(
        _("拼音首字母"), max_length=64, blank=True, db_index=True, editable=False
    )
    households = models.PositiveIntegerField(_("户数"), null=True, blank=True)
    # GeoJSON Polygon/MultiPolygon geometry, used to find the grid of a reported GPS point.
    boundary = models.JSONField(_("边界(GeoJSON)"), null=True, blank=True)
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("区划/网格")
        verbose_name_plural = _("区划/网格")
        ordering = ["path"]
        constraints = [
            models.CheckConstraint(condition=Q(level__in=Level.values), name="region_level_valid"),
            models.CheckConstraint(
                condition=Q(level="county", parent__isnull=True)
                | (~Q(level="county") & Q(parent__isnull=False)),
                name="region_only_county_is_root",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}({self.code})"

    def ancestor_codes(self) -> list[str]:
        return [part for part in self.path.split(PATH_SEPARATOR) if part]

    @property
    def county_code(self) -> str:
        return self.ancestor_codes()[0][:6]


class UnitKind(models.TextChoices):
    CENTRE = "centre", _("综治中心")
    DEPARTMENT = "department", _("职能部门")
    COMMITTEE = "committee", _("村(居)委会")


class Unit(models.Model):
    """A body that receives, handles or supervises cases: a centre, a bureau, a station.

    Centres and departments share one table because a case is assigned to either alike
    (a township centre delegates to a village centre exactly as it dispatches to a bureau).
    """

    name = models.CharField(_("名称"), max_length=64)
    short_name = models.CharField(_("简称"), max_length=32, blank=True)
    kind = models.CharField(_("类型"), max_length=16, choices=UnitKind.choices)
    # The node the unit serves: a county bureau serves the county, a township station its
    # township. Its level is the region's level.
    region = models.ForeignKey(
        Region, verbose_name=_("服务区域"), on_delete=models.PROTECT, related_name="units"
    )
    level = models.CharField(_("层级"), max_length=16, choices=Level.choices, editable=False)
    stationed = models.BooleanField(_("入驻综治中心"), default=False)
    phone = models.CharField(_("联系电话"), max_length=32, blank=True)
    address = models.CharField(_("地址"), max_length=128, blank=True)
    pinyin_initials = models.CharField(
        _("拼音首字母"), max_length=64, blank=True, db_index=True, editable=False
    )
    is_active = models.BooleanField(_("启用"), default=True)

    class Meta:
        verbose_name = _("单位")
        verbose_name_plural = _("单位")
        ordering = ["region__path", "kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["region", "name"], name="unit_name_unique_in_region"),
            models.UniqueConstraint(
                fields=["region"], condition=Q(kind="centre"), name="one_centre_per_region"
            ),
            models.CheckConstraint(condition=Q(kind__in=UnitKind.values), name="unit_kind_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class Centre(Unit):
    class Meta:
        proxy = True
        verbose_name = _("综治中心")
        verbose_name_plural = _("综治中心")


class Department(Unit):
    class Meta:
        proxy = True
        verbose_name = _("职能部门")
        verbose_name_plural = _("职能部门")
