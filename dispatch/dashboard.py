"""The supervisors' dashboard: what came in, what is late, who is slow, how satisfied people are.

Built for one scope (a grid, village, township or the whole county, within the user's reach)
and one period. Every figure comes from ``dispatch.figures`` (counts, then rates); every number
can be opened as the list of cases behind it (``drill``), read through the same scoped selector
as every other list, so a number and its list always agree.
"""

from __future__ import annotations

import calendar as month_calendar
import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field, replace

from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from dispatch import figures, rollups
from dispatch.access import SUPERVISE_ROLES, Reach, reach_of
from dispatch.models import CASE_TEXTS, Case, CaseEvent, Category, PendingRequest
from dispatch.selectors import cases_within
from dispatch.states import OPEN_STATUSES, Action, Channel, Status
from grids.models import Level, Region, Unit
from grids.selectors import ids_within
from people.models import User

PERIODS = {
    "day": _("今日"),
    "week": _("本周"),
    "month": _("本月"),
    "quarter": _("本季度"),
    "year": _("本年"),
    "custom": _("自定义"),
}
LIST_SIZE = 20


@dataclass(frozen=True)
class Period:
    kind: str
    start: dt.datetime  # local midnight, inclusive
    end: dt.datetime  # exclusive; never after now

    @property
    def label(self) -> str:
        return str(PERIODS[self.kind])


def _midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time()))


def period_of(
    kind: str, *, now: dt.datetime, start: dt.date | None = None, end: dt.date | None = None
) -> Period:
    """The period ``kind`` that contains ``now`` (or the custom days ``start``..``end``)."""
    today = timezone.localdate(now)
    if kind == "custom" and start is not None and end is not None and start <= end:
        return Period(kind, _midnight(start), min(_midnight(end + dt.timedelta(days=1)), now))
    if kind == "day":
        first = today
    elif kind == "week":
        first = today - dt.timedelta(days=today.weekday())
    elif kind == "quarter":
        first = dt.date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    elif kind == "year":
        first = dt.date(today.year, 1, 1)
    else:
        kind, first = "month", today.replace(day=1)
    return Period(kind, _midnight(first), now)


def months_back(now: dt.datetime, n: int) -> list[Period]:
    """The last ``n`` calendar months up to now, oldest first (trends)."""
    today = timezone.localdate(now)
    year, month = today.year, today.month
    out = []
    for _i in range(n):
        first = dt.date(year, month, 1)
        last = dt.date(year, month, month_calendar.monthrange(year, month)[1])
        out.append(Period("month", _midnight(first), min(_midnight(last + dt.timedelta(1)), now)))
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return list(reversed(out))


def month_of(period: Period) -> Period:
    """The calendar month of the period's last moment, up to the period's end."""
    month = months_back(period.end - dt.timedelta(microseconds=1), 1)[0]
    return replace(month, end=min(_midnight(_next_month(month.start)), period.end))


def _next_month(moment: dt.datetime) -> dt.date:
    day = timezone.localdate(moment)
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def weeks_back(now: dt.datetime, n: int) -> list[Period]:
    today = timezone.localdate(now)
    monday = today - dt.timedelta(days=today.weekday())
    out = []
    for i in range(n):
        first = monday - dt.timedelta(weeks=i)
        out.append(Period("week", _midnight(first), min(_midnight(first + dt.timedelta(7)), now)))
    return list(reversed(out))


# --- scope -----------------------------------------------------------------------------------


def dashboard_areas(user: User) -> list[Region]:
    """The nodes a supervisor or leader oversees (outermost first)."""
    reach = reach_of(user)
    paths = reach.area_paths(SUPERVISE_ROLES)
    return list(Region.objects.filter(path__in=paths).order_by("path"))


def scope_for(user: User, code: str | None) -> Region | None:
    """The chosen node if it lies within the user's areas, else their first area; None: none."""
    areas = dashboard_areas(user)
    if not areas:
        return None
    if code:
        chosen = Region.objects.filter(code=code).first()
        if chosen is not None and any(chosen.path.startswith(a.path) for a in areas):
            return chosen
    return areas[0]


