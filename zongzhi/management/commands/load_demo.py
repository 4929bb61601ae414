"""``manage.py load_demo``: build the demo county 青禾县 (idempotent) and print its logins."""

from __future__ import annotations

import datetime as dt
import time

from django.core.management.base import BaseCommand
from django.db.models import Min
from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch import outbox, rollups
from dispatch.models import Case
from zongzhi import demo, demo_cases


class Command(BaseCommand):
    help = _(
        "创建或更新演示县“青禾县”（区划、网格、单位、人员、分类、时限、派单规则、演示案件），可重复执行"
    )  # noqa: E501

    def add_arguments(self, parser):
        parser.add_argument("--no-cases", action="store_true", help=_("不生成演示案件"))
        parser.add_argument(
            "--cases",
            type=int,
            default=demo.DEFAULT_DEMO_CASES,
            help=_("演示案件数量（默认 %(n)d）") % {"n": demo.DEFAULT_DEMO_CASES},
        )

    def handle(self, *args, **options):
        started = time.monotonic()
        now = timezone.now()
        county = demo.load_demo_county()
        created = 0
        if not options["no_cases"]:
            # Recorded, not offered: a worker starting after the load has nothing to discard.
            with outbox.offers_held():
                created = demo_cases.load_demo_cases(county, total=options["cases"], now=now)
        # The demo's past is history: its SMS, routing and receipts are not work for now.
        outbox.set_aside_history(recorded_before=now)
        # The dashboard's figures of the past days, counted once now rather than live.
        first = Case.objects.aggregate(first=Min("reported_at"))["first"]
        if first is not None:
            rollups.rebuild(timezone.localdate(first), timezone.localdate(now) - dt.timedelta(1))
        elapsed = time.monotonic() - started
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "演示县“%(county)s”已就绪：%(townships)d 个乡镇/街道，%(villages)d 个村/社区，"
                    "%(grids)d 个网格，%(centres)d 个综治中心，%(departments)d 个职能部门，"
                    "%(users)d 名工作人员；新建演示案件 %(created)d 件（%(seconds).1f 秒）"
                )
                % {
                    "county": demo.COUNTY_NAME,
                    "townships": len(county.townships),
                    "villages": len(county.villages),
                    "grids": len(county.grids),
                    "centres": len(county.centres),
                    "departments": len(county.departments),
                    "users": len(county.users),
                    "created": created,
                    "seconds": elapsed,
                }
            )
        )
        self.stdout.write("")
        self.stdout.write(
            _("演示账号（统一密码：%(password)s）") % {"password": demo.DEMO_PASSWORD}
        )
        width = max(len(row[0]) for row in county.logins) + 2
        for username, role, where, work_number in county.logins:
            self.stdout.write(f"  {username.ljust(width)}{work_number}  {role}（{where}）")
