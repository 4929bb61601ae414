"""``manage.py generate_cases``: bulk synthetic cases that the rest of the product accepts."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db.models import Count, F
from django.utils import timezone
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dispatch import calendar, deadlines, figures, rollups
from dispatch.actors import LOADER, ActorKind
from dispatch.codes import is_valid_code
from dispatch.events import event_digest, verify_chain
from dispatch.management.commands import _synth
from dispatch.models import (
    Assignment,
    Case,
    CaseCodeCounter,
    CaseEvent,
    DailyFigure,
    RollupDay,
)
from dispatch.services import create_case
from dispatch.states import OPEN_STATUSES, Status
from grids.models import Region, Unit
from people.models import User

N = 300


@pytest.fixture
def generated(db):
    out = io.StringIO()
    call_command(
        "generate_cases",
        "--cases",
        str(N),
        "--batch-size",
        "70",
        "--seed",
        "3",
        "--days",
        "120",
        stdout=out,
    )
    return out.getvalue()


def test_generates_valid_unique_cases_with_chained_events(generated):
    assert "件/秒" in generated
    cases = list(Case.objects.all())
    assert len(cases) == N
    codes = [c.code for c in cases]
    assert len(set(codes)) == N and all(is_valid_code(code) for code in codes)
    assert all(code.startswith("139901") for code in codes)
    tokens = {c.tracking_token for c in cases}
    assert len(tokens) == N and min(len(t) for t in tokens) >= 22
    # Every case has at least its public 问题上报 event, and every chain verifies.
    assert not Case.objects.annotate(n=Count("events")).filter(n=0).exists()
    assert CaseEvent.objects.filter(seq=1, action="case.reported", is_public=True).count() == N
    for case in cases:
        report = verify_chain(case)
        assert report.ok, (case.code, report)


def test_distribution_covers_the_loop(generated):
    by_status = dict(Case.objects.values_list("status").annotate(n=Count("id")))
    assert by_status.get(Status.ARCHIVED, 0) > N * 0.4
    open_statuses = {Status.REGISTERED, Status.ASSIGNED, Status.IN_PROGRESS, Status.FEEDBACK}
    assert sum(by_status.get(s, 0) for s in open_statuses) > 0
    assert Case.objects.values("category").distinct().count() >= 10
    assert Case.objects.values("channel").distinct().count() >= 4
    assert Case.objects.values("region").distinct().count() >= 20
    archived = Case.objects.filter(status=Status.ARCHIVED)
    assert not archived.filter(closed_at__isnull=True).exists()
    assert not archived.filter(closed_at__lt=F("feedback_at")).exists()
    # Leads sit inside their owner centre's subtree (a township reports a county bureau's case
    # up first), as dispatch.services requires.
    dispatched = Case.objects.filter(lead_unit__isnull=False).select_related(
        "lead_unit__region", "owner_unit__region"
    )
    assert all(c.lead_unit.region.path.startswith(c.owner_unit.region.path) for c in dispatched)
    # Small matters settled by grid workers count as closed at grid level.
    assert archived.filter(closed_level="grid", channel="grid").exists()
    escalated = Case.objects.filter(escalation_count=1)
    assert escalated.exists()
    assert CaseEvent.objects.filter(action="case.escalated").count() == escalated.count()
    # Dispatched cases have their lead unit's task; the timeline is ordered.
    assert Assignment.objects.count() == Case.objects.filter(assigned_at__isnull=False).count()
    assert not Case.objects.filter(registered_at__lt=F("reported_at")).exists()


def test_later_codes_do_not_collide(generated):
    newest = Case.objects.order_by("-reported_at").first()
    prefix = newest.code[:14]
    taken = Case.objects.filter(code__startswith=prefix).count()
    assert CaseCodeCounter.objects.get(prefix=prefix).last >= taken
    region = Region.objects.get(code="139901101201001")
    case, created = create_case(
        actor=User.objects.get(username="clerk_xlt"),
        channel="window",
        category=newest.category,
        summary="新诉求",
        region=region,
        owner_unit=Unit.objects.get(name="兴隆台镇综治中心"),
        now=newest.reported_at,
    )
    assert created and case.code[:14] == prefix
    assert Case.objects.filter(code=case.code).count() == 1


def test_runs_twice_and_adds(generated):
    call_command("generate_cases", "--cases", "25", "--seed", "4", stdout=io.StringIO())
    assert Case.objects.count() == N + 25
    assert Case.objects.values("code").distinct().count() == N + 25


def test_refuses_bad_arguments(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("generate_cases", "--cases", "0", stdout=io.StringIO())


def _schema() -> set[tuple]:
    """Every index and constraint of the loaded tables, as the catalog defines them."""
    from django.db import connection

    tables = ["dispatch_case", "dispatch_caseevent", "dispatch_assignment"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)", [tables]
        )
        indexes = set(cursor.fetchall())
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid), convalidated, condeferrable,"
            " condeferred FROM pg_constraint WHERE conrelid = ANY(%s::regclass[])",
            [tables],
        )
        return indexes | set(cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_workers_and_rebuilt_indexes_on_postgresql():
    """Outside a transaction, worker processes build and COPY the chunks; into empty tables the
    secondary indexes and foreign keys are dropped first and come back exactly as they were."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("worker processes and index rebuilding are for PostgreSQL only")
    before = _schema()
    out = io.StringIO()
    call_command(
        "generate_cases",
        "--cases",
        "150",
        "--batch-size",
        "40",
        "--seed",
        "5",
        "--workers",
        "2",
        "-v",
        "2",
        stdout=out,
    )
    output = out.getvalue()
    assert output.count("cases/s") == 4  # one line per chunk
    assert "目标表为空" in output and "2 个进程" in output
    assert _schema() == before
    assert Case.objects.count() == 150
    assert Case.objects.values("code").distinct().count() == 150
    assert all(verify_chain(case).ok for case in Case.objects.all())
    # The loaded cases and tasks are vacuumed (all-visible pages: index-only counts from the
    # start), and autovacuum comes back for them after 1% of their rows changed.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.reloptions, s.last_vacuum IS NOT NULL FROM pg_class c "
            "JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.relname = ANY(%s)",
            [["dispatch_case", "dispatch_assignment"]],
        )
        tables = {name: (options, vacuumed) for name, options, vacuumed in cursor.fetchall()}
    for options, vacuumed in tables.values():
        assert "autovacuum_vacuum_scale_factor=0.01" in options and vacuumed
    assert len(tables) == 2
    # Tables that already hold cases keep their indexes; the codes and ids go on.
    out = io.StringIO()
    call_command("generate_cases", "--cases", "90", "--batch-size", "40", stdout=out)
    assert "目标表为空" not in out.getvalue()
    assert _schema() == before
    assert Case.objects.values("code").distinct().count() == 240
    assert CaseEvent.objects.values("case_id").distinct().count() == 240


