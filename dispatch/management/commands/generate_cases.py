"""``manage.py generate_cases --cases N``: a large synthetic case load for benchmarks.

Cases are spread over the demo county's grids and villages, with realistic shares of
categories, channels, grades and steps (most archived, some open, some overdue). Each case gets
a valid unique code (the daily sequences are reserved in ``CaseCodeCounter`` first, so codes
issued later by clerks never collide), a random tracking token, its lead assignment, the
hash-chained public events of every step it went through (``dispatch.events.verify_chain``
accepts them), the moment the deadline sweeper next has something to record
(``next_alert_at``) and, once archived, the working days it took. The dashboard's daily
roll-up is rebuilt for the generated days at the end.

Rows are written in bulk, bypassing the services on purpose: the services lock, notify and
route one case at a time, which is right for real work and hours too slow for a million rows.
The rows are built as COPY text by ``_synth.build_chunk``. On PostgreSQL worker processes (one
per core) each build a chunk and COPY it on their own connection, so that Python's work and the
server's overlap; when the tables are empty at the start, their secondary indexes and foreign
keys are dropped first and rebuilt at the end (a sorted build and one validating join instead
of millions of index insertions and per-row checks). SQLite gets ``executemany``.
"""

from __future__ import annotations

import datetime as dt
import gc
import multiprocessing
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import util as mp_util
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from dispatch import rollups
from dispatch.management.commands import _synth
from dispatch.models import Assignment, Case, CaseEvent
from grids.models import Region

DEMO_COUNTY_CODE = "139901000000"
TABLES = (Case, CaseEvent, Assignment)


# --- reservations -----------------------------------------------------------------------------


def reserve_codes(county_code: str, per_day: dict[int, int]) -> dict[int, int]:
    """Take a block of each day's sequence, so clerks' later codes never collide.

    ``per_day`` maps local days (numbered as ``_synth.date_of`` reads them) to counts; returns
    the first sequence number of each day's block. On PostgreSQL one upsert for all days.
    """
    table = "dispatch_casecodecounter"
    days = sorted(per_day)
    prefixes = {f"{county_code}{_synth.date_of(day):%Y%m%d}": day for day in days}
    upsert = (
        f"INSERT INTO {table} AS c (prefix, last) {{values}} "  # noqa: S608 - constant
        "ON CONFLICT (prefix) DO UPDATE SET last = c.last + EXCLUDED.last RETURNING prefix, last"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                upsert.format(values="SELECT * FROM unnest(%s::varchar[], %s::int[])"),
                [list(prefixes), [per_day[day] for day in prefixes.values()]],
            )
            rows = cursor.fetchall()
        else:
            rows = []
            for prefix, day in prefixes.items():
                cursor.execute(upsert.format(values="VALUES (%s, %s)"), [prefix, per_day[day]])
                rows.append(cursor.fetchone())
    first = {}
    for prefix, last in rows:
        day = prefixes[prefix]
        if last > 99999:
            raise CommandError(
                _("%(day)s 的案件数超过每日编号上限 99999") % {"day": _synth.date_of(day)}
            )
        first[day] = last - per_day[day] + 1
    return first


def reserve_ids(n: int) -> int:
    """The first of ``n`` consecutive case ids nobody else will take."""
    table = connection.ops.quote_name(Case._meta.db_table)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Inserting takes ROW EXCLUSIVE before its DEFAULT draws from the sequence, so with
            # this lock held nobody draws between our nextval and setval.
            cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [Case._meta.db_table])
            sequence = cursor.fetchone()[0]
            cursor.execute("SELECT nextval(%s)", [sequence])
            first = cursor.fetchone()[0]
            if n > 1:
                cursor.execute("SELECT setval(%s, %s)", [sequence, first + n - 1])
            return first
        # SQLite: the caller's transaction holds the write lock (IMMEDIATE), so the maximum
        # cannot move under us.
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}")  # noqa: S608
        return cursor.fetchone()[0] + 1


# --- secondary indexes and foreign keys (PostgreSQL) --------------------------------------------


@dataclass
class Secondary:
    """What is dropped before loading empty tables and rebuilt after: exact definitions read
    from the catalog, so the schema afterwards is the one the migrations made."""

    indexes: list[tuple[str, str, str]] = field(default_factory=list)  # (table, name, CREATE)
    unique: list[tuple[str, str]] = field(default_factory=list)  # (table, constraint = index)
    foreign_keys: list[tuple[str, str, str]] = field(default_factory=list)  # (table, name, def)

    def __len__(self) -> int:
        return len(self.indexes) + len(self.foreign_keys)