def scoped_cases(reach: Reach, region: Region) -> QuerySet[Case]:
    """The cases of the scope that this user may see (the same set their lists show)."""
    return cases_within(reach).filter(region_id__in=ids_within([region.path]))


# --- the page ---------------------------------------------------------------------------------


@dataclass
class Board:
    region: Region
    period: Period
    computed_at: dt.datetime
    counts: dict
    rates: list
    levels: list
    average_days: float | None
    by_channel: list
    open_by_step: list
    due_soon: list
    overdue: list
    flagged: list
    requests: list
    negative: list
    urged: list
    assessment: list
    assessment_month: Period
    breakdowns: dict = field(default_factory=dict)
    months: list = field(default_factory=list)
    weeks: list = field(default_factory=list)
    children: list = field(default_factory=list)
    map_cells: list = field(default_factory=list)
    map_height: int = 0


def build(user: User, region: Region, period: Period, *, now: dt.datetime) -> Board:
    reach = reach_of(user)
    cases = scoped_cases(reach, region)
    tally = rollups.tally(region, start=period.start, end=period.end, now=now)
    counts = tally.total
    open_rows = open_now(cases, now=now)
    cells, map_height = grid_map(region, open_rows)
    month = month_of(period)
    month_tally = (
        tally
        if (month.start, month.end) == (period.start, period.end)
        else rollups.tally(region, start=month.start, end=month.end, now=now)
    )
    return Board(
        assessment=assessment(region, month_tally, open_rows),
        assessment_month=month,
        map_cells=cells,
        map_height=map_height,
        region=region,
        period=period,
        computed_at=now,
        counts=counts,
        rates=figures.rates(counts),
        levels=figures.level_shares(counts),
        average_days=figures.average_working_days(counts),
        by_channel=_by_channel(cases, period),
        open_by_step=_open_by_step(open_rows),
        due_soon=list(_listing(open_list(cases, "due_soon", now=now))[:LIST_SIZE]),
        overdue=list(_listing(open_list(cases, "overdue", now=now))[:LIST_SIZE]),
        flagged=list(_listing(open_list(cases, "flagged", now=now))[:LIST_SIZE]),
        urged=list(_listing(open_list(cases, "urged", now=now))[:LIST_SIZE]),
        requests=list(
            PendingRequest.objects.filter(state=PendingRequest.State.PENDING, case__in=cases)
            .select_related("case", "case__lead_unit", "requested_by")
            .defer(*(f"case__{name}" for name in CASE_TEXTS))
            .order_by("requested_at")[:LIST_SIZE]
        ),
        negative=list(_listing(open_list(cases, "negative", now=now))[:LIST_SIZE]),
        breakdowns={
            dimension: breakdown(region, tally, dimension, open_rows)
            for dimension in rollups.TALLY_DIMENSIONS
        },
        **_trends(region, now=now, known=tally.live),
    )


def _trends(region: Region, *, now: dt.datetime, known=None) -> dict[str, list]:
    """The last 12 months and 12 weeks, each as (period, counts, rates), oldest first: one
    reading of the counted days for both (``known``: live windows already counted)."""
    wanted = {"month": months_back(now, 12), "week": weeks_back(now, 12)}
    start = min(periods[0].start for periods in wanted.values())
    by_kind = rollups.series_of(region, wanted, start=start, now=now, known=known)
    trends = {}
    for kind, periods in wanted.items():
        out = []
        for period in periods:
            counts = by_kind[kind].get(
                timezone.localdate(period.start), dict.fromkeys(rollups.FIELDS, 0)
            )
            out.append((period, counts, {r.key: r for r in figures.rates(counts)}))
        trends[f"{kind}s"] = out
    return trends


def assessment(region: Region, month: rollups.Tally, open_rows: OpenNow) -> list[Row]:
    """考评: the month's handling units ranked by on-time rate, then satisfaction, then volume.

    Units with too few cases for a meaningful rate come last, in the order of what they had.
    """
    rows = breakdown(region, month, "unit", open_rows)

    def rank(row: Row) -> tuple:
        on_time, satisfied = row.rates["on_time"], row.rates["satisfaction"]
        return (
            not on_time.meaningful,
            -(on_time.value or 0.0),
            -(satisfied.value or 0.0),
            -row.counts.get("received", 0),
            row.label,
        )

    return sorted(rows, key=rank)


