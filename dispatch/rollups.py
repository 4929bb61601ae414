"""The daily roll-up behind the dashboard: past days summed from ``DailyFigure``, today live.

A fact belongs to the day it happened (``dispatch.figures``), so a past day's counts only change
when a case's dated fact changes: the writers mark that day (``mark_changed``, called by the
services' core for every change of a dated column) and the worker counts it again
(``refresh``). Each night the day that ended is counted once. A day not yet counted, or marked,
is read live from the cases, so a figure is never stale: the dashboard shows when it was
computed, and what it shows is true at that moment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from dispatch import figures
from dispatch.models import Case, DailyFigure, DailyTotal, RollupDay
from grids.models import CHILD_LEVEL, Level, Region
from grids.selectors import ids_within

log = logging.getLogger(__name__)

# The counters a DailyFigure row holds (a summed fact also keeps how many cases it adds up).
FIELDS = [*figures.FACT_NAMES, "working_days_count"]


def _local_day(moment: dt.datetime) -> dt.date:
    return timezone.localdate(moment)


def _midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time()))


# --- writing ----------------------------------------------------------------------------------


def mark_changed(days: Iterable[dt.date], *, today: dt.date) -> None:
    """A dated fact of these days changed: count them again (today is always live)."""
    past = sorted({day for day in days if day < today})
    if not past:
        return
    existing = set(RollupDay.objects.filter(day__in=past).values_list("day", flat=True))
    RollupDay.objects.filter(day__in=past, done=True).update(done=False)
    RollupDay.objects.bulk_create(
        [RollupDay(day=day, done=False) for day in past if day not in existing],
        ignore_conflicts=True,
    )


# A case's dimensions, as the roll-up stores them.
CASE_DIMS = {
    "region_id": "region_id",
    "region_path": "region__path",
    "category_id": "category_id",
    "unit_id": "lead_unit_id",
    "window_id": "intake_unit_id",
}
DIMS = tuple(CASE_DIMS)


def _grouped_by_day(
    cases: QuerySet[Case], start: dt.datetime, end: dt.datetime
) -> dict[tuple, dict[str, int]]:
    """Every fact counted per day + dimensions, one grouped query per date column."""
    tz = timezone.get_current_timezone()
    rows: dict[tuple, dict[str, int]] = defaultdict(dict)
    names = ["fact_day", *CASE_DIMS.values()]
    for column, facts in figures.by_when().items():
        grouped = (
            cases.filter(**{f"{column}__gte": start, f"{column}__lt": end})
            .annotate(fact_day=TruncDate(column, tzinfo=tz))
            .order_by()
            .values(*names)
            .annotate(**figures.aggregates_of(facts))
        )
        for row in grouped:
            key = tuple(row.pop(name) for name in names)
            rows[key].update({k: v or 0 for k, v in row.items()})
    return rows


def _in_window(start: dt.datetime, end: dt.datetime) -> tuple[Q, dict]:
    """The cases with a fact dated in the window, and the aggregates that count each fact
    where its own date is in it."""
    any_fact = Q(pk__in=[])
    aggregates: dict = {}
    for column, facts in figures.by_when().items():
        in_window = Q(**{f"{column}__gte": start, f"{column}__lt": end})
        any_fact |= in_window
        aggregates.update(figures.aggregates_of(facts, within=in_window))
    return any_fact, aggregates


def _window_total(cases: QuerySet[Case], start: dt.datetime, end: dt.datetime) -> dict:
    any_fact, aggregates = _in_window(start, end)
    return {k: v for k, v in cases.filter(any_fact).aggregate(**aggregates).items() if v}


def _grouped_window(
    cases: QuerySet[Case], start: dt.datetime, end: dt.datetime
) -> dict[tuple, dict[str, int]]:
    """Every fact counted per dimensions in one query, each where its own date is in the
    window (counters that are zero are left out)."""
    any_fact, aggregates = _in_window(start, end)
    grouped = cases.filter(any_fact).order_by().values(*CASE_DIMS.values()).annotate(**aggregates)
    # Ids and counts only: read as plain tuples, without building a dict per row.
    columns, fetched = _tuples(grouped)
    width = len(CASE_DIMS)
    counted = columns[width:]
    rows: dict[tuple, dict[str, int]] = {}
    for values in fetched:
        rows[values[:width]] = {
            name: value for name, value in zip(counted, values[width:], strict=True) if value
        }
    return rows


def _tuples(qs: QuerySet) -> tuple[list[str], list[tuple]]:
    """The rows of a ``values()`` query as tuples, with the names of their columns."""
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [column[0] for column in cursor.description], cursor.fetchall()


def rebuild(first: dt.date, last: dt.date) -> int:
    """Count the days ``first``..``last`` (inclusive) again from the cases; returns rows written.

    One grouped query per date column for the whole range, whatever its length.
    """
    start, end = _midnight(first), _midnight(last + dt.timedelta(days=1))
    rows = _grouped_by_day(Case.objects.all(), start, end)
    written = [(key, values) for key, values in rows.items() if any(values.values())]
    with transaction.atomic():
        DailyFigure.objects.filter(day__gte=first, day__lte=last).delete()
        _write_figures(written)
        DailyTotal.objects.filter(day__gte=first, day__lte=last).delete()
        _write_totals(first, last)
        days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
        RollupDay.objects.filter(day__in=days).delete()
        RollupDay.objects.bulk_create([RollupDay(day=day, done=True) for day in days])
    return len(written)


_KEY_COLUMNS = ("day", "region_id", "region_path", "category_id", "unit_id", "window_id")


def _write_figures(rows: list[tuple[tuple, dict[str, int]]]) -> None:
    """Insert the counted rows: COPY on PostgreSQL (a year of a county is ~10^6 rows, minutes
    as model instances), ``bulk_create`` elsewhere."""
    if connection.vendor == "postgresql":
        columns = ", ".join([*_KEY_COLUMNS, *FIELDS])
        table = DailyFigure._meta.db_table
        with (
            connection.cursor() as cursor,
            cursor.copy(
                f"COPY {table} ({columns}) FROM STDIN"  # noqa: S608 - names from the model
            ) as copy,
        ):
            for key, values in rows:
                copy.write_row((*key, *(values.get(name, 0) for name in FIELDS)))
        return
    DailyFigure.objects.bulk_create(
        [
            DailyFigure(
                **dict(zip(_KEY_COLUMNS, key, strict=True)),
                **{name: values.get(name, 0) for name in FIELDS},
            )
            for key, values in rows
        ],
        batch_size=2000,
    )


def _write_totals(first: dt.date, last: dt.date) -> None:
    """The days' ``DailyTotal`` rows: their ``DailyFigure`` rows summed per place, in SQL."""
    keys = ("day", "region_id", "region_path")
    columns = ", ".join([*keys, *FIELDS])
    sums = ", ".join([*keys, *(f"SUM({name})" for name in FIELDS)])
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {DailyTotal._meta.db_table} ({columns}) "  # noqa: S608 - model names
            f"SELECT {sums} FROM {DailyFigure._meta.db_table} "
            "WHERE day >= %s AND day <= %s GROUP BY day, region_id, region_path",
            [first, last],
        )