# --- the fast path's pieces against the product's own definitions --------------------------

# hypothesis takes naive bounds and attaches the zone itself.
EARLIEST, LATEST = dt.datetime(1971, 1, 2), dt.datetime(2100, 1, 1)  # noqa: DTZ001
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    action=st.text(),
    from_status=st.text(max_size=8),
    to_status=st.text(max_size=8),
    unit_id=st.integers(min_value=1, max_value=10**9),
    shown=st.text(),
    note=st.text(),
    data=st.dictionaries(st.text(), json_values, max_size=4),
    prev=st.sampled_from(["", "0" * 64, "f3" * 32]),
    seq=st.integers(min_value=1, max_value=500),
    moment=st.datetimes(
        min_value=EARLIEST,
        max_value=LATEST,
        timezones=st.just(dt.UTC),
    ),
)
def test_event_fragments_join_to_event_digest(
    action, from_status, to_status, unit_id, shown, note, data, prev, seq, moment
):
    """The f-string the loop hashes is byte for byte event_digest's json.dumps payload."""
    # The placeholder the loader cuts at must not be a value of its own: as JSON, a string
    # (or a key of ``data``) equal to it would be encoded exactly as the mark is.
    mark = json.dumps("\x00at", **_synth.DIGEST_JSON)
    assume(
        mark not in json.dumps([action, from_status, to_status, note, data], **_synth.DIGEST_JSON)
    )
    data.pop("system", None)
    kind = _synth.event_kind(
        action=action,
        from_status=from_status,
        to_status=to_status,
        unit_id=unit_id,
        public_unit_name=shown,
        note=note,
        data=data,
    )
    at_iso = moment.isoformat()
    code = "13990120260101000011"
    payload = _synth.event_payload(kind, prev=prev, code=code, seq=seq, at_iso=at_iso)
    expected = event_digest(
        prev_hash=prev,
        case_code=code,
        seq=seq,
        action=action,
        from_status=from_status,
        to_status=to_status,
        actor_kind=ActorKind.SYSTEM,
        actor_id=None,
        actor_unit_id=unit_id,
        at_iso=at_iso,
        note=note,
        is_public=True,
        data={**data, "system": LOADER.as_data()},
    )
    assert hashlib.sha256(payload.encode()).hexdigest() == expected
    # The COPY line carries the same values, escaped.
    line = f"1\t{seq}\t{kind.c_mid}{at_iso}\t{kind.c_tail}\t{prev}\t{expected}"
    fields = [_synth.copy_field(value) for value in line.split("\t")]
    assert fields[2:9] == [action, from_status, to_status, "system", None, str(unit_id), shown]
    assert fields[10:12] == [note, "t"]
    assert json.loads(fields[12]) == {**data, "system": LOADER.as_data()}


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=EARLIEST,
        max_value=LATEST,
        timezones=st.just(dt.UTC),
    )
)
def test_clock_spells_times_as_isoformat(moment):
    clock = _synth.Clock(ZoneInfo("Asia/Shanghai"), _synth.to_us(moment), _synth.to_us(moment))
    us = _synth.to_us(moment)
    assert _synth.from_us(us) == moment
    assert clock.iso(us) == moment.isoformat()
    assert _synth.date_of(clock.local_day(us)) == moment.astimezone(clock.tz).date()
    assert _synth.date_of(_synth.Clock(ZoneInfo("Europe/Berlin"), us, us).local_day(us)) == (
        moment.astimezone(ZoneInfo("Europe/Berlin")).date()
    )


