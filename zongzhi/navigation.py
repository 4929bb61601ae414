"""The staff navigation: the desks a person works at, and the admin for administrators.

Which roles work at which desk is ``dispatch.access.DESK_ROLES``, the same table the desks'
pages check; so the menu offers exactly the pages that open for the user.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from dispatch.access import may_use_desk
from people.models import User


@dataclass(frozen=True)
class Link:
    url_name: str
    label: Promise
    help: Promise
    desk: str | None = None  # None: the admin, for staff accounts

    @property
    def url(self) -> str:
        return reverse(self.url_name)


# In the order a centre's day runs.
LINKS = [
    Link("intake_new", _("窗口受理"), _("登记群众诉求并打印受理单"), "intake"),
    Link("dispatch:dispatcher", _("派单"), _("立案、分类定级、派单、上报与下派"), "dispatcher"),
    Link("dispatch:inbox", _("承办"), _("签收、办理、反馈、申请延期或中止"), "inbox"),
    Link("dispatch:supervise", _("督办"), _("审批延期与中止、核查结案、回访"), "supervise"),
    Link(
        "dispatch:dashboard",
        _("督导看板"),
        _("受理、超期、按时办结率、满意度与各单位排名"),
        "supervise",
    ),
    Link("reports:monthly", _("月度报告"), _("各乡镇与全县的月度报告、PDF与Excel"), "supervise"),
    Link("reports:exports", _("我的导出"), _("正在生成和已生成的导出文件"), "supervise"),
    Link("admin:index", _("系统管理"), _("区划、单位、人员、分类、时限与派单规则")),
]


def links_for(user: User) -> list[Link]:
    if not user.is_authenticated:
        return []
    return [
        link
        for link in LINKS
        if (link.desk is not None and may_use_desk(user, link.desk))
        or (link.desk is None and user.is_staff and user.is_active)
    ]
