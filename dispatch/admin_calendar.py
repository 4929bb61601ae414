"""Admin for the working-day calendar: next year's holidays and make-up days (调休).

Saving goes through ``dispatch.calendar.save_calendar_day`` so that the cached year is dropped
and the row is marked as edited by an administrator (``seed_calendar`` never overwrites it).
"""

from __future__ import annotations

from django.contrib import admin

from dispatch import calendar
from dispatch.models import CalendarDay, CalendarYear


@admin.register(CalendarDay)
class CalendarDayAdmin(admin.ModelAdmin):
    list_display = ["date", "name", "is_workday", "edited_by_admin"]
    list_filter = ["is_workday", "edited_by_admin"]
    search_fields = ["name", "date"]
    date_hierarchy = "date"
    readonly_fields = ["edited_by_admin"]
    ordering = ["-date"]

    def save_model(self, request, obj, form, change):
        if change and "date" in form.changed_data:
            old = CalendarDay.objects.get(pk=obj.pk)
            calendar.delete_calendar_day(day=old)
        saved = calendar.save_calendar_day(
            date=obj.date, is_workday=obj.is_workday, name=obj.name, edited_by_admin=True
        )
        obj.pk = saved.pk
        obj.edited_by_admin = True

    def delete_model(self, request, obj):
        calendar.delete_calendar_day(day=obj)

    def delete_queryset(self, request, queryset):
        for day in queryset:
            calendar.delete_calendar_day(day=day)


@admin.register(CalendarYear)
class CalendarYearAdmin(admin.ModelAdmin):
    """A year is confirmed here once every holiday and make-up day of it has been entered."""

    list_display = ["year", "source", "confirmed_at", "note"]
    fields = ["year", "note"]
    ordering = ["-year"]

    def save_model(self, request, obj, form, change):
        saved = calendar.confirm_year(year=obj.year, source="admin", note=obj.note)
        obj.pk = saved.pk
