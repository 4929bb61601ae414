"""一案一码: the case code and the public tracking token.

Code: 6-digit county + 8-digit date + 5-digit daily sequence + 1 check character, e.g.
``13990120261123000427``. Digits only but the check (0-9 or X, ISO 7064 MOD 11-2 as on ID
cards), sortable by date, readable over the phone.
"""

from __future__ import annotations

import datetime as dt
import secrets

from django.db import connection

from people.identity import mod11_2_check


def is_valid_code(code: str) -> bool:
    code = code.strip().upper()
    return len(code) == 20 and code[:19].isdigit() and mod11_2_check(code[:19]) == code[19]


def next_sequence(prefix: str) -> int:
    """Atomically take the next number for ``prefix`` (county + date).

    One ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` statement: PostgreSQL serialises
    concurrent upserts on the primary key, so two clerks saving at once get different numbers
    without a table lock. SQLite (3.35+) runs the same statement under its writer lock.
    """
    table = "dispatch_casecodecounter"
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (prefix, last) VALUES (%s, 1) "  # noqa: S608 - constant
            f"ON CONFLICT (prefix) DO UPDATE SET last = {table}.last + 1 RETURNING last",
            [prefix],
        )
        return cursor.fetchone()[0]


def new_case_code(*, county_code: str, on: dt.date) -> str:
    prefix = f"{county_code}{on:%Y%m%d}"
    body = f"{prefix}{next_sequence(prefix):05d}"
    return body + mod11_2_check(body)


def new_tracking_token() -> str:
    """At least 128 random bits, URL-safe (22 characters for 16 bytes)."""
    return secrets.token_urlsafe(16)
