from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from grids import services
from grids.models import Centre, Department, Region, UnitKind


class PinyinSearchMixin:
    """Admin search that also matches pinyin initials typed in any case (``xlt`` -> 兴隆台)."""

    def get_search_results(self, request, queryset, search_term):
        return super().get_search_results(
            request, queryset, search_term.lower() if search_term.isascii() else search_term
        )


@admin.register(Region)
class RegionAdmin(PinyinSearchMixin, admin.ModelAdmin):
    list_display = ["name", "code", "level", "parent", "households", "is_active"]
    list_filter = ["level", "is_active"]
    search_fields = ["name", "=code", "code", "^pinyin_initials", "^pinyin"]
    readonly_fields = ["path", "pinyin", "pinyin_initials"]
    autocomplete_fields = ["parent"]
    list_select_related = ["parent"]

    def save_model(self, request, obj, form, change):
        if change and "parent" in form.changed_data:
            services.move_region(region=Region.objects.get(pk=obj.pk), new_parent=obj.parent)
        saved = services.save_region(
            code=obj.code,
            name=obj.name,
            level=obj.level,
            parent=obj.parent,
            households=obj.households,
            boundary=obj.boundary,
        )
        obj.pk, obj.path = saved.pk, saved.path


class UnitAdmin(PinyinSearchMixin, admin.ModelAdmin):
    kinds: list[str] = []
    list_display = ["name", "region", "level", "stationed", "phone", "is_active"]
    list_filter = ["level", "stationed", "is_active"]
    search_fields = ["name", "short_name", "^pinyin_initials", "region__name", "^region__code"]
    readonly_fields = ["level", "pinyin_initials"]
    autocomplete_fields = ["region"]
    list_select_related = ["region"]
    exclude = ["kind"]

    def get_queryset(self, request):
        return super().get_queryset(request).filter(kind__in=self.kinds)

    def save_model(self, request, obj, form, change):
        saved = services.save_unit(
            name=obj.name,
            kind=obj.kind or self.kinds[0],
            region=obj.region,
            stationed=obj.stationed,
            short_name=obj.short_name,
            phone=obj.phone,
            address=obj.address,
        )
        obj.pk = saved.pk


@admin.register(Centre)
class CentreAdmin(UnitAdmin):
    kinds = [UnitKind.CENTRE]


@admin.register(Department)
class DepartmentAdmin(UnitAdmin):
    kinds = [UnitKind.DEPARTMENT, UnitKind.COMMITTEE]


admin.site.site_header = _("综治中心管理")
admin.site.site_title = _("综治中心管理")
