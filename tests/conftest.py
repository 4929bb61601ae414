"""The persona set: two townships of one county, a county bureau, and the people in them.

alice  - counter clerk of township A (兴隆台镇)
bob    - counter clerk of township B (河西街道)
carol  - handler in the county housing bureau (住建局), a department of the county
dave   - supervisor at the county centre
erin   - dispatcher of township A
admin  - county system administrator
The anonymous resident is the test client with no login.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import time_machine
from django.core.cache import cache
from django.utils import translation

from grids.models import Level
from people.models import Role
from tests import clock as test_clock
from tests import factories as f


class Clock:
    """The running test clock: ``now()`` ticks from ``tests.clock.START``; ``move_to`` jumps."""

    monday = test_clock.MONDAY
    start = test_clock.START
    at = staticmethod(test_clock.at)

    def __init__(self, traveller) -> None:
        self._traveller = traveller

    def now(self):
        from django.utils import timezone

        return timezone.now()

    def move_to(self, moment, *, tick: bool = True) -> None:
        self._traveller.move_to(moment, tick=tick)


@pytest.fixture(autouse=True)
def clock(request):
    """Every test runs in the base week (tests/clock.py), whatever today's date is.

    A test marked ``real_clock`` runs on real time instead: its real worker processes do, and
    a job recorded at a travelled moment would never be due for them.
    """
    if request.node.get_closest_marker("real_clock"):
        yield None
        return
    with time_machine.travel(test_clock.START, tick=True) as traveller:
        yield Clock(traveller)


@pytest.fixture(autouse=True)
def _default_language():
    """A test that switches the language never leaks it into the next test."""
    yield
    translation.activate("zh-hans")


def _clear_caches() -> None:
    from intake import public_views

    cache.clear()
    public_views._LOCAL.clear()


@pytest.fixture(autouse=True)
def clean_cache():
    """An empty cache before and after every test (tracking pages, calendar years, counters)."""
    _clear_caches()
    yield cache
    _clear_caches()


@pytest.fixture
def cal2026(db, clean_cache):
    """The State Council's 2026 holidays and make-up working days, as seed_calendar loads them."""
    from dispatch import calendar

    calendar.seed_from_package(years=[2026])
    _clear_caches()


@pytest.fixture
def tree(db):
    county = f.region("139901000000", "青禾县", Level.COUNTY)
    town_a = f.region("139901101000", "兴隆台镇", Level.TOWNSHIP, county)
    town_b = f.region("139901102000", "河西街道", Level.TOWNSHIP, county)
    village_a1 = f.region("139901101201", "东关村", Level.VILLAGE, town_a)
    village_a2 = f.region("139901101202", "西关村", Level.VILLAGE, town_a)
    village_b1 = f.region("139901102001", "滨河社区", Level.VILLAGE, town_b)
    grid_a1 = f.region("139901101201001", "东关村第一网格", Level.GRID, village_a1, households=380)
    grid_b1 = f.region(
        "139901102001001", "滨河社区第一网格", Level.GRID, village_b1, households=420
    )
    return SimpleNamespace(
        county=county,
        town_a=town_a,
        town_b=town_b,
        village_a1=village_a1,
        village_a2=village_a2,
        village_b1=village_b1,
        grid_a1=grid_a1,
        grid_b1=grid_b1,
        county_centre=f.centre(county),
        centre_a=f.centre(town_a),
        centre_b=f.centre(town_b),
        centre_a1=f.centre(village_a1),
        housing=f.unit("县住建局", county),
        police_a=f.unit("兴隆台派出所", town_a),
        justice_a=f.unit("兴隆台司法所", town_a),
    )


@pytest.fixture
def people(tree):
    return SimpleNamespace(
        alice=f.user(
            "alice", role=Role.CLERK, region=tree.town_a, full_name="窗口甲", work_number="A001"
        ),
        bob=f.user(
            "bob", role=Role.CLERK, region=tree.town_b, full_name="窗口乙", work_number="B001"
        ),
        carol=f.user("carol", role=Role.HANDLER, unit=tree.housing, full_name="住建承办"),
        dave=f.user("dave", role=Role.SUPERVISOR, region=tree.county, full_name="县督办"),
        erin=f.user("erin", role=Role.DISPATCHER, region=tree.town_a, full_name="镇派单"),
        admin=f.user(
            "admin",
            role=Role.SYSTEM_ADMIN,
            region=tree.county,
            is_staff=True,
            is_superuser=True,
            full_name="系统管理员",
        ),
    )


@pytest.fixture
def cats(db):
    """The two categories the intake screen's tests pick from."""
    neighbour = f.category()
    wages = f.category("wages", "劳动争议（欠薪）")
    return {"neighbour": neighbour, "wages": wages}