def awaiting_follow_up(cases: QuerySet[Case]) -> QuerySet[Case]:
    """差评 not yet followed up (a negative rating must be followed up)."""
    return cases.filter(resident_rating__lte=2).filter(
        Q(followed_up_at__isnull=True) | Q(followed_up_at__lt=F("rated_at"))
    )


def _listing(qs: QuerySet[Case]) -> QuerySet[Case]:
    return qs.select_related("category__parent", "region", "lead_unit", "owner_unit").only(
        "code",
        "summary",
        "status",
        "grade",
        "due_at",
        "warn_at",
        "rated_at",
        "resident_rating",
        "category__name",
        "category__parent__name",
        "region__name",
        "lead_unit__name",
        "owner_unit__name",
    )


def _by_channel(cases: QuerySet[Case], period: Period) -> list[tuple[str, str, int]]:
    rows = dict(
        cases.filter(reported_at__gte=period.start, reported_at__lt=period.end)
        .order_by()
        .values_list("channel")
        .annotate(n=Count("pk"))
    )
    return [(value, str(label), rows.get(value, 0)) for value, label in Channel.choices]


@dataclass(frozen=True)
class OpenNow:
    """The scope's open cases now, counted (``n``) with those overdue (``late``): per place and
    step, and per category, handling unit and window."""

    by_place_step: dict[tuple[int, str], tuple[int, int]]
    by: dict[str, dict]  # DIMENSION_COLUMNS_OF_CASE's column -> key -> (n, late)
    paths: dict[int, str]  # the places' paths

    def per_place(self) -> dict[int, tuple[int, int]]:
        out: dict[int, tuple[int, int]] = {}
        for (region_id, _status), (n, late) in self.by_place_step.items():
            had = out.get(region_id, (0, 0))
            out[region_id] = (had[0] + n, had[1] + late)
        return out


OPEN_COLUMNS = ("category_id", "lead_unit_id", "intake_unit_id")


def open_now(cases: QuerySet[Case], *, now: dt.datetime) -> OpenNow:
    """The scope's open cases read from their index (``case_open_summary``), counted per place
    and step and per each of ``OPEN_COLUMNS``: one scan with grouping sets on PostgreSQL, one
    grouped query per dimension elsewhere. A few hundred rows, whatever the backlog."""
    open_cases = cases.filter(status__in=sorted(OPEN_STATUSES)).order_by()
    counted = {
        "n": Count("pk"),
        "late": Count("pk", filter=Q(paused_at__isnull=True, due_at__lte=now)),
    }
    by_place_step: dict[tuple[int, str], tuple[int, int]] = {}
    by: dict[str, dict] = {column: {} for column in OPEN_COLUMNS}
    grouped = _grouping_sets(open_cases, counted)
    if grouped is not None:
        for region_id, status, category_id, lead_unit_id, intake_unit_id, n, late in grouped:
            # Which set a row is of shows in its columns: places, categories and windows are
            # never empty, so a row with none of them counts the cases of one handling unit.
            if region_id is not None:
                by_place_step[(region_id, status)] = (n, late)
            elif category_id is not None:
                by["category_id"][category_id] = (n, late)
            elif intake_unit_id is not None:
                by["intake_unit_id"][intake_unit_id] = (n, late)
            else:
                by["lead_unit_id"][lead_unit_id] = (n, late)
    else:
        for row in open_cases.values("region_id", "status").annotate(**counted):
            by_place_step[(row["region_id"], row["status"])] = (row["n"], row["late"])
        for column in OPEN_COLUMNS:
            for row in open_cases.values(column).annotate(**counted):
                by[column][row[column]] = (row["n"], row["late"])
    # The places' paths (for the lower areas) from the few regions, not joined to every case.
    paths = dict(
        Region.objects.filter(pk__in={key[0] for key in by_place_step}).values_list("pk", "path")
    )
    return OpenNow(by_place_step, by, paths)


_ALL_COLUMNS_GROUPED = "GROUP BY 1, 2, 3, 4, 5"


