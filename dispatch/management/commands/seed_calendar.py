"""Seed the working-day calendar from the ``chinesecalendar`` package.

Idempotent: run it after every upgrade of the package. Rows an administrator has edited
(``edited_by_admin``) are never overwritten; next year's schedule, once the State Council
publishes it and before the package knows it, is entered in the admin.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import override

from dispatch.calendar import seed_from_package


class Command(BaseCommand):
    help = _("从 chinesecalendar 导入法定节假日与调休工作日（不覆盖管理员修订）")

    def add_arguments(self, parser):
        parser.add_argument(
            "--year", type=int, action="append", dest="years", help=_("只导入指定年份，可重复")
        )

    def handle(self, *args, years=None, **options):
        with override("zh-hans"):
            try:
                result = seed_from_package(years=years)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(
                _(
                    "新增 %(created)d 天，更新 %(updated)d 天，保留管理员修订 %(kept)d 天；"
                    "年份：%(years)s"
                )
                % {**result, "years": ", ".join(str(y) for y in result["years"]) or "-"}
            )
