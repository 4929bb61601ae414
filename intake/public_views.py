"""The resident's pages: no login, the tracking token in the URL is the only credential.

The tracking page is the most requested page of the product. Its rendered HTML is cached per
token, language and text size, stamped with a generation value that
``dispatch.events.append_event`` deletes after each commit; a page rendered from a read that
raced an event is stored under the old stamp and never served.

These pages carry no session and no cookie, so the POST forms are exempt from CSRF: the secret
that authorises them is the token in the URL, which a cross-site page cannot know.
"""

from __future__ import annotations

import secrets
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from dispatch.errors import DispatchError
from dispatch.events import tracking_generation_key
from dispatch.services import rate_case, resident_reopen_case, resident_urge_case
from intake import selectors
from intake.forms import LookupForm, RatingForm

PUBLIC_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}
LOOKUP_LIMIT_PER_ADDRESS = 10  # attempts per window from one client address
LOOKUP_LIMIT_PER_CODE = 5  # attempts per window on one case code
LOOKUP_WINDOW = 3600


def _public(response: HttpResponse) -> HttpResponse:
    for name, value in PUBLIC_HEADERS.items():
        response[name] = value
    return response


def _not_found() -> HttpResponse:
    """One body for malformed, unknown and revoked tokens alike."""
    return _public(HttpResponse(render_to_string("intake/public_404.html"), status=404))


def _page_key(token: str, large: bool) -> str:
    return f"track:page:{token}:{translation.get_language()}:{int(large)}"


def _generation(token: str) -> str:
    key = tracking_generation_key(token)
    gen = cache.get(key)
    if gen is None:
        cache.add(key, secrets.token_hex(8), timeout=24 * 3600)
        gen = cache.get(key)
    return gen


# A process-local copy of recently served pages, checked against the shared stamp on every
# request: one shared-cache read per visit instead of two. Bounded; cleared when full.
_LOCAL: dict[str, tuple[str, str, float]] = {}
_LOCAL_MAX = 2048


def _remember(page_key: str, entry: tuple[str, str, float]) -> None:
    if len(_LOCAL) >= _LOCAL_MAX:
        _LOCAL.clear()
    _LOCAL[page_key] = entry


@require_http_methods(["GET", "HEAD"])
def tracking(request, token: str):
    if not selectors.TOKEN_RE.match(token):
        return _not_found()
    large = request.GET.get("large") == "1"
    page_key = _page_key(token, large)
    gen_key = tracking_generation_key(token)
    stamp = cache.get(gen_key)
    if stamp is not None:
        now_ts = time.time()
        entry = _LOCAL.get(page_key)
        if entry is None or entry[0] != stamp or entry[2] <= now_ts:
            entry = cache.get(page_key)
            if entry is not None and entry[0] == stamp and entry[2] > now_ts:
                _remember(page_key, entry)
        if entry is not None and entry[0] == stamp and entry[2] > now_ts:
            return _public(HttpResponse(entry[1]))

    added = stamp is None
    if added:
        stamp = _generation(token)  # read before the case, so a racing event wins
    case = selectors.case_by_token(token)
    if case is None:
        if added:
            cache.delete(gen_key)  # guessed tokens leave nothing behind in the cache
        return _not_found()
    now = timezone.now()
    html = _render_tracking(request, case, token=token, large=large, now=now)
    if stamp is not None:
        ttl = selectors.cache_seconds_for(case, now=now)
        entry = (stamp, html, time.time() + ttl)
        cache.set(page_key, entry, timeout=ttl)
        _remember(page_key, entry)
    return _public(HttpResponse(html))


def _render_tracking(
    request, case, *, token: str, large: bool, now, form=None, error: str = ""
) -> str:
    context = selectors.tracking_context(case, now=now)
    context.update(
        {
            "token": token,
            "large": large,
            "rating_form": form or RatingForm(),
            "error": error,
            "now": now,
            "centre_phone": case.owner_unit.phone,
        }
    )
    # Rendered without the request: nothing per visitor (no CSRF token, no session) may end up
    # in the page that the next visitor is served from the cache.
    return render_to_string("intake/tracking.html", context)


def _back(token: str, large: bool = False) -> HttpResponse:
    url = reverse("tracking", kwargs={"token": token})
    return _public(HttpResponseRedirect(url + ("?large=1" if large else "")))


def _resident_action(request, token: str, action):
    case = selectors.case_by_token(token)
    if case is None:
        return _not_found()
    large = request.POST.get("large") == "1"
    try:
        action(case)
    except DispatchError as exc:
        case.refresh_from_db()
        html = _render_tracking(
            request,
            case,
            token=token,
            large=large,
            now=timezone.now(),
            error=exc.message,
            form=getattr(exc, "form", None),
        )
        return _public(HttpResponse(html, status=400))
    return _back(token, large)


@csrf_exempt
@require_POST
def rate(request, token: str):
    def act(case):
        form = RatingForm(request.POST)
        if not form.is_valid():
            exc = DispatchError(_("请选择评价等级"), code="rating")
            exc.form = form  # type: ignore[attr-defined]
            raise exc
        rate_case(
            case=case, rating=form.cleaned_data["rating"], comment=form.cleaned_data["comment"]
        )

    return _resident_action(request, token, act)


@csrf_exempt
@require_POST
def reopen(request, token: str):
    return _resident_action(
        request,
        token,
        lambda case: resident_reopen_case(case=case, reason=request.POST.get("reason", "")[:500]),
    )


@csrf_exempt
@require_POST
def urge(request, token: str):
    return _resident_action(request, token, lambda case: resident_urge_case(case=case))


def _client_address(request) -> str:
    # Behind the TLS proxy Django trusts X-Forwarded-Proto only; the address is the socket's
    # unless a deployment adds a trusted proxy middleware.
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _over_limit(key: str, limit: int) -> bool:
    """Count one attempt; True once ``key`` has had more than ``limit`` in the window."""
    cache.add(key, 0, timeout=LOOKUP_WINDOW)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=LOOKUP_WINDOW)
        count = 1
    return count > limit


@csrf_exempt
@require_http_methods(["GET", "POST"])
def lookup(request):
    """A lost receipt: case code + last four phone digits -> the tracking page."""
    form = LookupForm(request.POST or None)
    error = ""
    status = 200
    if request.method == "POST":
        code = (request.POST.get("code") or "").strip().upper()[:32]
        limited = _over_limit(f"lookup:addr:{_client_address(request)}", LOOKUP_LIMIT_PER_ADDRESS)
        limited = _over_limit(f"lookup:code:{code}", LOOKUP_LIMIT_PER_CODE) or limited
        if limited:
            error = _("查询过于频繁，请一小时后再试，或携带身份证件到综治中心窗口查询")
            status = 429
        elif form.is_valid():
            case = selectors.case_for_lookup(form.cleaned_data["code"], form.cleaned_data["last4"])
            if case is not None:
                return _back(case.tracking_token)
            error = _("案件编号或手机号后四位不正确")
            status = 404
        else:
            error = _("案件编号或手机号后四位不正确")
            status = 400
    if request.method == "POST":
        # Show the code back for a retry, never the digits: they are half of the secret.
        form = LookupForm(initial={"code": (request.POST.get("code") or "")[:32]})
    html = render_to_string(
        "intake/lookup.html",
        {
            "form": form,
            "error": error,
            "large": request.GET.get("large") == "1",
            "site_phone": getattr(settings, "CENTRE_PHONE", ""),
        },
    )
    return _public(HttpResponse(html, status=status))
