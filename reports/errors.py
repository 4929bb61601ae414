"""The reports app's one domain error, with a code kept on a failed export and its message."""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

# A failed export keeps the code; the page says the message in the reader's language.
MESSAGES: dict[str, Promise] = {
    "scope": _("您已无权查看该范围，导出未生成。"),
    "too_many": _("清单超过可导出的件数上限，请缩小范围或时段后再导出。"),
    "list": _("该清单不存在。"),
    "failed": _("生成失败，请稍后重试；如仍失败请联系系统管理员。"),
}


class ReportError(Exception):
    """A report or export that cannot be made as asked."""

    def __init__(self, code: str, **params: object) -> None:
        self.code = code if code in MESSAGES else "failed"
        self.params = params
        super().__init__(self.code)

    @property
    def message(self) -> str:
        return message_for(self.code, **self.params)


def message_for(code: str, **params: object) -> str:
    text = str(MESSAGES.get(code, MESSAGES["failed"]))
    return text % params if params else text
