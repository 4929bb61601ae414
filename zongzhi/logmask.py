"""No log line may open a case or reach a resident.

A tracking link is the resident's only credential (``/t/<token>``): it is written ``/t/***``.
A mainland mobile number keeps its first three and last four digits. The same masking serves
the product's own log lines (a filter on the console handler, for every logger: requests that
answered 404, SMS, workers) and gunicorn's logs (``--logger-class
zongzhi.logmask.GunicornLogger``: the access log's request line, path, query and referrer, and
the error log's "Error handling request ..." lines).
"""

from __future__ import annotations

import logging
import re

from gunicorn.glogging import Logger

TRACKING = re.compile(r"(/t/)[^/\s?#\"'<>]+")
MOBILE = re.compile(r"(?<![0-9])(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9])")


def mask(text: str) -> str:
    return MOBILE.sub(r"\1****\2", TRACKING.sub(r"\1***", text))


def _masked(msg, args) -> str:
    try:
        text = str(msg) % args if args else str(msg)
    except (TypeError, ValueError):
        text = f"{msg} {args}"
    return mask(text)


class MaskingFilter(logging.Filter):
    """Rewrites each record's message (its arguments filled in) and traceback, masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # Formatted once, here, so that what the traceback quotes is masked too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


class GunicornLogger(Logger):
    """gunicorn's logger, masked like the product's own lines."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for name in ("r", "U", "q", "f"):
            if isinstance(atoms.get(name), str):
                atoms[name] = mask(atoms[name])
        return atoms

    def error(self, msg, *args, **kwargs):
        super().error(_masked(msg, args), **kwargs)

    def exception(self, msg, *args, **kwargs):
        super().exception(_masked(msg, args), **kwargs)
