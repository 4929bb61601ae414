"""End-to-end tests: a running server, reached over HTTP only (no test database, no ORM).

They run when ``ZONGZHI_E2E_URL`` names the server (``.ci/run`` starts ``./dev up`` in a scratch
clone and passes its address); the normal suite skips them.
"""

from __future__ import annotations

import pytest


def pytest_configure(config):
    # Registered here, not in pyproject.toml: the suite runs with --strict-markers.
    config.addinivalue_line(
        "markers", "e2e: drives a running ./dev up over HTTP (needs ZONGZHI_E2E_URL)"
    )


@pytest.fixture(autouse=True)
def clock():
    """The real clock: the server's time and this test's waits are wall-clock time.

    Overrides the suite's travelling clock (tests/conftest.py), which would put this process in
    another week than the server it measures.
    """
    yield None


@pytest.fixture(autouse=True)
def clean_cache():
    """Nothing to clear: the server's cache is the server's, and this process has none in play."""
    yield None
