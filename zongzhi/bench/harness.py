"""What every workload of ``manage.py bench`` shares: a gunicorn server on 127.0.0.1, HTTP
clients with a session, bounded load loops, percentiles, and one way to report a figure.

Nothing here sends traffic beyond 127.0.0.1. Every loop is bounded in count and in time.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from django.conf import settings

HOST = "127.0.0.1"
WORKERS = 2
# Any single loop stops after this long, whatever its count.
MAX_SECONDS = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Client:
    """A keep-alive HTTP client to the bench server, with cookies (a logged-in member of staff)."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)
    _conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection(HOST, self.port, timeout=30)
        return self._conn

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, str, float]:
        headers = {"Accept-Language": "zh-hans"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        data = None
        if body is not None:
            data = urlencode(body, doseq=True)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            if "csrftoken" in self.cookies:
                headers["X-CSRFToken"] = self.cookies["csrftoken"]
            headers["Referer"] = f"http://{HOST}:{self.port}{path}"
        start = time.perf_counter()
        conn = self._connection()
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        except (http.client.HTTPException, OSError):
            conn.close()
            self._conn = None
            raise
        seconds = time.perf_counter() - start
        for header in response.headers.get_all("Set-Cookie") or []:
            cookie = SimpleCookie(header)
            for name, morsel in cookie.items():
                self.cookies[name] = morsel.value
        if response.getheader("Connection", "").lower() == "close":
            conn.close()
            self._conn = None
        return response.status, text, seconds

    def get(self, path: str) -> tuple[int, str, float]:
        return self.request("GET", path)

    def post(self, path: str, body: dict) -> tuple[int, str, float]:
        return self.request("POST", path, body)

    def login(self, username: str, password: str) -> None:
        _status, page, _s = self.get("/login/")
        token = csrf_token(page)
        status, _text, _s = self.post(
            "/login/", {"username": username, "password": password, "csrfmiddlewaretoken": token}
        )
        if status != 302:
            raise RuntimeError(f"could not log in as {username} (HTTP {status})")


def csrf_token(page: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    return match.group(1) if match else ""


@contextmanager
def server():
    """gunicorn with 2 sync workers on the current settings plus the bare view."""
    port = free_port()
    env = dict(os.environ)
    env["ZONGZHI_BENCH_BASE_SETTINGS"] = os.environ.get(
        "DJANGO_SETTINGS_MODULE", "zongzhi.settings"
    )
    env["DJANGO_SETTINGS_MODULE"] = "zongzhi.bench.settings"
    cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "zongzhi.wsgi:application",
        "--workers",
        str(WORKERS),
        "--bind",
        f"{HOST}:{port}",
        "--log-level",
        "warning",
        "--logger-class",
        "zongzhi.logmask.GunicornLogger",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=str(settings.BASE_DIR))  # noqa: S603
    try:
        deadline = time.monotonic() + 30
        probe = Client(port)
        while True:
            try:
                if probe.get("/bench/bare")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def timed(call: Callable[[], tuple[int, str, float]], count: int) -> dict:
    """``count`` sequential calls (bounded by MAX_SECONDS): p50/p95/p99 in ms, errors."""
    latencies, errors = [], 0
    stop = time.monotonic() + MAX_SECONDS
    for _ in range(count):
        status, _text, seconds = call()
        latencies.append(seconds * 1000)
        errors += status >= 400
        if time.monotonic() > stop:
            break
    return summary(latencies, errors=errors)


def concurrent(port: int, path: str, count: int, *, threads: int = 8) -> dict:
    """``count`` GETs of ``path`` from ``threads`` keep-alive clients: req/s and latencies."""
    per = max(1, count // threads)
    stop = time.monotonic() + MAX_SECONDS

    def worker(_i: int) -> tuple[list[float], int]:
        client, out, errors = Client(port), [], 0
        for _ in range(per):
            status, _t, seconds = client.get(path)
            out.append(seconds * 1000)
            errors += status != 200
            if time.monotonic() > stop:
                break
        return out, errors

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        results = list(pool.map(worker, range(threads)))
    elapsed = time.perf_counter() - start
    latencies = [ms for chunk, _e in results for ms in chunk]
    row = summary(latencies, errors=sum(e for _c, e in results))
    row["rps"] = round(len(latencies) / elapsed, 1) if elapsed else 0.0
    return row


def summary(latencies: list[float], *, errors: int = 0) -> dict:
    return {
        "n": len(latencies),
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p95_ms": round(percentile(latencies, 0.95), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "errors": errors,
    }


class Report:
    """Figures as JSON lines (for machines) and a table at the end (for people)."""

    def __init__(self, stdout) -> None:
        self.stdout = stdout
        self.rows: list[dict] = []

    def add(self, workload: str, **figures) -> dict:
        row = {"workload": workload, **figures}
        self.rows.append(row)
        self.stdout.write(json.dumps(row, ensure_ascii=False))
        return row

    def table(self) -> None:
        columns = [
            "workload",
            "rps",
            "ratio_w0",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "queries",
            "seconds",
            "per_case_ms",
            "rate",
            "errors",
        ]
        shown = [c for c in columns if any(c in row for row in self.rows)]
        widths = {c: max(len(c), *(len(str(row.get(c, ""))) for row in self.rows)) for c in shown}
        self.stdout.write("  ".join(c.ljust(widths[c]) for c in shown))
        for row in self.rows:
            self.stdout.write("  ".join(str(row.get(c, "")).ljust(widths[c]) for c in shown))
