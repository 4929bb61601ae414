"""Staff, their grants, and parties (masked, found by phone or ID number through blind index)."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from people import services
from people.identity import normalize_id_number, normalize_phone
from people.models import Party, RoleGrant, User, id_number_index, phone_index


class RoleGrantInline(admin.TabularInline):
    model = RoleGrant
    extra = 0
    fields = ["role", "region", "unit", "granted_at"]
    readonly_fields = ["granted_at"]
    autocomplete_fields = ["region"]


def _save_grant(request, grant: RoleGrant) -> bool:
    """New grants go through ``grant_role`` so its rules (三权分立) hold in the admin too."""
    try:
        services.grant_role(user=grant.user, role=grant.role, region=grant.region, unit=grant.unit)
    except services.PeopleError as exc:
        messages.error(request, str(exc))
        return False
    return True


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ["username", "full_name", "work_number", "is_active", "is_staff", "last_login"]
    search_fields = ["username", "full_name", "work_number"]
    list_filter = ["is_active", "is_staff", "grants__role"]
    inlines = [RoleGrantInline]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        (_("个人信息"), {"fields": ["full_name", "work_number", "mobile", "email"]}),
        (_("权限"), {"fields": ["is_active", "is_staff", "is_superuser", "groups"]}),
        (_("登录记录"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["username", "full_name", "work_number", "password1", "password2"],
            },
        ),
    ]
    readonly_fields = ["last_login", "date_joined"]

    def save_formset(self, request, form, formset, change):
        if formset.model is not RoleGrant:
            return super().save_formset(request, form, formset, change)
        grants = formset.save(commit=False)
        for grant in formset.deleted_objects:
            grant.delete()
        for grant in grants:
            if grant.pk is not None:
                # A changed grant is a revoke and a new grant.
                RoleGrant.objects.filter(pk=grant.pk).delete()
            _save_grant(request, grant)
        return None


@admin.register(RoleGrant)
class RoleGrantAdmin(admin.ModelAdmin):
    list_display = ["user", "role", "region", "unit", "granted_at"]
    list_filter = ["role"]
    search_fields = [
        "user__username",
        "user__full_name",
        "user__work_number",
        "region__name",
        "unit__name",
    ]
    autocomplete_fields = ["user", "region"]
    list_select_related = ["user", "region", "unit"]

    def save_model(self, request, obj, form, change):
        if change:
            RoleGrant.objects.filter(pk=obj.pk).delete()
        if _save_grant(request, obj):
            saved = RoleGrant.objects.get(
                user=obj.user, role=obj.role, region=obj.region, unit=obj.unit
            )
            obj.pk = saved.pk


@admin.register(Party)
class PartyAdmin(admin.ModelAdmin):
    """Read-only and masked: parties are written at intake, and full values need a reason.

    Search takes a name, or a phone / ID number in any typed form, matched through the blind
    index (the encrypted columns cannot be searched directly).
    """

    list_display = [
        "masked_name_display",
        "masked_phone_display",
        "masked_id_display",
        "is_organisation",
        "created_at",
    ]
    list_filter = ["is_organisation"]
    fields = (
        "masked_name_display",
        "masked_phone_display",
        "masked_id_display",
        "is_organisation",
        "language",
        "created_at",
        "updated_at",
    )
    readonly_fields = fields
    search_fields = ["name"]
    search_help_text = _("输入姓名，或完整的手机号/身份证号码")

    @admin.display(description=_("姓名/名称"))
    def masked_name_display(self, obj: Party) -> str:
        return obj.masked_name

    @admin.display(description=_("联系电话"))
    def masked_phone_display(self, obj: Party) -> str:
        return obj.masked_phone

    @admin.display(description=_("身份证号码"))
    def masked_id_display(self, obj: Party) -> str:
        return obj.masked_id_number

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if term:
            for normalise, index, column in [
                (normalize_id_number, id_number_index, "id_number_index"),
                (normalize_phone, phone_index, "phone_index"),
            ]:
                try:
                    value = normalise(term)
                except ValidationError:
                    continue
                return queryset.filter(**{column: index(value)}), False
        return super().get_search_results(request, queryset, search_term)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
