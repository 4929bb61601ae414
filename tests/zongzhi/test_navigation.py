"""For every role, the navigation offers exactly the pages that open for that role.

The pages are read from the URL resolver: every route without parameters is either a desk the
navigation may offer or a named utility; a new page that is neither fails here.
"""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from people.models import Role
from people.services import grant_role
from tests import factories as f
from zongzhi.navigation import LINKS, links_for

pytestmark = pytest.mark.django_db

# Routes without parameters that are not desks: what they answer is tested where they live.
UTILITY = {
    "home",
    "health",
    "login",
    "logout",
    "set_language",
    "javascript-catalog",
    "tracking_lookup",
    "intake_regions",
    "intake_categories",
    # The cases behind a dashboard number: opened from the dashboard with its parameters.
    "dispatch:dashboard_cases",
}


def parameterless_routes(patterns=None, prefix="", namespace="") -> set[str]:
    names: set[str] = set()
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue  # the admin is one desk, its index; Django tests the rest of it
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            names |= parameterless_routes(entry.url_patterns, prefix, ns)
        elif isinstance(entry, URLPattern) and entry.name and not entry.pattern.converters:
            if "(?P<" not in str(entry.pattern.regex.pattern):
                names.add(f"{namespace}{entry.name}")
    return names


DESK_NAMES = {link.url_name for link in LINKS}


def test_every_route_is_a_desk_or_a_named_utility():
    routes = parameterless_routes() | {"admin:index"}
    assert routes - UTILITY == DESK_NAMES
    assert UTILITY <= routes  # no stale entry either


@pytest.fixture
def staff(tree, people):
    grid_worker = f.user("grid", role=Role.GRID_WORKER, region=tree.grid_a1)
    leader = f.user("leader", role=Role.LEADER, region=tree.town_a)
    clerk_handler = f.user("clerk_handler", role=Role.CLERK, region=tree.town_a)
    grant_role(user=clerk_handler, role=Role.HANDLER, unit=tree.police_a)
    nobody = f.user("nobody")
    return {
        "clerk": people.alice,
        "grid_worker": grid_worker,
        "dispatcher": people.erin,
        "handler": people.carol,
        "supervisor": people.dave,
        "leader": leader,
        "clerk_and_handler": clerk_handler,
        "system_admin": people.admin,
        "no_role": nobody,
    }


def test_each_role_is_offered_exactly_the_desks_that_open(client, staff):
    for role, user in staff.items():
        client.force_login(user)
        offered = {link.url_name for link in links_for(user)}
        home = client.get("/").content.decode()
        for name in sorted(DESK_NAMES):
            url = reverse(name)
            status = client.get(url).status_code
            if name in offered:
                assert status == 200, (role, name, status)
                assert f'href="{url}"' in home, (role, name)
            else:
                assert status in (403, 302), (role, name, status)
                if status == 302:  # the admin sends non-staff to its login
                    assert name == "admin:index"
                assert f'href="{url}"' not in home, (role, name)
    assert {link.url_name for link in links_for(staff["grid_worker"])} == set()
    assert {link.url_name for link in links_for(staff["clerk_and_handler"])} == {
        "intake_new",
        "dispatch:inbox",
    }


def test_anonymous_is_sent_to_the_login(client):
    for name in sorted(DESK_NAMES):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "login" in response["Location"]


def test_a_refused_desk_is_a_styled_page_in_the_users_language(client, staff):
    client.force_login(staff["grid_worker"])
    response = client.get(reverse("intake_new"))
    assert response.status_code == 403
    body = response.content.decode()
    assert "无权访问" in body and 'href="/"' in body and "css/app.css" in body
    client.cookies["django_language"] = "en"
    response = client.get(reverse("intake_new"), HTTP_ACCEPT_LANGUAGE="en")
    assert "403 Forbidden" not in response.content.decode()
