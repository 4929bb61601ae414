"""The generator's rate in ``manage.py bench``: ``generate_cases`` into a throwaway database.

Like the receipt workload, it creates, migrates and drops a database of its own (never the one
being measured), loads the demo county's places and staff outside the timing, then generates
N cases (100,000, or 10,000 with ``--quick``) the way an operator would: indexes dropped and
rebuilt, worker processes, the dashboard's roll-up rebuilt. Reports cases per second for the
load (rows written, indexes rebuilt) and for the whole command (with the roll-up).
"""

from __future__ import annotations

import io
import time

from django.core.management import call_command
from django.db import connection

from dispatch.management.commands import generate_cases
from dispatch.models import Case, CaseEvent
from zongzhi.bench.harness import Report


def run(report: Report, options: dict) -> None:
    total = 10_000 if options.get("quick") else 100_000
    old_name = connection.settings_dict["NAME"]
    if connection.vendor != "sqlite":
        # Not the name pytest uses (test_<name>), so a test run beside the benchmark is safe.
        connection.settings_dict.setdefault("TEST", {})["NAME"] = f"{old_name}_bench_generate"
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        call_command("load_demo", "--no-cases", stdout=io.StringIO())
        command = generate_cases.Command(stdout=io.StringIO())
        start = time.perf_counter()
        call_command(command, cases=total, seed=1)
        seconds = time.perf_counter() - start
        load = command.figures["seconds"]
        cases, events = Case.objects.count(), CaseEvent.objects.count()
        assert (cases, events) == (command.figures["cases"], command.figures["events"])
        report.add(
            "generator",
            cases=cases,
            events=events,
            seconds=round(seconds, 1),
            load_seconds=round(load, 1),
            rate=round(cases / load),
            rate_with_rollup=round(cases / seconds),
        )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
