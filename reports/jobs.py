"""The export job: thin, run by the outbox after the commit that asked for the export."""

from __future__ import annotations

from dispatch import outbox
from reports import services


@outbox.handler(services.TOPIC, on_give_up=services.give_up)
def _export_job(payload: dict) -> None:
    """Make the export's file; a second run of a finished export does nothing."""
    services.run_export(export_id=payload["export_id"])
