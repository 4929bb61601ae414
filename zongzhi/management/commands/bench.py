"""``manage.py bench [workload ...]``: run the project's benchmarks and print their figures.

Workloads: ``desks`` (W2 intake POST, W3 dashboard, inbox and queues, over HTTP to gunicorn),
``sweeper`` (W4), ``tracking`` (W0 bare view, W1 tracking page), ``receipt`` (W5), ``generate``
(the synthetic data command's rate, in a database of its own). Figures come as JSON lines and,
at the end, a table. Benchmarks measure; tests check behaviour. Nothing here sends traffic
beyond 127.0.0.1, and every load loop is bounded in count and time.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from dispatch.models import Case
from zongzhi.bench import desks, generate, receipt, sweeper, tracking
from zongzhi.bench.harness import Report

# Workloads that report through the Report, and those that print their own lines.
REPORTING = {"desks": desks.run, "sweeper": sweeper.run, "generate": generate.run}
PRINTING = {"tracking": tracking.run, "receipt": receipt.run}
WORKLOADS = [*REPORTING, *PRINTING]


class Command(BaseCommand):
    help = f"运行性能基准并打印结果 (workloads: {', '.join(WORKLOADS)})"

    def add_arguments(self, parser):
        parser.add_argument("workloads", nargs="*", help="默认运行全部")
        parser.add_argument("--quick", action="store_true", help="更少的迭代，用于冒烟检查")

    def handle(self, *args, **options):
        names = options["workloads"] or list(WORKLOADS)
        unknown = [n for n in names if n not in WORKLOADS]
        if unknown:
            raise CommandError(f"未知的基准: {', '.join(unknown)}; 可选: {', '.join(WORKLOADS)}")
        self.stdout.write(f"database: {connection.vendor}, {Case.objects.count()} cases")
        report = Report(self.stdout)
        for name in names:
            self.stdout.write(f"== {name} ==")
            if name in REPORTING:
                REPORTING[name](report, options)
            else:
                PRINTING[name](self.stdout, options)
        if report.rows:
            report.table()
