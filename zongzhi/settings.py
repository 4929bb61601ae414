"""The one settings module. Every deployment difference comes from the environment.

Defaults are the embedded development set-up: SQLite and a filesystem broker under ``var/``, so
that a fresh clone runs web, worker and beat with no external service. Production sets
``DEBUG=0``, ``SECRET_KEY``, ``DATABASE_URL`` (PostgreSQL) and ``CELERY_BROKER_URL`` (Redis).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from zongzhi.env import dev_secret, env_bool, env_int, env_list, env_secret, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("ZONGZHI_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", True)

SECRET_KEY = env_secret("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY (or SECRET_KEY_FILE) must be set when DEBUG is off; "
            "the generated development key is never used in production."
        )
    SECRET_KEY = dev_secret(VAR_DIR / "secret_key")

# Keys for encrypted personal data, "kid:base64key" separated by commas, current key first.
# Older keys stay listed until `manage.py rotate_field_keys` has re-encrypted every row.
FIELD_ENCRYPTION_KEYS = env_secret("FIELD_ENCRYPTION_KEYS")
BLIND_INDEX_KEY = env_secret("BLIND_INDEX_KEY")
if not FIELD_ENCRYPTION_KEYS or not BLIND_INDEX_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS and BLIND_INDEX_KEY must be set when DEBUG is off."
        )
    FIELD_ENCRYPTION_KEYS = FIELD_ENCRYPTION_KEYS or "dev1:" + dev_secret(
        VAR_DIR / "field_key", nbytes=32
    )
    BLIND_INDEX_KEY = BLIND_INDEX_KEY or dev_secret(VAR_DIR / "blind_index_key", nbytes=32)
FIELD_CIPHER = env_str("FIELD_CIPHER", "people.crypto.AesGcmCipher")

# Where ``./dev up`` serves (Procfile.dev): the embedded default's public address follows it.
ZONGZHI_HOST = env_str("ZONGZHI_HOST", "127.0.0.1")
ZONGZHI_PORT = env_int("ZONGZHI_PORT", 8000)
# QR codes and SMS links are built from this, never from the request's Host header. Production
# sets the address residents reach the product at (https://..., through the proxy).
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", f"http://{ZONGZHI_HOST}:{ZONGZHI_PORT}").rstrip("/")

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", ZONGZHI_HOST] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])


INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "guardian",
    "zongzhi",
    "grids",
    "people",
    "dispatch",
    "intake",
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "zongzhi.middleware.LanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "zongzhi.urls"
WSGI_APPLICATION = "zongzhi.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "zongzhi.context_processors.navigation",
                "zongzhi.context_processors.notices",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'zongzhi.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: WAL lets readers run beside the writer, IMMEDIATE
    # takes the write lock at BEGIN so two writers queue instead of failing mid-transaction.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT compilation: the pages' queries are short, but a large table's estimated cost puts
    # them over jit_above_cost, and compiling then took longer than running (the dashboard's
    # open-case summary of a county: 274 ms of JIT for 257 ms of work).
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = f"{_options.get('options', '')} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# SQLite cannot enforce UNIQUE ... NULLS NOT DISTINCT (RoleGrant); PostgreSQL does, and
# people.services.grant_role checks before inserting on both.
SILENCED_SYSTEM_CHECKS = ["models.W047"]

AUTH_USER_MODEL = "people.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous row; residents never hold permissions
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "zh-hans"
# Each language named in itself, whatever the interface language is.
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "Asia/Shanghai")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "staticfiles"
if DEBUG:
    # WhiteNoise serves from the finders in development but still scans STATIC_ROOT.
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
ATTACHMENT_MAX_BYTES = env_int("ATTACHMENT_MAX_BYTES", 20 * 1024 * 1024)

_cache_url = env_str("CACHE_URL", "")
if _cache_url.startswith(("redis://", "rediss://")):
    CACHES: dict[str, dict[str, Any]] = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": _cache_url,
        }
    }
elif _cache_url == "":
    # Web and worker are separate processes; a file cache is the embedded store both can see,
    # so the worker's invalidations reach the web process.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            # The residents' stored tracking pages (4 per case) live here too: room for a
            # county's open cases, not Django's default of 300 entries.
            "OPTIONS": {"MAX_ENTRIES": env_int("FILE_CACHE_MAX_ENTRIES", 50_000)},
        }
    }
elif _cache_url == "locmem://":
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
else:
    raise ImproperlyConfigured(
        f"CACHE_URL must be redis://, rediss://, locmem:// or empty, got {_cache_url!r}"
    )

# Celery. The default broker is kombu's filesystem transport: a real worker and beat run with no
# server. Production points CELERY_BROKER_URL at Redis.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", "filesystem://")
_broker_dir = VAR_DIR / "broker"
_broker_queue = _broker_dir / "queue"
_broker_processed = _broker_dir / "processed"
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(_broker_queue),
        "data_folder_out": str(_broker_queue),
        "processed_folder": str(_broker_processed),
        # Broadcast (remote control) messages; kombu's default is ./control in the cwd.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        # How often the worker looks for new messages. At kombu's default (every second) each
        # look hands out about one message per free worker process, so a burst of jobs, such as
        # the pages the first sweep re-renders, held a clerk's routing back for half a minute.
        "polling_interval": 0.1,
    }
    if CELERY_BROKER_URL.startswith("filesystem://")
    # Redis: a message taken by a worker that dies (kill -9, OOM, a lost machine) is handed out
    # again after this many seconds. It must exceed the longest task, or a task still running
    # would be handed to a second worker: every task is stopped at CELERY_TASK_TIME_LIMIT, well
    # below it, and the sweeper and the outbox relay end their pass earlier still by their own
    # budgets. Work recorded in the outbox does not wait for this: the relay runs it again once
    # its two-minute lease has passed.
    else {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 300)}
)
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 240)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 30
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The transport needs its folders; web (publisher) and worker (consumer) both start here.
    for _folder in (_broker_queue, _broker_processed):
        _folder.mkdir(parents=True, exist_ok=True)
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# How often beat runs the outbox relay: after a broker outage, the work recorded meanwhile runs
# within this many seconds of the broker's return.
OUTBOX_RELAY_SECONDS = env_int("OUTBOX_RELAY_SECONDS", 10)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "zongzhi API",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None
)

# One handler for every logger, masked (``zongzhi.logmask``): no tracking link or mobile number
# is written out, whichever logger wrote the line (the development server's request lines too).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"mask": {"()": "zongzhi.logmask.MaskingFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["mask"]}
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# Deadlines and notifications (dispatch.calendar, dispatch.sms).
# Office hours that a clock counted in working hours runs in, local time, on working days.
WORKING_HOURS = env_list("WORKING_HOURS", ["09:00-12:00", "13:30-17:30"])
# The dashboard greys out a rate whose denominator has fewer cases than this: not meaningful.
RATE_MIN_SAMPLE = env_int("RATE_MIN_SAMPLE", 10)
SMS_BACKEND = env_str("SMS_BACKEND", "dispatch.sms.LogBackend")
SMS_GATEWAY_URL = env_str("SMS_GATEWAY_URL", "")
SMS_GATEWAY_TIMEOUT = env_int("SMS_GATEWAY_TIMEOUT", 5)
SMS_SIGNATURE = env_str("SMS_SIGNATURE", "【综治中心】")
