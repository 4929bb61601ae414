"""The staff landing page and the error pages."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.csrf import requires_csrf_token
from django.views.decorators.http import require_POST
from django.views.i18n import set_language as django_set_language

from people.selectors import roles_of
from zongzhi.navigation import links_for


@login_required
def home(request):
    """The staff landing page: the desks this person works at."""
    return render(
        request, "home.html", {"roles": roles_of(request.user), "links": links_for(request.user)}
    )


@require_POST
def set_language(request):
    """The language switch: a cookie for everyone, and the profile of a member of staff."""
    response = django_set_language(request)
    language = request.POST.get("language")
    user = request.user
    if user.is_authenticated and language in {code for code, _name in settings.LANGUAGES}:
        user.language = language
        user.save(update_fields=["language"])
    return response


@requires_csrf_token
def server_error(request):
    """500: the styled page in the user's language, with nothing that could fail again."""
    return render(request, "500.html", status=500)
