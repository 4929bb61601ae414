"""``manage.py verify_case_chain``: an edited or deleted history row is detected."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from dispatch import services
from dispatch.models import CaseEvent
from tests.dispatch import loopkit
from tests.dispatch.loopkit import at, in_progress

loop = loopkit.loop  # the fixture


def _run(*args) -> str:
    out = StringIO()
    call_command("verify_case_chain", *args, stdout=out)
    return out.getvalue()


def test_an_intact_chain_verifies(tree, people, loop):
    case = in_progress(tree, people, loop)
    out = _run(case.code)
    assert f"{case.code} ok ({case.event_count} events)" in out
    assert "1 case chains ok" in _run("--all")


def test_an_edited_event_is_found_with_its_seq(tree, people, loop):
    case = in_progress(tree, people, loop)
    services.submit_feedback(case=case, actor=loop.police, result="已处置", now=at(0, 15))
    other = in_progress(tree, people, loop)
    # Someone with database access rewrites who handled it and what was said.
    CaseEvent.objects.filter(case=case, seq=3).update(note="篡改后的记录")
    with pytest.raises(CommandError, match="1 of 1"):
        _run(case.code)
    with pytest.raises(CommandError, match="1 of 2"):
        _run("--all")
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("verify_case_chain", case.code, other.code, stdout=out)
    assert f"{case.code} BROKEN at seq 3: content does not match its hash" in out.getvalue()
    assert f"{other.code} ok" in out.getvalue()


def test_a_deleted_last_event_is_found(tree, people, loop):
    case = in_progress(tree, people, loop)
    last = CaseEvent.objects.filter(case=case).order_by("-seq").first()
    # PROTECT on the case keeps the event from cascading; a raw delete is what tampering is.
    CaseEvent.objects.filter(pk=last.pk).delete()
    with pytest.raises(CommandError):
        _run(case.code)


def test_unknown_codes_and_missing_arguments_are_refused(tree, people, loop):
    with pytest.raises(CommandError, match="案件不存在"):
        _run("13990120261123999990")
    with pytest.raises(CommandError, match="二者选一"):
        _run()
