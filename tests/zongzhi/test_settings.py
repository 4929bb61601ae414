"""Production mode refuses to start without its secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _start(env_overrides: dict[str, str], tmp_path) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "SECRET_KEY",
                "FIELD_ENCRYPTION_KEYS",
                "BLIND_INDEX_KEY",
                "DEBUG",
                "DJANGO_SETTINGS_MODULE",
                "DATABASE_URL",
            )
        )
    }
    env.update({"DJANGO_SETTINGS_MODULE": "zongzhi.settings", "ZONGZHI_VAR_DIR": str(tmp_path)})
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_debug_off_without_secret_key_refuses_to_start(tmp_path):
    result = _start(
        {"DEBUG": "0", "FIELD_ENCRYPTION_KEYS": "k1:" + "A" * 43, "BLIND_INDEX_KEY": "x" * 32},
        tmp_path,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr
    assert "started" not in result.stdout
    # Nothing was generated as a fallback.
    assert not (tmp_path / "secret_key").exists()


def test_debug_off_without_field_keys_refuses_to_start(tmp_path):
    result = _start({"DEBUG": "0", "SECRET_KEY": "s" * 50}, tmp_path)
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEYS" in result.stderr


def test_debug_off_with_every_secret_starts(tmp_path):
    result = _start(
        {
            "DEBUG": "0",
            "SECRET_KEY": "s" * 50,
            "FIELD_ENCRYPTION_KEYS": "k1:" + "A" * 43,
            "BLIND_INDEX_KEY": "x" * 32,
        },
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


@pytest.mark.parametrize("name,value", [("DEBUG", "maybe"), ("DATABASE_CONN_MAX_AGE", "ten")])
def test_unparseable_values_are_refused(tmp_path, name, value):
    result = _start({name: value}, tmp_path)
    assert result.returncode != 0
    assert name in result.stderr


def test_development_mode_generates_its_key_once(tmp_path):
    first = _start({}, tmp_path)
    assert first.returncode == 0, first.stderr
    key = (tmp_path / "secret_key").read_text()
    assert len(key) >= 50
    second = _start({}, tmp_path)
    assert second.returncode == 0
    assert (tmp_path / "secret_key").read_text() == key


def test_secret_key_from_file(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("f" * 50 + "\n")
    secrets = {"DEBUG": "0", "FIELD_ENCRYPTION_KEYS": "k1:" + "A" * 43, "BLIND_INDEX_KEY": "x" * 32}
    result = _start({**secrets, "SECRET_KEY_FILE": str(secret)}, tmp_path)
    assert result.returncode == 0, result.stderr
    both = _start({**secrets, "SECRET_KEY_FILE": str(secret), "SECRET_KEY": "s" * 50}, tmp_path)
    assert both.returncode != 0
    assert "SECRET_KEY_FILE" in both.stderr
    missing = _start({**secrets, "SECRET_KEY_FILE": str(tmp_path / "nope")}, tmp_path)
    assert missing.returncode != 0
    assert "cannot be read" in missing.stderr


def test_the_embedded_default_prints_qr_codes_for_the_port_it_serves_on(tmp_path):
    probe = "from django.conf import settings; print(settings.PUBLIC_BASE_URL)"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "zongzhi.settings"}
    env.pop("PUBLIC_BASE_URL", None)
    env.update({"ZONGZHI_VAR_DIR": str(tmp_path), "ZONGZHI_PORT": "8101"})
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {probe}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.strip() == "http://127.0.0.1:8101"
    env["PUBLIC_BASE_URL"] = "https://zz.qinghe.example.cn/"
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {probe}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.strip() == "https://zz.qinghe.example.cn"
