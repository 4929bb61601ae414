"""The staff pages as a user sees them: queues, the case page, its action forms."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from dispatch import services
from dispatch.models import Case
from dispatch.states import Status
from tests import factories as f
from tests.dispatch import loopkit
from tests.dispatch.loopkit import at, in_progress, new_case, registered
from zongzhi import paging

pytestmark = pytest.mark.django_db
loop = loopkit.loop  # the fixture


def seen(case) -> int:
    """The number of the case's last event, as a freshly drawn form carries it."""
    return type(case).objects.get(pk=case.pk).event_count


def _count(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(url).status_code == 200
    return len(ctx.captured_queries)


def _only_shown_columns(captured) -> None:
    """The rows are read with the columns the page shows, not the cases' texts."""
    for query in captured.captured_queries:
        for column in ("narrative", "result", "tracking_token", "last_event_hash"):
            assert f'"dispatch_case"."{column}"' not in query["sql"], query["sql"][:300]


def test_dispatcher_queue_lists_work_with_a_fixed_number_of_queries(
    client, tree, people, loop, django_assert_num_queries
):
    first = new_case(tree, people)
    registered(tree, people)
    client.force_login(people.erin)
    baseline = _count(client, "/work/dispatcher/")
    for _ in range(4):
        new_case(tree, people)
        registered(tree, people)
    returned = in_progress(tree, people, loop)
    services.return_case(case=returned, actor=loop.police, reason="不属本所职责")
    with django_assert_num_queries(baseline) as captured:
        response = client.get("/work/dispatcher/")
    _only_shown_columns(captured)
    page = response.content.decode()
    assert first.code in page and returned.code in page and "已退回" in page
    assert page.count('href="/cases/') == 11
    other = f.case(region=tree.village_b1, owner_unit=tree.centre_b, actor=people.bob)
    assert other.code not in client.get("/work/dispatcher/").content.decode()


def test_handler_inbox_sorts_by_urgency_with_fixed_queries(
    client, tree, people, loop, django_assert_num_queries
):
    def one_of_each():
        signed = in_progress(tree, people, loop)
        pending = registered(tree, people)
        services.dispatch_case(
            case=pending, actor=people.erin, unit=tree.police_a, profile=loop.profile
        )
        urged = in_progress(tree, people, loop)
        services.urge_case(case=urged, actor=people.dave, note="抓紧办理")
        overdue = in_progress(tree, people, loop)
        Case.objects.filter(pk=overdue.pk).update(due_at=at(-60, 9))
        due_soon = in_progress(tree, people, loop)
        Case.objects.filter(pk=due_soon.pk).update(warn_at=at(-1, 9), due_at=at(2, 9))
        return signed, pending, urged, overdue, due_soon

    first = one_of_each()
    client.force_login(loop.police)
    baseline = _count(client, "/work/inbox/")
    second = one_of_each()
    with django_assert_num_queries(baseline) as captured:
        response = client.get("/work/inbox/")
    _only_shown_columns(captured)
    sections = {s.key: [t.case.code for t in s.page] for s in response.context["sections"]}
    for made in (first, second):
        signed, pending, urged, overdue, due_soon = (c.code for c in made)
        assert pending in sections["pending"] and overdue in sections["overdue"]
        assert due_soon in sections["due_soon"] and urged in sections["urged"]
        assert signed in sections["in_progress"]
    assert sum(len(codes) for codes in sections.values()) == 10  # each task in one section
    page = response.content.decode()
    for label in ("待签收", "办理中", "即将超期", "已超期", "督办"):
        assert label in page
    assert "抓紧办理" in page  # the supervisor's urging note itself


def test_an_inbox_section_counts_all_its_tasks_and_pages_through_them(
    client, tree, people, loop, monkeypatch
):
    monkeypatch.setattr(paging, "PER_PAGE", 2)
    waiting = []
    for _ in range(3):
        case = registered(tree, people)
        services.dispatch_case(
            case=case, actor=people.erin, unit=tree.police_a, profile=loop.profile
        )
        waiting.append(case.code)
    in_progress(tree, people, loop)
    client.force_login(loop.police)
    first = client.get("/work/inbox/")
    sections = {s.key: s.page for s in first.context["sections"]}
    assert sections["pending"].paginator.count == 3 and len(sections["pending"]) == 2
    assert sections["in_progress"].paginator.count == 1
    assert sections["overdue"].paginator.count == 0
    second = client.get("/work/inbox/", {"pending_page": "2"})
    rest = {s.key: s.page for s in second.context["sections"]}["pending"]
    shown = [t.case.code for t in sections["pending"]] + [t.case.code for t in rest]
    assert sorted(shown) == sorted(waiting)


def test_supervisor_queue_with_fixed_queries(
    client,
    tree,
    people,
    loop,
    django_assert_num_queries,
):
    def one_of_each():
        asking = in_progress(tree, people, loop)
        services.request_extension(
            case=asking, actor=loop.police, days=2, reason="等待鉴定", now=at(0, 12)
        )
        done = in_progress(tree, people, loop)
        services.submit_feedback(case=done, actor=loop.police, result="已处置")
        late = in_progress(tree, people, loop)
        Case.objects.filter(pk=late.pk).update(due_at=at(-60, 9))

    one_of_each()
    client.force_login(people.dave)
    baseline = _count(client, "/work/supervise/")
    for _ in range(3):
        one_of_each()
    with django_assert_num_queries(baseline) as captured:
        response = client.get("/work/supervise/")
    _only_shown_columns(captured)
    sections = response.context["sections"]
    assert sections["requests"].page.paginator.count == 4
    assert len(sections["feedback"].page) == 4 and len(sections["overdue"].page) == 4
    assert "等待鉴定" in response.content.decode()


def test_dispatching_through_the_page(client, tree, people, loop):
    case = registered(tree, people)
    client.force_login(people.erin)
    page = client.get(f"/cases/{case.code}/").content.decode()
    assert f'action="/cases/{case.code}/dispatch/"' in page
    assert "csrfmiddlewaretoken" in page
    response = client.post(
        f"/cases/{case.code}/dispatch/",
        {
            "dispatch-unit": tree.police_a.pk,
            "dispatch-assisting_units": [tree.justice_a.pk],
            "dispatch-profile": loop.profile.pk,
            "dispatch-note": "请尽快处理",
            "dispatch-seen": seen(case),
        },
    )
    assert response.status_code == 302 and response["Location"] == f"/cases/{case.code}/"
    case.refresh_from_db()
    assert case.status == Status.ASSIGNED and case.lead_unit == tree.police_a
    follow = client.get(response["Location"]).content.decode()
    assert "已办理：派单" in follow


def test_two_dispatchers_at_once_the_second_is_told_clearly(client, tree, people, loop):
    case = registered(tree, people)
    other = Client()
    client.force_login(people.erin)
    other.force_login(loop.county_dispatcher)
    # Both opened the page while the case was 案卷建立; the first submit wins.
    form = {
        "dispatch-unit": tree.police_a.pk,
        "dispatch-profile": loop.profile.pk,
        "dispatch-note": "第二位派单员的意见",
        "dispatch-seen": seen(case),
    }
    assert client.post(f"/cases/{case.code}/dispatch/", form).status_code == 302
    form["dispatch-unit"] = tree.justice_a.pk
    response = other.post(f"/cases/{case.code}/dispatch/", form)
    assert response.status_code == 409
    page = response.content.decode()
    assert "案件在您打开页面后已有新的办理记录（当前为“任务指派”），请查看后重新操作" in page
    case.refresh_from_db()
    assert case.lead_unit == tree.police_a and case.assignments.count() == 1


def test_bad_input_gets_a_message_and_keeps_what_was_typed(client, tree, people, loop):
    case = in_progress(tree, people, loop)
    client.force_login(loop.police)
    response = client.post(
        f"/cases/{case.code}/extension/",
        {
            "extension-days": "0",
            "extension-reason": "等待<b>鉴定</b>结论",
            "extension-seen": seen(case),
        },
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "请检查填写内容" in page
    assert "等待&lt;b&gt;鉴定&lt;/b&gt;结论" in page and "<b>鉴定</b>" not in page
    assert client.post(f"/cases/{case.code}/no-such-action/", {}).status_code == 404
    case.refresh_from_db()
    assert case.status == Status.IN_PROGRESS


def test_case_page_masks_parties_and_offers_only_this_users_actions(client, tree, people, loop):
    applicant = f.party(name="王小明", phone="13912345678", id_number="110101199003071233")
    case = registered(tree, people, parties=[(applicant, "applicant")])
    client.force_login(people.erin)
    page = client.get(f"/cases/{case.code}/").content.decode()
    assert "王小明" not in page and "13912345678" not in page and "110101199003071233" not in page
    assert "王*明" in page
    assert "139****5678" in page
    assert "act-dispatch" in page and "act-verify" not in page and "act-sign" not in page
    client.force_login(loop.police)
    assert client.get(f"/cases/{case.code}/").status_code == 404  # not assigned to police yet


def test_posting_an_action_the_user_may_not_take_is_refused(client, tree, people, loop):
    case = in_progress(tree, people, loop)
    services.submit_feedback(case=case, actor=loop.police, result="已处置")
    client.force_login(loop.police)  # a handler may not verify its own work
    response = client.post(
        f"/cases/{case.code}/verify/",
        {
            "verify-outcome": "pass",
            "verify-carried_out": "yes",
            "verify-seen": seen(case),
        },
    )
    assert response.status_code == 409
    assert "没有办理该案件此项操作的权限" in response.content.decode()
    case.refresh_from_db()
    assert case.status == Status.FEEDBACK
    client.force_login(people.dave)
    response = client.post(
        f"/cases/{case.code}/verify/",
        {
            "verify-outcome": "pass",
            "verify-carried_out": "yes",
            "verify-seen": seen(case),
        },
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == Status.ARCHIVED


def test_csrf_is_enforced_on_actions(tree, people, loop):
    case = registered(tree, people)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(people.erin)
    response = strict.post(f"/cases/{case.code}/escalate/", {"escalate-reason": "上报"})
    assert response.status_code == 403
    case.refresh_from_db()
    assert case.owner_unit == tree.centre_a


def test_extension_requested_and_approved_through_the_pages(client, tree, people, loop):
    case = in_progress(tree, people, loop)
    due = case.due_at
    client.force_login(loop.police)
    response = client.post(
        f"/cases/{case.code}/extension/",
        {
            "extension-days": "3",
            "extension-reason": "等待司法鉴定结论",
            "extension-seen": seen(case),
        },
    )
    assert response.status_code == 302
    client.force_login(loop.sup_a)
    assert "等待司法鉴定结论" in client.get("/work/supervise/").content.decode()
    page = client.get(f"/cases/{case.code}/").content.decode()
    assert "act-decide" in page
    request = case.requests.get()
    response = client.post(
        f"/cases/{case.code}/decide/",
        {
            "decide-request": request.pk,
            "decide-decision": "approve",
            "decide-note": "同意",
            "decide-seen": seen(case),
        },
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.extension_count == 1 and case.due_at > due
    client.force_login(loop.police)
    page = client.get(f"/cases/{case.code}/").content.decode()
    assert "act-extension" not in page  # not offered again; a stale form is refused clearly
    response = client.post(
        f"/cases/{case.code}/extension/",
        {
            "extension-days": "2",
            "extension-reason": "还需时间",
            "extension-seen": seen(case),
        },
    )
    assert response.status_code == 409
    assert "不能再申请延期" in response.content.decode()


def test_the_whole_loop_through_the_pages(client, tree, people, loop):
    case = new_case(tree, people)

    def post(user, action, data):
        client.force_login(user)
        fields = {f"{action}-{k}": v for k, v in data.items()}
        fields[f"{action}-seen"] = seen(case)
        response = client.post(f"/cases/{case.code}/{action}/", fields)
        assert response.status_code == 302, response.content.decode()[-600:]

    post(
        people.erin,
        "register",
        {"category": loop.category.pk, "grade": "ordinary"},
    )
    post(
        people.erin,
        "dispatch",
        {"unit": tree.police_a.pk, "profile": loop.profile.pk},
    )
    post(loop.police, "sign", {})
    post(loop.police, "progress", {"note": "已约谈双方"})
    post(loop.police, "feedback", {"result": "双方达成调解协议"})
    post(
        loop.sup_a,
        "verify",
        {
            "outcome": "pass",
            "carried_out": "yes",
            "note": "电话核实",
        },
    )
    post(
        loop.sup_a,
        "followup",
        {
            "satisfaction": "5",
            "carried_out": "yes",
            "note": "群众满意",
        },
    )
    case.refresh_from_db()
    assert case.status == Status.ARCHIVED and case.followup_satisfaction == 5
    client.force_login(people.alice)
    page = client.get(f"/cases/{case.code}/").content.decode()
    for label in ("立案", "派单", "签收", "办理进展", "处理反馈", "核查通过", "结案归档", "回访"):
        assert f"<strong>{label}</strong>" in page


def test_a_paused_case_is_not_shown_as_overdue(client, tree, people, loop):
    case = in_progress(tree, people, loop)
    request = services.request_pause(
        case=case, actor=loop.police, reason="等待法院判决", now=at(0, 12)
    )
    services.decide_pause(request=request, actor=loop.sup_a, approve=True, now=at(0, 13))
    Case.objects.filter(pk=case.pk).update(due_at=at(-60, 9), warn_at=at(-60, 8))
    client.force_login(loop.police)
    sections = {
        s.key: [t.case_id for t in s.page] for s in client.get("/work/inbox/").context["sections"]
    }
    assert case.pk not in sections["overdue"] and case.pk in sections["in_progress"]
    client.force_login(loop.sup_a)
    assert list(client.get("/work/supervise/").context["sections"]["overdue"].page) == []
    services.resume_case(case=case, actor=loop.sup_a, now=at(0, 14))
    Case.objects.filter(pk=case.pk).update(due_at=at(-60, 9))
    assert [c.pk for c in client.get("/work/supervise/").context["sections"]["overdue"].page] == [
        case.pk
    ]


def test_a_grid_worker_is_offered_resolving_on_the_spot(client, tree, people, loop):
    from people.models import Role

    worker = f.user("grid_a1", role=Role.GRID_WORKER, region=tree.grid_a1)
    case = new_case(tree, people, region=tree.grid_a1, channel="grid", actor=worker)
    client.force_login(worker)
    page = client.get(f"/cases/{case.code}/").content.decode()
    assert "act-resolve" in page and "act-register" not in page
    response = client.post(
        f"/cases/{case.code}/resolve/",
        {"resolve-result": "已劝导清理", "resolve-seen": seen(case)},
    )
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.status == Status.ARCHIVED and case.closed_level == "grid"


def test_a_long_queue_is_read_a_page_at_a_time_and_nothing_is_cut_off(
    client, tree, people, monkeypatch
):
    monkeypatch.setattr(paging, "PER_PAGE", 3)
    reported = [new_case(tree, people) for _ in range(7)]
    waiting = [registered(tree, people) for _ in range(4)]
    client.force_login(people.erin)
    first = client.get("/work/dispatcher/").content.decode()
    assert "待立案（7）" in first and "待派单（4）" in first
    assert [c.code in first for c in reported] == [True] * 3 + [False] * 4  # oldest first
    # Moving on in one list keeps the other where it was; the link lands on the list.
    page = client.get("/work/dispatcher/", {"reported_page": 3, "registered_page": 2})
    text = page.content.decode()
    assert reported[6].code in text and reported[0].code not in text
    assert waiting[3].code in text and waiting[0].code not in text
    assert "第 3 / 3 页" in text and "第 2 / 2 页" in text
    assert 'href="?reported_page=2&amp;registered_page=2#reported"' in text
    # A number that is not a page shows the nearest one rather than an error.
    assert client.get("/work/dispatcher/", {"reported_page": "x"}).status_code == 200
    assert (
        reported[6].code in client.get("/work/dispatcher/", {"reported_page": 99}).content.decode()
    )