def tables_empty() -> bool:
    with connection.cursor() as cursor:
        for model in TABLES:
            table = connection.ops.quote_name(model._meta.db_table)
            cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")  # noqa: S608 - constant
            if cursor.fetchone()[0]:
                return False
    return True


def kept_during_load() -> set[str]:
    """Indexes left in place and maintained row by row while loading, not rebuilt after.

    The events' ``(action, at)``: its first column holds a few dozen values compared with the
    database collation. A sorted build of 7 million rows makes some 160 million collation
    comparisons, one session alone for 20 s; an insertion lands on one of a few dozen hot
    pages. Measured on 1,000,000 cases: 11 s less server CPU and no long pole in the rebuild.
    Every other index is cheaper rebuilt (measured one by one).
    """
    return {
        index.name
        for index in CaseEvent._meta.indexes
        if index.name and index.fields and index.fields[0] == "action"
    }


def read_secondary() -> Secondary:
    names = [model._meta.db_table for model in TABLES]
    kept = kept_during_load()
    found = Secondary()
    with connection.cursor() as cursor:
        # Unique constraints come back as their index; exclusion and deferrable constraints
        # are left alone (an index cannot be attached to them as one). Partial indexes stay:
        # they take few rows, so keeping them costs a predicate test per row and saves a heap
        # scan each, and their definitions would not read back as written (PostgreSQL
        # re-spells an ``IN (...)`` predicate when it prints it).
        cursor.execute(
            """
            SELECT x.indrelid::regclass::text, quote_ident(i.relname),
                   pg_get_indexdef(x.indexrelid), con.contype, con.condeferrable
            FROM pg_index x
            JOIN pg_class i ON i.oid = x.indexrelid
            LEFT JOIN pg_constraint con
              ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid
             AND con.contype IN ('p', 'u', 'x')
            WHERE x.indrelid = ANY(%s::regclass[]) AND NOT x.indisprimary
              AND x.indpred IS NULL
            ORDER BY 1, 2
            """,
            [names],
        )
        for table, name, definition, contype, deferrable in cursor.fetchall():
            if name.strip('"') in kept:
                continue
            if contype is None:
                found.indexes.append((table, name, definition))
            elif contype == "u" and not deferrable:
                found.indexes.append((table, name, definition))
                found.unique.append((table, name))
        cursor.execute(
            """
            SELECT conrelid::regclass::text, quote_ident(conname), pg_get_constraintdef(oid)
            FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY(%s::regclass[])
            ORDER BY 1, 2
            """,
            [names],
        )
        found.foreign_keys = list(cursor.fetchall())
    return found


def drop_secondary(found: Secondary) -> None:
    unique = set(found.unique)
    with transaction.atomic(), connection.cursor() as cursor:
        for table, name, _definition in found.foreign_keys:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        for table, name, _definition in found.indexes:
            if (table, name) in unique:
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
            else:
                cursor.execute(f"DROP INDEX {name}")


def side_by_side(
    groups: list[list[str]], *, parallel: int, took: list[tuple[float, str]] | None = None
) -> None:
    """Run each group of statements in order on a session of its own, ``parallel`` at once.

    Records how long each statement took in ``took``.
    """

    def run(statements: list[str]) -> None:
        db = connections.create_connection("default")
        try:
            with db.cursor() as cursor:
                # Sessions run side by side, one per core: no parallel workers inside each.
                cursor.execute("SET max_parallel_maintenance_workers = 0")
                cursor.execute("SET maintenance_work_mem = '1GB'")
                cursor.execute("SET work_mem = '256MB'")
                for sql in statements:
                    mark = time.monotonic()
                    cursor.execute(sql)
                    if took is not None:
                        took.append((time.monotonic() - mark, sql))
        finally:
            db.close()

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        for future in [pool.submit(run, group) for group in groups if group]:
            future.result()


def analyze_tables(*, parallel: int) -> None:
    """Fresh planner statistics: the events on one session, cases and tasks on another.

    Outside a transaction the cases and tasks are vacuumed as well (before their indexes are
    built, so nothing but the table is read): their pages marked all-visible, the open-case
    summary and the queues' counts read their indexes alone from the first page view on.
    """
    quote = connection.ops.quote_name
    if connection.in_atomic_block:
        # Inside a caller's transaction only this connection sees the rows (and holds the
        # locks another session would wait for).
        with connection.cursor() as cursor:
            for model in TABLES:
                cursor.execute(f"ANALYZE {quote(model._meta.db_table)}")
        return
    side_by_side(
        [
            [f"ANALYZE {quote(CaseEvent._meta.db_table)}"],
            [
                f"VACUUM (ANALYZE) {quote(Case._meta.db_table)}",
                f"VACUUM (ANALYZE) {quote(Assignment._meta.db_table)}",
            ],
        ],
        parallel=parallel,
    )


