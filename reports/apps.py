from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportsConfig(AppConfig):
    name = "reports"
    verbose_name = _("报告与导出")

    def ready(self) -> None:
        # The module that registers the export job's handler (dispatch.outbox.handler).
        import reports.jobs  # noqa: F401
