from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from people.models import Role
from people.selectors import roles_of

# What each role works on, in the order a centre's day runs.
_LINKS = [
    ("intake_new", {Role.CLERK, Role.GRID_WORKER}, _("窗口受理"), _("登记群众诉求并打印受理单")),
    ("dispatch:dispatcher", {Role.DISPATCHER}, _("派单"), _("立案、分类定级、派单、上报与下派")),
    (
        "dispatch:inbox",
        {Role.HANDLER, Role.GRID_WORKER},
        _("承办"),
        _("签收、办理、反馈、申请延期或中止"),
    ),
    (
        "dispatch:supervise",
        {Role.SUPERVISOR, Role.LEADER},
        _("督办"),
        _("审批延期与中止、核查结案、回访"),
    ),
]


@login_required
def home(request):
    """The staff landing page: what this person's roles let them do."""
    roles = roles_of(request.user)
    held = {grant.role for grant in roles}
    links = [
        {"url": reverse(name), "label": label, "help": help_text}
        for name, wanted, label, help_text in _LINKS
        if held & wanted
    ]
    return render(request, "home.html", {"roles": roles, "links": links})
