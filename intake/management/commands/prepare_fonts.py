"""``manage.py prepare_fonts``: build the receipt's CJK fonts under ``var/fonts`` (idempotent).

Run by the setup script and CI. A second run with the same system fonts does nothing.
"""

from django.core.management.base import BaseCommand, CommandError

from intake import fonts


class Command(BaseCommand):
    help = "为受理单 PDF 准备精简的中文字体（重复运行时若无变化则跳过）"

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="即使已是最新也重新生成")

    def handle(self, *args, **options):
        self.verbosity = options["verbosity"]
        try:
            summary = fonts.prepare(force=options["force"], log=self._log)
        except fonts.ReceiptFontError as exc:
            raise CommandError(str(exc)) from exc
        if summary["skipped"]:
            self.stdout.write(f"受理单字体已是最新：{fonts.font_dir()}")
            return
        total = sum(face["bytes"] for face in summary["faces"])
        self.stdout.write(f"  {len(summary['faces'])} 个字体文件，共 {total / 1e6:.1f} MB")
        engine, seconds = summary["engine"], summary["seconds"]
        done = f"受理单字体已生成：{fonts.font_dir()}（{engine}，{seconds} s）"
        self.stdout.write(self.style.SUCCESS(done))

    def _log(self, message: str) -> None:
        if self.verbosity >= 2:
            self.stdout.write(message)
