"""``manage.py bench [workload ...]``: run the project's benchmarks and print their figures.

Each workload is a module with ``run(stdout, options) -> None`` that prints its own figures.
Benchmarks measure; tests check behaviour. Nothing here sends traffic beyond 127.0.0.1.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

WORKLOADS = {
    "receipt": "zongzhi.bench.receipt.run",
    "tracking": "zongzhi.bench.tracking.run",
}


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
        for name in names:
            self.stdout.write(f"== {name} ==")
            import_string(WORKLOADS[name])(self.stdout, options)