def test_chunks_are_deterministic_for_a_seed(db):
    call_command("load_demo", "--no-cases", stdout=io.StringIO())
    county = Region.objects.get(code="139901000000")
    now = timezone.now().replace(microsecond=0)

    def built(seed: int) -> list[str]:
        plan = _synth.Plan.load(county=county, now=now, seed=seed, days=400)
        per_day = plan.add_times(300, 400)
        plan.first_seq = dict.fromkeys(per_day, 1)
        plan.first_id = 1
        rows = _synth.build_chunk(plan, 100, 300)
        # Everything but the tracking tokens, which are secrets.
        return [line.split("\t")[:2] + line.split("\t")[3:] for line in rows.cases.splitlines()] + [
            rows.events,
            rows.assignments,
        ]

    assert built(7) == built(7)
    assert built(7) != built(8)


# --- what the rest of the product reads from generated cases ------------------------------


@pytest.fixture
def generated_at_rest(db, clock):
    """Generated with the clock stopped, over a calendar with a holiday and a make-up day."""
    clock.move_to(clock.start, tick=False)
    now = timezone.now()
    holiday = timezone.localdate(now) - dt.timedelta(days=30)
    while holiday.weekday() >= 5:
        holiday -= dt.timedelta(days=1)
    makeup = holiday + dt.timedelta(days=(5 - holiday.weekday()))  # the Saturday after
    calendar.save_calendar_day(date=holiday, is_workday=False, name="节日")
    calendar.save_calendar_day(date=makeup, is_workday=True, name="调休上班")
    out = io.StringIO()
    call_command("generate_cases", "--cases", "400", "--days", "60", "--seed", "11", stdout=out)
    return now, out.getvalue()


def test_generated_chains_verify(generated_at_rest):
    out = io.StringIO()
    call_command("verify_case_chain", "--all", stdout=out)
    assert "400 case chains ok" in out.getvalue()


def test_next_alert_and_working_days(generated_at_rest):
    now, _out = generated_at_rest
    checked_open = checked_archived = 0
    for case in Case.objects.select_related("profile"):
        if case.status in OPEN_STATUSES:
            expected = deadlines.next_alert_at(
                case, recorded=deadlines.recorded_alerts(case), now=now
            )
            assert case.next_alert_at == expected, case.code
            checked_open += expected is not None
        else:
            assert case.next_alert_at is None, case.code
        if case.status == Status.ARCHIVED:
            taken = calendar.working_days_between(
                timezone.localdate(case.registered_at), timezone.localdate(case.closed_at)
            )
            assert case.working_days_taken == taken, case.code
            checked_archived += 1
        else:
            assert case.working_days_taken is None, case.code
    assert checked_open >= 10 and checked_archived >= 100
    # The holiday and the make-up day fall inside some case's time.
    long = Case.objects.filter(status=Status.ARCHIVED, working_days_taken__gte=3)
    assert long.exists()


def test_rollup_counts_equal_live_counts(generated_at_rest):
    now, out = generated_at_rest
    assert "看板日汇总已重建" in out
    today0 = timezone.make_aware(dt.datetime.combine(timezone.localdate(now), dt.time()))
    start = today0 - dt.timedelta(days=61)
    yesterday = timezone.localdate(now) - dt.timedelta(days=1)
    assert RollupDay.objects.filter(day=yesterday, done=True).exists()
    assert DailyFigure.objects.exists()
    for code in ("139901000000", "139901101000"):
        region = Region.objects.get(code=code)
        scope = Case.objects.filter(region__path__startswith=region.path)
        for end in (today0, now):
            rolled = rollups.counts(region, start=start, end=end, now=now)
            live = figures.live_counts(scope, start=start, end=end)
            assert rolled == {name: live.get(name, 0) for name in rolled}, (code, end)
            assert rolled["received"] > 0 and rolled["closed"] > 0
