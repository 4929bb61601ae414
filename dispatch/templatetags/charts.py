"""Charts drawn as SVG by the server: no script, no external library, readable in print and in
grey scale (bars carry their numbers; the same numbers are in a table beside every chart)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()

WIDTH, HEIGHT, PAD = 640, 180, 24


@register.simple_tag
def bar_chart(series, *, value: str, label: str = "") -> SafeString:
    """Bars of ``value`` (a count name) for each (period, counts, rates) of ``series``."""
    values = [counts.get(value, 0) for _period, counts, _rates in series]
    top = max(values, default=0) or 1
    step = (WIDTH - 2 * PAD) / max(len(values), 1)
    bars = []
    for i, ((period, _counts, _rates), n) in enumerate(zip(series, values, strict=True)):
        h = (HEIGHT - 2 * PAD) * n / top
        x = PAD + i * step
        y = HEIGHT - PAD - h
        day = period.start.date().isoformat()
        bars.append(
            (
                f"{x + 2:.1f}",
                f"{y:.1f}",
                f"{max(step - 4, 1):.1f}",
                f"{h:.1f}",
                f"{x + step / 2:.1f}",
                f"{y - 4:.1f}",
                n,
                f"{x + step / 2:.1f}",
                HEIGHT - 6,
                day[5:] if period.kind == "week" else day[:7],
            )
        )
    body = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" class="bar"></rect>'
        '<text x="{}" y="{}" class="n">{}</text><text x="{}" y="{}" class="axis">{}</text>',
        bars,
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">{}</svg>',
        WIDTH,
        HEIGHT,
        label,
        body,
    )


@register.simple_tag
def drill(board, fact: str = "", *, listed: str = "", dim: str = "", key="") -> str:
    """The address of the cases behind one number of ``board``."""
    params = {"region": board.region.code, "period": board.period.kind}
    if board.period.kind == "custom":
        # The form's end is the last day shown, inclusive; the period's end is exclusive.
        last_day = timezone.localdate(board.period.end - dt.timedelta(microseconds=1))
        params["start"] = timezone.localdate(board.period.start).isoformat()
        params["end"] = last_day.isoformat()
    if fact:
        params["fact"] = fact
    if listed:
        params["list"] = listed
    if dim:
        params.update({"dim": dim, "key": str(key)})
    return f"{reverse('dispatch:dashboard_cases')}?{urlencode(params)}"


@register.filter
def get_item(mapping, key):
    return mapping.get(key, "")
