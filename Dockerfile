# The production image: gunicorn web, Celery worker and beat all run from it (see
# docker-compose.yml). Personal data stays on the deployment's own servers; nothing here
# fetches anything at run time.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    ZONGZHI_VAR_DIR=/app/var \
    MEDIA_ROOT=/app/var/media

# WeasyPrint needs Pango (and HarfBuzz's subsetter, which makes CJK receipts fast); receipts
# need a CJK font; gettext compiles the translation catalogues; fontconfig finds the font.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 \
        fontconfig fonts-noto-cjk gettext \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, pinned by the constraints file, so that code changes reuse this layer.
COPY pyproject.toml ./
COPY requirements/constraints.txt requirements/constraints.txt
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt -c requirements/constraints.txt \
    && rm /tmp/requirements.txt

COPY . .

# Build-time only values: collectstatic and the font preparation import the settings, which
# refuse to load with DEBUG off and no secrets. None of these values reaches a running
# container (docker-compose.yml sets the real ones).
RUN set -eux; \
    export DEBUG=0 SECRET_KEY=build-only-not-a-secret BLIND_INDEX_KEY=build-only \
        FIELD_ENCRYPTION_KEYS="build:$(python -c 'import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())')"; \
    python manage.py collectstatic --noinput; \
    python manage.py prepare_fonts; \
    if ls */locale >/dev/null 2>&1 || [ -d locale ]; then python manage.py compilemessages --ignore .venv; fi

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin zongzhi \
    && mkdir -p /app/var/media \
    && chown -R zongzhi:zongzhi /app/var
USER zongzhi

EXPOSE 8000
CMD ["gunicorn", "zongzhi.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", \
     "--access-logfile", "-", "--logger-class", "zongzhi.logmask.GunicornLogger"]
