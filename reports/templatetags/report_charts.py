"""The report's charts as SVG with their colours written on the shapes, and its list links.

The dashboard's charts take their colours from a stylesheet; a PDF renderer draws inline SVG
without the page's stylesheets, so the report's charts carry their own (greys only: the report
is printed in grey scale) and every bar carries its number.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from reports.content import MonthlyReport

register = template.Library()

WIDTH, HEIGHT, PAD = 640, 180, 24
BAR, THIN_BAR, INK, AXIS = "#595959", "#b3b3b3", "#000000", "#404040"


@register.simple_tag
def month_bars(series, *, value: str, label: str = "") -> SafeString:
    """Bars of ``value`` (a count name) for each (period, counts, rates) of ``series``."""
    values = [counts.get(value, 0) for _period, counts, _rates in series]
    top = max(values, default=0) or 1
    step = (WIDTH - 2 * PAD) / max(len(values), 1)
    bars = []
    for i, ((period, _counts, _rates), n) in enumerate(zip(series, values, strict=True)):
        h = (HEIGHT - 2 * PAD) * n / top
        x = PAD + i * step
        y = HEIGHT - PAD - h
        bars.append(
            (
                f"{x + 3:.1f}",
                f"{y:.1f}",
                f"{max(step - 6, 1):.1f}",
                f"{h:.1f}",
                BAR,
                f"{x + step / 2:.1f}",
                f"{y - 4:.1f}",
                INK,
                n,
                f"{x + step / 2:.1f}",
                HEIGHT - 6,
                AXIS,
                f"{period.start:%Y-%m}",
            )
        )
    body = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"></rect>'
        '<text x="{}" y="{}" fill="{}" font-size="10" text-anchor="middle">{}</text>'
        '<text x="{}" y="{}" fill="{}" font-size="9" text-anchor="middle">{}</text>',
        bars,
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" '
        'aria-label="{label}" xmlns="http://www.w3.org/2000/svg">'
        '<line x1="{pad}" y1="{base}" x2="{end}" y2="{base}" stroke="{axis}" stroke-width="1">'
        "</line>{body}</svg>",
        w=WIDTH,
        h=HEIGHT,
        label=label,
        pad=PAD,
        base=HEIGHT - PAD,
        end=WIDTH - PAD,
        axis=AXIS,
        body=body,
    )


@register.simple_tag
def meter(rate) -> SafeString:
    """A rate as a bar of its share, outlined (an empty outline: no denominator)."""
    share = rate.value if rate.value is not None else 0.0
    return format_html(
        '<svg class="meter" viewBox="0 0 100 10" width="100" height="10" aria-hidden="true" '
        'xmlns="http://www.w3.org/2000/svg">'
        '<rect x="0.5" y="0.5" width="99" height="9" fill="#ffffff" stroke="{}"></rect>'
        '<rect x="0.5" y="0.5" width="{}" height="9" fill="{}"></rect></svg>',
        AXIS,
        f"{99 * min(max(share, 0.0), 1.0):.1f}",
        BAR if rate.meaningful else THIN_BAR,
    )


def list_params(
    report: MonthlyReport, fact: str = "", *, listed: str = "", dim: str = "", key=""
) -> dict[str, str]:
    """The dashboard's parameters for the list behind a number of the report's month."""
    params = {"region": report.region.code}
    if listed:
        params["list"] = listed
        return params
    params.update(
        {
            "period": "custom",
            "start": report.month.isoformat(),
            "end": report.last_day.isoformat(),  # inclusive, as the dashboard reads it
            "fact": fact,
        }
    )
    if dim:
        params.update({"dim": dim, "key": str(key)})
    return params


@register.simple_tag
def report_drill(report, fact: str = "", *, listed: str = "", dim: str = "", key="") -> str:
    """The dashboard's page of the cases behind one number of the report."""
    params = list_params(report, fact, listed=listed, dim=dim, key=key)
    return f"{reverse('dispatch:dashboard_cases')}?{urlencode(params)}"


@register.simple_tag
def report_list_fields(
    report, fact: str = "", *, listed: str = "", dim: str = "", key=""
) -> SafeString:
    """The same parameters as hidden fields, for the form that exports the list."""
    params = list_params(report, fact, listed=listed, dim=dim, key=key)
    return format_html_join("", '<input type="hidden" name="{}" value="{}">', params.items())