def restore_secondary(found: Secondary, *, parallel: int) -> list[tuple[float, str]]:
    """Build the indexes (``parallel`` sessions at once), attach the unique constraints to
    theirs, add the foreign keys unvalidated, then validate them (one join each).

    Validation takes only SHARE UPDATE EXCLUSIVE on the table, so foreign keys of different
    tables are checked side by side; the result is the same validated constraint. Returns how
    long each statement took.
    """
    took: list[tuple[float, str]] = []
    # Largest tables first, so that the sessions finish together.
    order = {model._meta.db_table: i for i, model in enumerate(reversed(TABLES))}
    indexes = sorted(found.indexes, key=lambda row: order.get(row[0].strip('"'), 0))
    side_by_side([[sql] for _table, _name, sql in indexes], parallel=parallel, took=took)
    attach = [f"ALTER TABLE {t} ADD CONSTRAINT {n} UNIQUE USING INDEX {n}" for t, n in found.unique]
    add = [f"ALTER TABLE {t} ADD CONSTRAINT {n} {d} NOT VALID" for t, n, d in found.foreign_keys]
    side_by_side([attach + add], parallel=1, took=took)
    by_table: dict[str, list[str]] = {}
    for table, name, _definition in found.foreign_keys:
        by_table.setdefault(table, []).append(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")
    side_by_side(list(by_table.values()), parallel=parallel, took=took)
    return took


def restore_statements(found: Secondary) -> list[str]:
    """The statements that rebuild what was dropped, for the operator when rebuilding fails."""
    return [
        *(definition for _t, _n, definition in found.indexes),
        *(f"ALTER TABLE {t} ADD CONSTRAINT {n} UNIQUE USING INDEX {n}" for t, n in found.unique),
        *(f"ALTER TABLE {t} ADD CONSTRAINT {n} {d}" for t, n, d in found.foreign_keys),
    ]


@contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """A ``kill`` during the load still runs the ``finally`` that rebuilds the indexes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def leave(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, leave)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- writing ----------------------------------------------------------------------------------


def _copy(cursor, model, fields: list, text: str) -> None:
    if not text:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    cols = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
        copy.write(text)


def write_chunk(plan: _synth.Plan, rows: _synth.ChunkRows) -> dict[str, float]:
    """Write one chunk on this process's connection; PostgreSQL COPY text, SQLite executemany."""
    mark = time.monotonic()
    tables = [
        (Case, plan.case_fields, rows.cases),
        (CaseEvent, plan.event_fields, rows.events),
        (Assignment, plan.assignment_fields, rows.assignments),
    ]
    with transaction.atomic():
        with connection.cursor() as cursor:
            for model, fields, text in tables:
                if connection.vendor == "postgresql":
                    _copy(cursor.cursor, model, fields, text)
                elif text:
                    table = connection.ops.quote_name(model._meta.db_table)
                    cols = ", ".join(connection.ops.quote_name(f.column) for f in fields)
                    marks = ", ".join(["%s"] * len(fields))
                    cursor.executemany(
                        f"INSERT INTO {table} ({cols}) VALUES ({marks})",  # noqa: S608
                        _synth.sqlite_rows(text, _synth.sqlite_converters(fields)),
                    )
        copied = time.monotonic()
    done = time.monotonic()
    return {"copy": copied - mark, "commit": done - copied}


# The plan of the run, set before the workers are forked (they inherit it, nothing is pickled).
_PLAN: _synth.Plan | None = None


def _init_worker() -> None:
    # The parent turns SIGTERM into an exception; a worker just stops (Pool.terminate).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # Close this process's own connection when it exits, so the server sees a clean goodbye.
    mp_util.Finalize(None, connections.close_all, exitpriority=100)
    # What the parent built is never garbage: keep the collector off it (and its pages shared).
    gc.freeze()
    with connection.cursor() as cursor:
        # A chunk lost in a crash is a benchmark to run again, not data to keep.
        cursor.execute("SET synchronous_commit TO off")


def _build_and_write(span: tuple[int, int]) -> dict[str, float]:
    """Build one chunk and write it on this process's connection (a worker's, or the
    command's own)."""
    assert _PLAN is not None
    mark, cpu = time.monotonic(), time.process_time()
    rows = _synth.build_chunk(_PLAN, *span)
    built, built_cpu = time.monotonic() - mark, time.process_time() - cpu
    cpu = time.process_time()
    timings = write_chunk(_PLAN, rows)
    return {
        "build": built,
        "build_cpu": built_cpu,
        "write_cpu": time.process_time() - cpu,
        **timings,
        "cases": rows.n_cases,
        "events": rows.n_events,
        "assignments": rows.n_assignments,
    }


# --- the command ------------------------------------------------------------------------------


class Command(BaseCommand):
    help = _("为性能测试批量生成合成案件（需要演示县，缺少时自动创建）")

    def add_arguments(self, parser):
        parser.add_argument("--cases", type=int, required=True, help=_("案件数量"))
        parser.add_argument("--days", type=int, default=365, help=_("分布在最近多少天内"))
        parser.add_argument("--batch-size", type=int, default=5000, help=_("每批案件数"))
        parser.add_argument("--seed", type=int, default=None, help=_("随机种子（可复现分布）"))
        parser.add_argument(
            "--workers",
            type=int,
            default=os.cpu_count() or 1,
            help=_("PostgreSQL：并行生成并写入的进程数（0 表示在本进程内）"),
        )
        parser.add_argument(
            "--keep-indexes",
            action="store_true",
            help=_("目标表为空时也不删除二级索引和外键（默认删除并在写入后重建）"),
        )

    def handle(self, *args: object, **options: Any) -> None:
        global _PLAN
        self.verbosity = options["verbosity"]
        total, days = options["cases"], options["days"]
        batch_size = options["batch_size"]
        if total < 1 or days < 1 or batch_size < 1 or options["workers"] < 0:
            raise CommandError(_("--cases、--days、--batch-size 必须为正整数"))
        if connection.vendor not in ("postgresql", "sqlite"):
            raise CommandError(_("仅支持 PostgreSQL 和 SQLite"))
        county = Region.objects.filter(code=DEMO_COUNTY_CODE).first()
        if county is None:
            call_command("load_demo", "--no-cases", stdout=self.stdout)
            county = Region.objects.get(code=DEMO_COUNTY_CODE)
        seed = options["seed"] if options["seed"] is not None else secrets.randbits(48)
        now = timezone.now().replace(microsecond=0)
        started = time.monotonic()
        phases: dict[str, float] = {}

        mark = time.monotonic()
        try:
            plan = _synth.Plan.load(county=county, now=now, seed=seed, days=days)
        except _synth.PlanError as exc:
            raise CommandError(str(exc)) from exc
        per_day = plan.add_times(total, days)
        plan.first_seq = reserve_codes(county.code[:6], per_day)
        spans = list(_synth.chunks(total, batch_size))
        postgres = connection.vendor == "postgresql"
        # Inside a caller's transaction (tests) everything stays on this connection, in order.
        in_caller = connection.in_atomic_block
        workers = min(options["workers"], len(spans))
        forking = "fork" in multiprocessing.get_all_start_methods()
        if not postgres or in_caller or not forking or workers < 2:
            workers = 0
        secondary = None
        if postgres and not in_caller and not options["keep_indexes"] and tables_empty():
            secondary = read_secondary()
        phases["prepare"] = time.monotonic() - mark

        sums: dict[str, float] = dict.fromkeys(
            ("build", "copy", "commit", "cases", "events", "assignments"), 0.0
        )
        sums.update(build_cpu=0.0, write_cpu=0.0)

        def progress(stats: dict[str, float]) -> None:
            before = int(sums["cases"])
            for key, value in stats.items():
                sums[key] += value
            done = int(sums["cases"])
            step = max(total // 10, batch_size)
            if options["verbosity"] >= 2 or done // step != before // step or done == total:
                elapsed = time.monotonic() - started
                detail = "  ".join(
                    f"{name} {sums[name]:.1f}s" for name in ("build", "copy", "commit")
                )
                self.stdout.write(f"  {done}/{total}  {done / elapsed:,.0f} cases/s  ({detail})")

        _PLAN = plan
        try:
            if postgres:
                plan.first_id = reserve_ids(total)
                with sigterm_as_exit():
                    self._load_postgres(plan, spans, workers, secondary, progress, phases)
            else:
                mark = time.monotonic()
                with transaction.atomic():
                    plan.first_id = reserve_ids(total)
                    for span in spans:
                        progress(_build_and_write(span))
                phases["load"] = time.monotonic() - mark
        finally:
            _PLAN = None

        elapsed = time.monotonic() - started
        done, events = int(sums["cases"]), int(sums["events"])
        rows = done + events + int(sums["assignments"])
        # What ``manage.py bench`` reports (the roll-up below is timed apart).
        self.figures = {"cases": done, "events": events, "seconds": elapsed}
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "已生成 %(cases)d 件案件、%(events)d 条事件，用时 %(seconds).1f 秒"
                    "（%(rate)s 件/秒，%(rows)s 行/秒，%(db)s）"
                )
                % {
                    "cases": done,
                    "events": events,
                    "seconds": elapsed,
                    "rate": f"{done / elapsed:,.0f}",
                    "rows": f"{rows / elapsed:,.0f}",
                    "db": connection.vendor,
                }
            )
        )
        self.stdout.write(
            _(
                "  各阶段用时：%(phases)s；各进程合计：生成 %(build).1f 秒，写入 %(copy).1f 秒，"
                "提交 %(commit).1f 秒（%(workers)s 个进程，每批 %(batch)d 件，种子 %(seed)d）"
            )
            % {
                "phases": "，".join(
                    f"{_phase_label(name)} {seconds:.1f} 秒" for name, seconds in phases.items()
                ),
                "build": sums["build"],
                "copy": sums["copy"],
                "commit": sums["commit"],
                "workers": workers or 1,
                "batch": batch_size,
                "seed": seed,
            }
        )
        if self.verbosity >= 2 and workers:
            self.stdout.write(
                f"  worker CPU: build {sums['build_cpu']:.1f}s  write {sums['write_cpu']:.1f}s"
            )

        # The dashboard's figures of the generated past days (today is always counted live).
        mark = time.monotonic()
        first = timezone.localdate(_synth.from_us(plan.times[0]))
        last = timezone.localdate(now) - dt.timedelta(days=1)
        if first <= last:
            written = rollups.rebuild(first, last)
            self.stdout.write(
                _("  看板日汇总已重建：%(first)s 至 %(last)s，%(rows)d 行，用时 %(seconds).1f 秒")
                % {
                    "first": first,
                    "last": last,
                    "rows": written,
                    "seconds": time.monotonic() - mark,
                }
            )

    def _load_postgres(self, plan, spans, workers, secondary, progress, phases) -> None:
        dropped = False
        try:
            if secondary is not None and len(secondary):
                mark = time.monotonic()
                drop_secondary(secondary)
                dropped = True
                phases["drop"] = time.monotonic() - mark
                self.stdout.write(
                    _(
                        "  目标表为空：写入前删除 %(indexes)d 个二级索引和 %(fks)d 个外键约束，"
                        "写入后按原定义重建"
                    )
                    % {"indexes": len(secondary.indexes), "fks": len(secondary.foreign_keys)}
                )
            mark = time.monotonic()
            if workers:
                # The workers open their own connections; none may inherit this one's socket.
                connections.close_all()
                with multiprocessing.get_context("fork").Pool(
                    workers, initializer=_init_worker
                ) as pool:
                    for stats in pool.imap_unordered(_build_and_write, spans):
                        progress(stats)
                    pool.close()
                    pool.join()
            else:
                for span in spans:
                    progress(_build_and_write(span))
            phases["load"] = time.monotonic() - mark
            # Statistics need no index: gathered before the rebuild, on the loaded tables.
            mark = time.monotonic()
            analyze_tables(parallel=max(workers, 1))
            phases["analyze"] = time.monotonic() - mark
        finally:
            if dropped:
                mark = time.monotonic()
                try:
                    # One session more than cores: each build ends writing and syncing its
                    # file, and another keeps the core busy meanwhile.
                    took = restore_secondary(secondary, parallel=max(workers, 1) + 1)
                except Exception:
                    self.stderr.write(_("重建索引失败，请手工执行：") + "\n")
                    for sql in restore_statements(secondary):
                        self.stderr.write(f"{sql};")
                    raise
                phases["indexes"] = time.monotonic() - mark
                if self.verbosity >= 2:
                    for seconds, sql in sorted(took, reverse=True)[:10]:
                        self.stdout.write(f"    {seconds:6.2f}s  {sql[:110]}")


def _phase_label(name: str) -> str:
    labels = {
        "prepare": _("准备"),
        "drop": _("删除索引"),
        "load": _("生成并写入"),
        "indexes": _("重建索引"),
        "analyze": "ANALYZE",
    }
    return labels[name]