def _grouping_sets(open_cases: QuerySet[Case], counted: dict) -> list[tuple] | None:
    """On PostgreSQL, the open cases counted per (place, step), category, handling unit and
    window in one scan (``GROUPING SETS``); None where the database has no grouping sets."""
    if connection.vendor != "postgresql":
        return None
    grouped = open_cases.values("region_id", "status", *OPEN_COLUMNS).annotate(**counted)
    sql, params = grouped.query.sql_with_params()
    if not sql.endswith(_ALL_COLUMNS_GROUPED):
        return None
    sql = sql[: -len(_ALL_COLUMNS_GROUPED)] + "GROUP BY GROUPING SETS ((1, 2), (3), (4), (5))"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _open_by_step(open_rows: OpenNow) -> list[tuple[str, str, int]]:
    rows: dict[str, int] = defaultdict(int)
    for (_region_id, status), (n, _late) in open_rows.by_place_step.items():
        rows[status] += n
    return [(s.value, str(s.label), rows.get(s.value, 0)) for s in Status if s in OPEN_STATUSES]


# --- breakdowns -------------------------------------------------------------------------------

# dimension -> (the label of a row)
DIMENSIONS = {
    "category": _("分类"),
    "child": _("下级区域"),
    "unit": _("承办单位"),
    "window": _("受理窗口"),
    "grid": _("网格"),
}


@dataclass(frozen=True)
class Row:
    key: int | str
    label: str
    counts: dict
    rates: dict
    average_days: float | None
    overdue_now: int


def breakdown(
    region: Region, tally: rollups.Tally, dimension: str, open_rows: OpenNow
) -> list[Row]:
    """One row per category / lower area / handling unit / window, ranked by what came in;
    ``open_rows`` (``open_now``) give the overdue cases of each row now."""
    grouped = tally.by[dimension]
    labels = _labels(dimension, grouped.keys())
    overdue = _overdue_by(open_rows, region, dimension)
    rows = []
    for key, counts in grouped.items():
        if key is None or key not in labels:
            continue
        rows.append(
            Row(
                key=key,
                label=labels[key],
                counts=counts,
                rates={r.key: r for r in figures.rates(counts)},
                average_days=figures.average_working_days(counts),
                overdue_now=overdue.get(key, 0),
            )
        )
    rows.sort(key=lambda r: (-r.counts.get("received", 0), r.label))
    return rows


def _labels(dimension: str, keys) -> dict:
    ids = [k for k in keys if k is not None]
    if dimension == "category":
        return {c.pk: str(c) for c in Category.objects.filter(pk__in=ids).select_related("parent")}
    if dimension in ("child", "grid"):
        return dict(Region.objects.filter(pk__in=ids).values_list("pk", "name"))
    return dict(Unit.objects.filter(pk__in=ids).values_list("pk", "name"))


def _overdue_by(open_rows: OpenNow, region: Region, dimension: str) -> dict:
    overdue: dict = defaultdict(int)
    if dimension == "child":
        children = rollups.child_ids(region, set(open_rows.paths.values()))
        for region_id, (_n, late) in open_rows.per_place().items():
            child = children.get(open_rows.paths[region_id])
            if child is not None:
                overdue[child] += late
        return overdue
    for key, (_n, late) in open_rows.by[DIMENSION_COLUMNS_OF_CASE[dimension]].items():
        overdue[key] += late
    return overdue


# --- drilling down ----------------------------------------------------------------------------

# Lists of what is open now, by name (the dashboard's 黄灯 / 红灯 / 挂牌 / 差评 lists).
OPEN_LISTS = {
    "due_soon": _("即将超期（黄灯）"),
    "overdue": _("已超期（红灯）"),
    "flagged": _("挂牌督办"),
    "urged": _("督办中"),
    "negative": _("差评待回访"),
}


def open_list(cases: QuerySet[Case], name: str, *, now: dt.datetime) -> QuerySet[Case]:
    open_cases = cases.filter(status__in=sorted(OPEN_STATUSES))
    running = open_cases.filter(paused_at__isnull=True)
    if name == "due_soon":
        return running.filter(warn_at__lte=now, due_at__gt=now).order_by("due_at", "pk")
    if name == "overdue":
        return running.filter(due_at__lte=now).order_by("due_at", "pk")
    if name == "flagged":
        return open_cases.filter(is_flagged=True).order_by("due_at", "pk")
    if name == "urged":
        urged = CaseEvent.objects.filter(case=OuterRef("pk"), action=Action.URGED)
        return open_cases.filter(Exists(urged)).order_by("due_at", "pk")
    if name == "negative":
        return awaiting_follow_up(cases).order_by("rated_at", "pk")
    raise KeyError(name)


