"""Test settings: the production module with the few differences a test run needs."""

from zongzhi.settings import *  # noqa: F403

# Fast hashing: the suite creates many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # noqa: S303
# Tasks run in-process unless a test starts a real worker (tests/dispatch/test_worker.py).
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
MEDIA_ROOT = VAR_DIR / "test-media"  # noqa: F405

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory, so that a real worker started by a test opens the same database.
    # One file per test process: parallel runs (and pytest-xdist, which appends _gwN) never
    # share one.
    import atexit as _atexit
    import os as _os
    import tempfile as _tempfile

    _test_db = Path(_tempfile.gettempdir()) / f"zongzhi-test-{_os.getpid()}.sqlite3"  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(_test_db)}  # noqa: F405

    def _remove_test_db_files() -> None:
        # Django deletes the database file; its WAL and shared-memory files are left behind.
        for p in _test_db.parent.glob(f"{_test_db.name}*"):
            p.unlink(missing_ok=True)

    _atexit.register(_remove_test_db_files)
