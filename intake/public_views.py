"""The resident's pages: no login, the tracking token in the URL is the only credential.

The tracking page is the most requested page of the product. The worker renders it when the
case changes and stores the bytes in the shared cache (``intake.tracking``); a visit is one
round trip to the cache and no query. A page that is not stored, or no longer true, is rendered
here and stored for the next visitor.

These pages carry no session and no cookie, so the POST forms are exempt from CSRF: the secret
that authorises them is the token in the URL, which a cross-site page cannot know.
"""

from __future__ import annotations

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
from dispatch.services import rate_case, resident_reopen_case, resident_urge_case
from intake import selectors
from intake import tracking as stored
from intake.forms import LookupForm, RatingForm

PUBLIC_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}
LOOKUP_LIMIT_PER_ADDRESS = 10  # attempts per window from one client address
LOOKUP_LIMIT_PER_CODE = 5  # attempts per window on one case code
LOOKUP_WINDOW = 3600

# The 404 body per language, rendered once per process: it depends on nothing else, and a
# guessed token should cost as little as possible.
_LOCAL: dict[str, bytes] = {}


def _public(response: HttpResponse) -> HttpResponse:
    for name, value in PUBLIC_HEADERS.items():
        response[name] = value
    return response


def _not_found() -> HttpResponse:
    """One body for malformed, unknown and revoked tokens alike."""
    language = translation.get_language()
    body = _LOCAL.get(language)
    if body is None:
        body = _LOCAL[language] = render_to_string("intake/public_404.html").encode("utf-8")
    return _public(HttpResponse(body, status=404))


@require_http_methods(["GET", "HEAD"])
def tracking(request, token: str):
    if not selectors.TOKEN_RE.match(token):
        return _not_found()
    large = request.GET.get("large") == "1"
    language = translation.get_language()
    body, stamp = stored.lookup(token, language, large)
    if body is not None:
        return _public(HttpResponse(body))

    if stamp is None:
        stamp = stored.take_stamp(token)  # before the case is read, so a racing event wins
    case = selectors.case_by_token(token)
    if case is None:
        stored.drop_stamp(token)  # guessed tokens leave nothing behind in the cache
        return _not_found()
    now = timezone.now()
    html = _render_tracking(request, case, token=token, large=large, now=now)
    stored.store(token, language, large, stamp=stamp, case=case, now=now, html=html)
    return _public(HttpResponse(html))


def _render_tracking(
    request, case, *, token: str, large: bool, now, form=None, error: str = ""
) -> str:
    # The request is not passed on: nothing per visitor may end up in a page that is stored.
    return stored.render_page(case, token=token, large=large, now=now, form=form, error=error)


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