def drill(
    user: User,
    region: Region,
    *,
    fact: str,
    start: dt.datetime,
    end: dt.datetime,
    dimension: str | None = None,
    key: str | None = None,
) -> QuerySet[Case]:
    """The cases behind one number: the fact's cases of the period, in the user's sight.

    The same filters as the count (``dispatch.figures``) and the same scope as every list
    (``cases_visible_to``), so the list's length is the number shown.
    """
    spec = figures.FACTS_BY_NAME[fact]
    cases = scoped_cases(reach_of(user), region).filter(
        spec.where, **{f"{spec.when}__gte": start, f"{spec.when}__lt": end}
    )
    if dimension == "child" and key:
        child = Region.objects.filter(pk=key, path__startswith=region.path).first()
        cases = cases.filter(region_id__in=ids_within([child.path])) if child else cases.none()
    elif dimension in DIMENSION_COLUMNS_OF_CASE and key:
        cases = cases.filter(**{DIMENSION_COLUMNS_OF_CASE[dimension]: key})
    return _listing(cases).order_by(f"-{spec.when}", "-pk")


DIMENSION_COLUMNS_OF_CASE = {
    "category": "category_id",
    "unit": "lead_unit_id",
    "window": "intake_unit_id",
    "grid": "region_id",
}


# --- the grid map -----------------------------------------------------------------------------

MAP_WIDTH = 640


@dataclass(frozen=True)
class MapCell:
    region: Region
    points: str  # SVG polygon points, already projected
    label_x: float
    label_y: float
    open: int
    overdue: int
    shade: int  # 0..4, darker with more overdue (then open) cases


def _rings(boundary: dict | None) -> list[list[list[float]]]:
    if not boundary:
        return []
    if boundary.get("type") == "Polygon":
        return [boundary["coordinates"][0]]
    if boundary.get("type") == "MultiPolygon":
        return [polygon[0] for polygon in boundary["coordinates"]]
    return []


def grid_map(region: Region, open_rows: OpenNow) -> tuple[list[MapCell], int]:
    """The scope's grids drawn from their boundaries (no tile server), with open and overdue
    cases (``open_now``); returns the cells and the drawing's height."""
    grids = [
        g
        for g in Region.objects.filter(
            path__startswith=region.path, level=Level.GRID, is_active=True
        ).order_by("code")
        if _rings(g.boundary)
    ]
    if not grids:
        return [], 0
    per_place = open_rows.per_place()
    opened = {region_id: n for region_id, (n, _late) in per_place.items()}
    late = {region_id: overdue for region_id, (_n, overdue) in per_place.items()}
    xs = [x for g in grids for ring in _rings(g.boundary) for x, _y in ring]
    ys = [y for g in grids for ring in _rings(g.boundary) for _x, y in ring]
    span_x, span_y = (max(xs) - min(xs)) or 1.0, (max(ys) - min(ys)) or 1.0
    scale = (MAP_WIDTH - 20) / span_x
    height = int(span_y * scale) + 20

    def project(x: float, y: float) -> tuple[float, float]:
        return 10 + (x - min(xs)) * scale, 10 + (max(ys) - y) * scale

    cells = []
    for grid in grids:
        projected = [project(x, y) for ring in _rings(grid.boundary) for x, y in ring]
        overdue, opened_here = late.get(grid.pk, 0), opened.get(grid.pk, 0)
        shade = (
            min(4, overdue + (1 if opened_here else 0)) if overdue else (1 if opened_here else 0)
        )
        cells.append(
            MapCell(
                region=grid,
                points=" ".join(f"{px:.1f},{py:.1f}" for px, py in projected),
                label_x=sum(p[0] for p in projected) / len(projected),
                label_y=sum(p[1] for p in projected) / len(projected),
                open=opened_here,
                overdue=overdue,
                shade=shade,
            )
        )
    return cells, height
