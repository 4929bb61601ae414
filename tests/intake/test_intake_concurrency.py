"""Twenty clerks' submits at the same moment: twenty cases, twenty distinct valid codes."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, connections

from dispatch.codes import is_valid_code
from dispatch.models import Case
from intake.services import Outcome, PartyData, intake_case
from people.models import Role
from people.services import PartyDetails
from tests import factories as f

N = 20


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_twenty_parallel_registrations_get_twenty_distinct_codes(tree):
    if connection.vendor != "postgresql":
        pytest.skip("row-level concurrency is PostgreSQL's; SQLite serialises all writers")
    category = f.category()
    clerks = [f.user(f"clerk{i}", role=Role.CLERK, region=tree.town_a) for i in range(N)]
    barrier = threading.Barrier(N)

    def register(i: int) -> str:
        try:
            barrier.wait(timeout=30)
            result = intake_case(
                actor=clerks[i],
                outcome=Outcome.REGISTER,
                intake_key=uuid.uuid4(),
                channel="window",
                category=category,
                summary=f"并发受理{i}",
                region=tree.village_a1,
                parties=[
                    PartyData(
                        role="applicant",
                        details=PartyDetails(name=f"居民{i}", phone=f"1390000{i:04d}"),
                    )
                ],
            )
            return result.case.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=N) as pool:
        codes = list(pool.map(register, range(N)))
    assert len(set(codes)) == N
    assert all(is_valid_code(code) for code in codes)
    assert Case.objects.filter(status="registered").count() == N


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_double_submit_racing_itself_makes_one_case(tree):
    if connection.vendor != "postgresql":
        pytest.skip("row-level concurrency is PostgreSQL's; SQLite serialises all writers")
    category = f.category()
    alice = f.user("alice", role=Role.CLERK, region=tree.town_a)
    key = uuid.uuid4()
    barrier = threading.Barrier(2)

    def submit(_i: int) -> str:
        try:
            barrier.wait(timeout=30)
            return intake_case(
                actor=alice,
                outcome=Outcome.REGISTER,
                intake_key=key,
                channel="window",
                category=category,
                summary="双击提交",
                region=tree.village_a1,
                parties=[
                    PartyData(
                        role="applicant", details=PartyDetails(name="居民", phone="13900001234")
                    )
                ],
            ).case.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=2) as pool:
        codes = set(pool.map(submit, range(2)))
    assert len(codes) == 1
    assert Case.objects.count() == 1
