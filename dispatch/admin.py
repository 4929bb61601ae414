"""Configuration (categories, deadline profiles, routing rules) and a read-only case view.

Cases change state only through ``dispatch.services``: the admin shows them and their
history but offers no add, change or delete.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from dispatch.models import Case, CaseEvent, Category, DeadlineProfile, RoutingRule
from grids.admin import PinyinSearchMixin
from grids.pinyin import pinyin_initials


@admin.register(Category)
class CategoryAdmin(PinyinSearchMixin, admin.ModelAdmin):
    list_display = ["name", "parent", "code", "kind", "sort", "is_active"]
    list_filter = ["kind", "is_active", "parent"]
    search_fields = ["name", "code", "^pinyin_initials"]
    autocomplete_fields = ["parent"]
    list_select_related = ["parent"]
    ordering = ["sort", "code"]

    def save_model(self, request, obj, form, change):
        obj.pinyin_initials = pinyin_initials(obj.name)
        super().save_model(request, obj, form, change)


@admin.register(DeadlineProfile)
class DeadlineProfileAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "sign_amount",
        "sign_unit",
        "reply_amount",
        "reply_unit",
        "complete_amount",
        "complete_unit",
        "warn_ratio",
        "max_extensions",
    ]
    search_fields = ["name"]


@admin.register(RoutingRule)
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = [
        "category",
        "region",
        "grade",
        "handling_level",
        "unit",
        "auto_dispatch",
        "profile",
        "priority",
        "is_active",
    ]
    list_filter = ["handling_level", "auto_dispatch", "is_active", "grade"]
    search_fields = ["category__name", "region__name", "unit__name"]
    autocomplete_fields = ["category", "region"]
    list_select_related = ["category__parent", "region", "unit", "profile"]


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class CaseEventInline(admin.TabularInline):
    model = CaseEvent
    fields = (
        "seq",
        "at",
        "action",
        "from_status",
        "to_status",
        "actor",
        "actor_unit",
        "is_public",
        "note",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["seq"]

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Case)
class CaseAdmin(ReadOnlyAdmin):
    # Narrative and parties are left out: the admin is for configuration and audit, not for
    # reading residents' stories (staff pages show them with masking and a logged reason).
    list_display = [
        "code",
        "status",
        "category",
        "grade",
        "channel",
        "region",
        "owner_unit",
        "lead_unit",
        "reported_at",
        "due_at",
    ]
    list_filter = ["status", "grade", "channel", "owner_level", "is_flagged"]
    search_fields = ["=code"]
    date_hierarchy = "reported_at"
    list_select_related = ["category__parent", "region", "owner_unit", "lead_unit"]
    fields = (
        "code",
        "status",
        "channel",
        "category",
        "grade",
        "summary",
        "region",
        "owner_unit",
        "owner_level",
        "lead_unit",
        "accused_unit",
        "is_flagged",
        "reported_at",
        "registered_at",
        "assigned_at",
        "signed_at",
        "feedback_at",
        "closed_at",
        "due_at",
        "closed_level",
        "closed_on_time",
        "event_count",
        "last_event_hash",
    )
    readonly_fields = fields
    inlines = [CaseEventInline]
    show_full_result_count = False  # COUNT(*) over a million cases on every page is waste


@admin.register(CaseEvent)
class CaseEventAdmin(ReadOnlyAdmin):
    list_display = ["case", "seq", "action", "from_status", "to_status", "actor", "at", "is_public"]
    list_filter = ["action", "is_public"]
    search_fields = ["=case__code"]
    list_select_related = ["case", "actor"]
    fields = (
        "case",
        "seq",
        "action",
        "from_status",
        "to_status",
        "actor",
        "actor_unit",
        "public_unit_name",
        "at",
        "note",
        "is_public",
        "data",
        "prev_hash",
        "hash",
    )
    readonly_fields = fields
    show_full_result_count = False


admin.site.index_title = _("系统配置")


# The working-day calendar's admin registers itself when imported.
from dispatch.admin_calendar import CalendarDayAdmin  # noqa: E402, F401