def refresh(*, now: dt.datetime | None = None, max_days: int = 31) -> int:
    """The worker's pass: count the days marked changed, and the days ended since the last."""
    now = now or timezone.now()
    yesterday = _local_day(now) - dt.timedelta(days=1)
    dirty = list(
        RollupDay.objects.filter(done=False, day__lte=yesterday)
        .order_by("day")
        .values_list("day", flat=True)[:max_days]
    )
    last_done = RollupDay.objects.filter(done=True).order_by("-day").values_list("day", flat=True)
    latest = last_done.first()
    days = set(dirty)
    if latest is not None and latest < yesterday:
        for i in range(1, min((yesterday - latest).days, max_days) + 1):
            days.add(latest + dt.timedelta(days=i))
    written = 0
    for day in sorted(days):
        written += rebuild(day, day)
    return written


# --- reading ----------------------------------------------------------------------------------


def _in_scope(region: Region) -> QuerySet[Case]:
    return Case.objects.filter(region_id__in=ids_within([region.path]))


def _split(
    start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> tuple[Counted, list[tuple[dt.datetime, dt.datetime]]]:
    """The period as (rolled-up days, live windows): days before today that are counted, and
    the rest (today, days not yet counted or marked changed) read from the cases."""
    today0 = _midnight(_local_day(now))
    first = _local_day(start)
    upto = min(end, today0)
    last = _local_day(upto - dt.timedelta(microseconds=1)) if upto > start else None
    counted: dict[dt.date, str] = {}
    if last is not None and last >= first:
        counted = {
            day: str(generation)
            for day, generation in RollupDay.objects.filter(
                day__gte=first, day__lte=last, done=True
            ).values_list("day", "generation")
        }
    done = set(counted)
    live: list[tuple[dt.datetime, dt.datetime]] = []
    if last is not None:
        day = first
        while day <= last:
            if day not in done:
                run = day
                while day + dt.timedelta(days=1) <= last and day + dt.timedelta(days=1) not in done:
                    day += dt.timedelta(days=1)
                live.append((max(start, _midnight(run)), _midnight(day + dt.timedelta(days=1))))
            day += dt.timedelta(days=1)
    if end > today0:
        live.append((max(start, today0), end))
    return Counted(first, last, done, _stamp(counted)), live


@dataclass(frozen=True)
class Counted:
    """The counted days of a period: its first and last day before today, those of them that
    are counted, and a stamp that changes whenever one of them is counted again or marked."""

    first: dt.date
    last: dt.date | None
    done: set[dt.date]
    stamp: str


def _stamp(counted: dict[dt.date, str]) -> str:
    digest = hashlib.blake2b(digest_size=12)
    for day in sorted(counted):
        digest.update(f"{day.isoformat()}={counted[day]};".encode())
    return digest.hexdigest()


def _add(into: dict, counts: dict) -> None:
    for name, value in counts.items():
        if value:
            into[name] = into.get(name, 0) + value


def _rolled(
    region: Region,
    counted: Counted,
    model: type[DailyFigure] | type[DailyTotal] = DailyFigure,
):
    """The scope's rows of the counted days (the others are read live), of ``model``."""
    first, last = counted.first, counted.last
    if last is None:
        return model.objects.none()
    not_done = [
        first + dt.timedelta(days=i)
        for i in range((last - first).days + 1)
        if first + dt.timedelta(days=i) not in counted.done
    ]
    rows = model.objects.filter(region_path__startswith=region.path, day__gte=first, day__lte=last)
    return rows.exclude(day__in=not_done) if not_done else rows


def rows(region: Region, *, start: dt.datetime, end: dt.datetime, now: dt.datetime) -> list[dict]:
    """The period's figures of the scope as rows of dimensions and counts: one grouped query
    over the counted days, and the rest (today, days not counted yet) live."""
    counted, live = _split(start, end, now)
    return [*(_counted_rows(region, counted) if counted.done else []), *_live_rows(region, live)]


def _counted_rows(region: Region, counted: Counted) -> list[dict]:
    grouped = (
        _rolled(region, counted)
        .order_by()
        .values(*DIMS)
        .annotate(**{name: Sum(name) for name in FIELDS})
    )
    return [{**row, **{name: row[name] or 0 for name in FIELDS}} for row in grouped]


def _live_rows(region: Region, live: list[tuple[dt.datetime, dt.datetime]]) -> list[dict]:
    """The live windows' rows; counters that are zero are left out (``_counters`` fills in)."""
    out: list[dict] = []
    scope = _in_scope(region) if live else Case.objects.none()  # the regions read once
    for window_start, window_end in live:
        grouped = _grouped_window(scope, window_start, window_end)
        for key, values in grouped.items():
            out.append({**dict(zip(DIMS, key, strict=True)), **values})
    return out


# The breakdowns a tally keeps summed.
TALLY_DIMENSIONS = ("category", "child", "unit", "window")
# How long the sums of counted days are kept; a change of any of their days makes a new stamp,
# so this only bounds the space that sums of past periods take.
TALLY_SECONDS = 2 * 24 * 3600


@dataclass(frozen=True)
class Tally:
    """A period's figures of a scope: the total, and the sums per ``TALLY_DIMENSIONS``."""

    total: dict[str, int]
    by: dict[str, dict]
    # The totals of the windows counted live, by (start, end): a trend over the same windows
    # reads them from here (``series_of(known=...)``) instead of counting them again.
    live: dict[tuple[dt.datetime, dt.datetime], dict[str, int]] = field(default_factory=dict)


def _tally_of(figure_rows: list[dict], region: Region) -> Tally:
    return Tally(
        total(figure_rows),
        {dimension: by(figure_rows, dimension, region) for dimension in TALLY_DIMENSIONS},
    )


def _merged(into: Tally, more: Tally) -> Tally:
    """``into`` plus ``more``, as a new tally (a kept one is never changed)."""
    summed = dict(into.total)
    _add(summed, more.total)
    grouped: dict[str, dict] = {}
    for dimension in TALLY_DIMENSIONS:
        rows = {key: dict(counts) for key, counts in into.by[dimension].items()}
        for key, counts in more.by[dimension].items():
            _add(rows.setdefault(key, dict.fromkeys(FIELDS, 0)), counts)
        grouped[dimension] = rows
    return Tally(summed, grouped)


def tally(region: Region, *, start: dt.datetime, end: dt.datetime, now: dt.datetime) -> Tally:
    """The period's figures of the scope, summed: the counted days' sums kept under the stamp
    of those days (they change only when a day is counted again, and then so does the stamp),
    today and the days not yet counted live. What it shows is true when it is computed."""
    counted, live = _split(start, end, now)
    result = _counted_tally(region, counted) if counted.done else _tally_of([], region)
    windows = {}
    for window in live:
        live_rows = _live_rows(region, [window])
        windows[window] = total(live_rows)
        result = _merged(result, _tally_of(live_rows, region))
    return replace(result, live=windows)


def _kept(kind: str, region: Region, counted: Counted, compute):
    """``compute()``, kept in the shared cache under the counted days' stamp; a cache that
    cannot be reached costs the computing, never the page."""
    key = f"rollups:{kind}:{region.pk}:{region.path}:{counted.first}:{counted.last}:{counted.stamp}"
    try:
        value = cache.get(key)
    except Exception:  # noqa: BLE001 - any cache failure: count without it
        log.warning("roll-up sums not read from the cache (unreachable); counted instead")
        return compute()
    if value is None:
        value = compute()
        try:
            cache.set(key, value, TALLY_SECONDS)
        except Exception:  # noqa: BLE001 - kept next time, when the cache is back
            log.warning("roll-up sums not kept in the cache (unreachable)")
    return value


def _counted_tally(region: Region, counted: Counted) -> Tally:
    return _kept(
        "tally", region, counted, lambda: _tally_of(_counted_rows(region, counted), region)
    )


def total(figure_rows: list[dict]) -> dict[str, int]:
    result: dict[str, int] = dict.fromkeys(FIELDS, 0)
    for row in figure_rows:
        for name in FIELDS:
            result[name] += row.get(name, 0)
    return result


def counts(
    region: Region, *, start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> dict[str, int]:
    """Every fact's count in the scope for the period."""
    return tally(region, start=start, end=end, now=now).total


def _child_prefix_length(region: Region) -> int:
    child = CHILD_LEVEL.get(Level(region.level))
    code = 15 if child == Level.GRID else 12
    return len(region.path) + code + 1


ROW_DIMENSIONS = {
    "category": "category_id",
    "unit": "unit_id",
    "window": "window_id",
    "grid": "region_id",
}


def by(figure_rows: list[dict], dimension: str, region: Region) -> dict:
    """The rows summed per category / handling unit / window / grid / lower area ("child")."""
    result: dict = {}
    if dimension == "child":
        children = child_ids(region, {row["region_path"] for row in figure_rows})
        for row in figure_rows:
            child = children.get(row["region_path"])
            if child is not None:
                _add(result.setdefault(child, {}), _counters(row))
    else:
        column = ROW_DIMENSIONS[dimension]
        for row in figure_rows:
            _add(result.setdefault(row[column], {}), _counters(row))
    for counts in result.values():
        for name in FIELDS:
            counts.setdefault(name, 0)
    return result


def _counters(row: dict) -> dict[str, int]:
    return {name: row[name] for name in FIELDS if row.get(name)}


def counts_by(
    region: Region, dimension: str, *, start: dt.datetime, end: dt.datetime, now: dt.datetime
) -> dict:
    """The period's counts per category / handling unit / window / lower area / grid."""
    if dimension in TALLY_DIMENSIONS:
        return tally(region, start=start, end=end, now=now).by[dimension]
    return by(rows(region, start=start, end=end, now=now), dimension, region)


def series(
    region: Region, kind: str, *, start: dt.datetime, now: dt.datetime
) -> dict[dt.date, dict[str, int]]:
    """The counts per month (``kind="month"``) or week from ``start`` to now, keyed by the
    period's first day (``series_of`` for one kind)."""
    return series_of(region, (kind,), start=start, now=now)[kind]


def _period_start(kind: str, day: dt.date) -> dt.date:
    # Weeks begin on Monday, as the week list of the dashboard does.
    return day.replace(day=1) if kind == "month" else day - dt.timedelta(days=day.weekday())


def series_of(
    region: Region,
    kinds: Iterable[str],
    *,
    start: dt.datetime,
    now: dt.datetime,
    known: dict[tuple[dt.datetime, dt.datetime], dict[str, int]] | None = None,
) -> dict[str, dict[dt.date, dict[str, int]]]:
    """The counts per period of each of ``kinds`` ("month", "week") from ``start`` to now,
    keyed by the period's first day: the counted days summed per day in SQL and into every
    kind's periods once (kept under their stamp, like ``tally``), the rest live (``known``:
    totals of live windows already counted, e.g. a tally's of the same scope and moment)."""
    known = known or {}
    kinds = tuple(kinds)
    counted, live = _split(start, now, now)
    result: dict[str, dict[dt.date, dict[str, int]]] = {kind: {} for kind in kinds}
    if counted.done:
        kept = _kept(
            "series-" + "-".join(kinds),
            region,
            counted,
            lambda: _into_periods(kinds, _counted_days(region, counted)),
        )
        result = {kind: {k: dict(v) for k, v in periods.items()} for kind, periods in kept.items()}
    tz = timezone.get_current_timezone()
    scope = _in_scope(region) if live else Case.objects.none()  # the regions read once
    days: list[tuple[dt.date, dict[str, int]]] = []
    for window_start, window_end in live:
        day = _local_day(window_start)
        if _local_day(window_end - dt.timedelta(microseconds=1)) == day:
            # Within one day (today, most often): every fact is that day's, one query.
            counts = known.get((window_start, window_end))
            days.append((day, counts or _window_total(scope, window_start, window_end)))
            continue
        grouped = figures.live_counts(
            scope,
            start=window_start,
            end=window_end,
            bucket=lambda column: TruncDate(column, tzinfo=tz),
        )
        days.extend((_as_date(bucket), values) for bucket, values in grouped.items())
    for kind, periods in _into_periods(kinds, days).items():
        for first, values in periods.items():
            _add(result[kind].setdefault(first, dict.fromkeys(FIELDS, 0)), values)
    return result


def _into_periods(
    kinds: tuple[str, ...], days: Iterable[tuple[dt.date, dict[str, int]]]
) -> dict[str, dict[dt.date, dict[str, int]]]:
    """Days' counts summed into the periods of each kind (keyed by their first day)."""
    result: dict[str, dict[dt.date, dict[str, int]]] = {kind: {} for kind in kinds}
    for day, values in days:
        for kind in kinds:
            first = _period_start(kind, day)
            _add(result[kind].setdefault(first, dict.fromkeys(FIELDS, 0)), values)
    return result


def _counted_days(region: Region, counted: Counted) -> list[tuple[dt.date, dict[str, int]]]:
    rolled = (
        _rolled(region, counted, DailyTotal)
        .order_by()
        .values("day")
        .annotate(**{name: Sum(name) for name in FIELDS})
    )
    return [(_as_date(row.pop("day")), row) for row in rolled]


def _as_date(value) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def child_ids(region: Region, paths: Iterable[str]) -> dict[str, int]:
    """The lower area of ``region`` (its id) that holds each of ``paths``, for those it has."""
    if Level(region.level) not in CHILD_LEVEL:
        return {}
    prefix = _child_prefix_length(region)
    heads = {path: path[:prefix] for path in paths}
    ids = dict(Region.objects.filter(path__in=set(heads.values())).values_list("path", "pk"))
    return {path: ids[head] for path, head in heads.items() if head in ids}
