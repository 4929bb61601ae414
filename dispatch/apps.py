from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DispatchConfig(AppConfig):
    name = "dispatch"
    verbose_name = _("案件流转")

    def ready(self) -> None:
        # The system checks, and the modules that register outbox job handlers.
        import dispatch.checks  # noqa: F401
        import dispatch.notifications  # noqa: F401
        import dispatch.routing  # noqa: F401
