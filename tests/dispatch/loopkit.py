"""Staff and units around the persona tree for the closed-loop tests.

county_dispatcher - dispatcher at the county centre
police / justice  - handlers of township A's police station and justice office
safety / ecology  - handlers of the county work-safety and environment bureaus
village_disp      - dispatcher and supervisor of 东关村 (a village centre)
sup_a             - supervisor of township A
erin (conftest)   - dispatcher of township A; dave - supervisor of the county
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest

from dispatch import services
from people.models import Role
from tests import factories as f
from tests.clock import at


@pytest.fixture
def loop(tree, people):
    safety_unit = f.unit("县应急管理局", tree.county)
    ecology_unit = f.unit("县生态环境局", tree.county)
    ns = SimpleNamespace(
        profile=f.profile(),
        category=f.category(),
        safety_unit=safety_unit,
        ecology_unit=ecology_unit,
        county_dispatcher=f.user("county_disp", role=Role.DISPATCHER, region=tree.county),
        police=f.user("police", role=Role.HANDLER, unit=tree.police_a),
        justice=f.user("justice", role=Role.HANDLER, unit=tree.justice_a),
        safety=f.user("safety", role=Role.HANDLER, unit=safety_unit),
        ecology=f.user("ecology", role=Role.HANDLER, unit=ecology_unit),
        village_disp=f.user("village_disp", role=Role.DISPATCHER, region=tree.village_a1),
        sup_a=f.user("sup_a", role=Role.SUPERVISOR, region=tree.town_a),
    )
    from people.services import grant_role

    grant_role(user=ns.village_disp, role=Role.SUPERVISOR, region=tree.village_a1)
    return ns


def new_case(tree, people, *, now=None, **kw):
    kw.setdefault("region", tree.village_a1)
    kw.setdefault("owner_unit", tree.centre_a)
    kw.setdefault("actor", people.alice)
    kw.setdefault("parties", [(f.party(), "applicant")])
    return f.case(now=now or at(0, 9), **kw)


def registered(tree, people, *, now=None, registrar=None, **kw):
    now = now or at(0, 9)
    case = new_case(tree, people, now=now, **kw)
    return services.register_case(case=case, actor=registrar or people.erin, now=now)


def in_progress(tree, people, loop, *, now=None, assisting=(), **kw):
    """A case of village 东关村 handled by township A's police station (lead)."""
    now = now or at(0, 9)
    case = registered(tree, people, now=now, **kw)
    case = services.dispatch_case(
        case=case,
        actor=people.erin,
        unit=tree.police_a,
        assisting_units=assisting,
        profile=loop.profile,
        now=now + dt.timedelta(minutes=5),
    )
    return services.sign_case(case=case, actor=loop.police, now=now + dt.timedelta(minutes=10))
