from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IntakeConfig(AppConfig):
    name = "intake"
    verbose_name = _("一窗受理")

    def ready(self) -> None:
        # The modules that register outbox job handlers (dispatch.outbox.handler).
        import intake.receipt  # noqa: F401
        import intake.tracking  # noqa: F401
