"""Verify the hash chain of one case's history, several cases, or all of them."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from dispatch.events import verify_chain
from dispatch.models import Case


class Command(BaseCommand):
    help = "校验案件事件哈希链：manage.py verify_case_chain <案件编号> ... | --all"

    def add_arguments(self, parser):
        parser.add_argument("codes", nargs="*", help="案件编号")
        parser.add_argument("--all", action="store_true", help="校验全部案件")

    def handle(self, *codes, **options):
        codes = options["codes"]
        if options["all"] == bool(codes):
            raise CommandError("请给出案件编号，或使用 --all（二者选一）")
        if options["all"]:
            cases = (
                Case.objects.only("pk", "code", "event_count", "last_event_hash")
                .order_by("pk")
                .iterator(chunk_size=500)
            )
        else:
            found = {c.code: c for c in Case.objects.filter(code__in=codes)}
            missing = [code for code in codes if code not in found]
            if missing:
                raise CommandError("案件不存在：" + "、".join(missing))
            cases = (found[code] for code in codes)
        checked = broken = 0
        for case in cases:
            checked += 1
            report = verify_chain(case)
            if report.ok:
                self.stdout.write(f"{case.code} ok ({report.events} events)")
                continue
            broken += 1
            where = f"seq {report.first_bad_seq}" if report.first_bad_seq else "head"
            self.stdout.write(f"{case.code} BROKEN at {where}: {report.reason}")
        if broken:
            raise CommandError(f"{broken} of {checked} case chains are broken")
        self.stdout.write(f"{checked} case chains ok")
