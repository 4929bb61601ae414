"""Staff (users and the roles they hold on tree nodes) and residents (parties to cases)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from grids.models import Region, Unit
from people.crypto import get_cipher
from people.fields import EncryptedTextField
from people.identity import mask_id_number, mask_name, mask_phone


class Role(models.TextChoices):
    CLERK = "clerk", _("窗口受理员")
    GRID_WORKER = "grid_worker", _("网格员")
    DISPATCHER = "dispatcher", _("派单员")
    HANDLER = "handler", _("承办人")
    SUPERVISOR = "supervisor", _("督办员")
    LEADER = "leader", _("领导")
    SYSTEM_ADMIN = "system_admin", _("系统管理员")
    SECURITY_ADMIN = "security_admin", _("安全管理员")
    AUDIT_ADMIN = "audit_admin", _("审计管理员")


# 三权分立: one person never holds two of the three administrator roles.
ADMIN_ROLES = frozenset({Role.SYSTEM_ADMIN, Role.SECURITY_ADMIN, Role.AUDIT_ADMIN})


class User(AbstractUser):
    """A member of staff. Residents do not log in; they follow a case by its QR token."""

    full_name = models.CharField(_("姓名"), max_length=64, blank=True)
    work_number = models.CharField(_("工号"), max_length=32, blank=True, db_index=True)
    mobile = models.CharField(_("手机号"), max_length=20, blank=True)
    # The interface language and the language of messages sent to this person.
    language = models.CharField(
        _("界面语言"), max_length=16, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )

    class Meta:
        verbose_name = _("工作人员")
        verbose_name_plural = _("工作人员")

    def __str__(self) -> str:
        return self.full_name or self.username


class RoleGrant(models.Model):
    """A role held on a node of the tree, or in a unit. Scope comes from where it is granted.

    A role on a township covers every village and grid below it; a role in a unit covers the
    cases assigned to that unit.
    """

    user = models.ForeignKey(
        User, verbose_name=_("人员"), on_delete=models.CASCADE, related_name="grants"
    )
    role = models.CharField(_("角色"), max_length=32, choices=Role.choices)
    region = models.ForeignKey(
        Region,
        verbose_name=_("区划/网格"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="grants",
    )
    unit = models.ForeignKey(
        Unit,
        verbose_name=_("单位"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="grants",
    )
    granted_at = models.DateTimeField(_("授予时间"), auto_now_add=True)

    class Meta:
        verbose_name = _("角色授权")
        verbose_name_plural = _("角色授权")
        constraints = [
            models.CheckConstraint(condition=Q(role__in=Role.values), name="grant_role_valid"),
            models.CheckConstraint(
                condition=Q(region__isnull=False) | Q(unit__isnull=False),
                name="grant_has_scope",
            ),
            models.UniqueConstraint(
                fields=["user", "role", "region", "unit"],
                name="grant_unique",
                nulls_distinct=False,
            ),
        ]
        indexes = [models.Index(fields=["user", "role"])]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_role_display()} · {self.unit or self.region}"

    @property
    def node(self) -> Region:
        """The tree node the grant sits on: its region, or its unit's."""
        if self.region is not None:
            return self.region
        assert self.unit is not None  # constraint grant_has_scope
        return self.unit.region

    @property
    def in_centre(self) -> bool:
        """Granted in a centre unit (which covers the centre's area like a region grant)."""
        return self.unit is not None and self.unit.kind == "centre"


class Party(models.Model):
    """A resident or organisation that is a party to a case (申请人/被申请人).

    Phone and ID number are ciphertext at rest; ``*_index`` are keyed hashes (blind indexes)
    that let a clerk find a returning resident without the database ever holding the value.
    """

    name = models.CharField(_("姓名/名称"), max_length=64)
    phone = EncryptedTextField(_("联系电话"), blank=True)
    phone_index = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    phone_last4 = models.CharField(max_length=4, blank=True, editable=False)
    id_number = EncryptedTextField(_("身份证号码"), blank=True)
    id_number_index = models.CharField(max_length=64, blank=True, db_index=True, editable=False)
    address = EncryptedTextField(_("住址"), blank=True)
    is_organisation = models.BooleanField(_("单位/组织"), default=False)
    # Messages to residents are in Chinese unless the resident asked for another language.
    language = models.CharField(
        _("短信语言"), max_length=16, choices=settings.LANGUAGES, default=settings.LANGUAGE_CODE
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("当事人")
        verbose_name_plural = _("当事人")
        constraints = [
            # One record per ID number; parties without one are matched by phone and name.
            models.UniqueConstraint(
                fields=["id_number_index"],
                condition=~Q(id_number_index=""),
                name="party_unique_id_number",
            ),
        ]

    def __str__(self) -> str:
        return self.masked_name

    @property
    def masked_name(self) -> str:
        return self.name if self.is_organisation else mask_name(self.name)

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.phone)

    @property
    def masked_id_number(self) -> str:
        return mask_id_number(self.id_number)


def phone_index(phone: str) -> str:
    return get_cipher().blind_index(phone, purpose="phone") if phone else ""


def id_number_index(id_number: str) -> str:
    return get_cipher().blind_index(id_number, purpose="id_number") if id_number else ""


class PartyChange(models.Model):
    """The details a party had before a clerk confirmed new ones (same person, new phone).

    A match on a known ID number or phone never overwrites silently: the clerk decides, and
    what was there before is kept here.
    """

    party = models.ForeignKey(Party, on_delete=models.CASCADE, related_name="changes")
    changed_at = models.DateTimeField()
    changed_by = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    old_name = models.CharField(max_length=64)
    old_phone = EncryptedTextField(blank=True)
    old_address = EncryptedTextField(blank=True)
    fields = models.JSONField(default=list)

    class Meta:
        verbose_name = _("当事人信息变更")
        verbose_name_plural = _("当事人信息变更")
        ordering = ["party", "-changed_at"]

    def __str__(self) -> str:
        return f"{self.party_id} {self.changed_at:%Y-%m-%d}"


class AuditRecord(models.Model):
    """An append-only record of a read or change of personal data by a member of staff.

    It holds no personal value: a lookup records that a phone or ID number was searched and how
    many records it found, never the number itself.
    """

    at = models.DateTimeField(_("时间"), db_index=True)
    user = models.ForeignKey(
        User, verbose_name=_("人员"), null=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(_("操作"), max_length=48)
    object_type = models.CharField(_("对象类型"), max_length=32, blank=True)
    object_id = models.CharField(_("对象"), max_length=64, blank=True)
    outcome = models.CharField(_("结果"), max_length=16)
    address = models.CharField(_("地址"), max_length=64, blank=True)
    data = models.JSONField(_("详情"), default=dict, blank=True)

    class Meta:
        verbose_name = _("审计记录")
        verbose_name_plural = _("审计记录")
        indexes = [models.Index(fields=["user", "at"], name="audit_user_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.action}"
