"""The receipt (受理单): its content, the browser print view, and the WeasyPrint PDF.

One template serves both: the print view links ``static/css/receipt.css``; the PDF gets the
same stylesheet pre-parsed once per process together with the prepared CJK fonts
(``intake.fonts``), because parsing the CSS and loading the fonts is most of a cold render.

The PDF is rendered by the ``receipt.render`` job that the registering transaction records
(``queue_receipt``, ``dispatch.outbox``) and stored in ``Case.receipt_pdf``; the download view
renders on demand if it is missing. User text reaches the template only through autoescaping.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.files.base import ContentFile
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from dispatch import outbox, services
from dispatch.deadlines import due_after
from dispatch.models import Case, PartyRole
from dispatch.routing import find_rule
from dispatch.states import Action, Status
from intake import pdf
from intake.qr import qr_png_data_uri, qr_svg, qr_version, tracking_url

logger = logging.getLogger(__name__)
# WeasyPrint logs seven INFO lines per document; a worker rendering receipts only wants problems.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

# Paper sizes: CSS @page size and margin, and the QR's printed width.
SIZES = {
    "a4": {"page": "A4", "margin": "18mm 18mm 16mm", "qr": "46mm", "label": "A4"},
    "a5": {"page": "A5", "margin": "10mm 11mm", "qr": "38mm", "label": "A5"},
    # A thermal roll has no page height; 200 mm holds the receipt on one "page" and the
    # printer cuts after the content.
    "80mm": {"page": "80mm 200mm", "margin": "4mm 4mm", "qr": "40mm", "label": "80mm"},
}
DEFAULT_SIZE = "a4"


def clean_size(value: str | None) -> str:
    return value if value in SIZES else DEFAULT_SIZE


# --- content ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Promise:
    at: dt.datetime
    estimated: bool  # computed from the deadline profile, not yet a deadline column


def promised_reply(case: Case) -> Promise | None:
    """When the resident will hear back: the reply deadline, else completion, else estimated.

    Before dispatch a case has no deadline columns; the estimate counts the profile's reply
    time (the case's, or the matching routing rule's) from registration. No profile, no line.
    """
    if case.reply_due_at:
        return Promise(case.reply_due_at, estimated=False)
    if case.due_at:
        return Promise(case.due_at, estimated=False)
    if case.status not in (Status.REPORTED, Status.REGISTERED):
        return None

    profile = case.profile
    if profile is None:
        rule = find_rule(case)
        profile = rule.profile if rule is not None else None
    if profile is None:
        return None
    start = case.registered_at or case.reported_at
    try:
        return Promise(due_after(start, profile.reply_amount, profile.reply_unit), estimated=True)
    except ValueError:
        return None


def resolved_on_the_spot(case: Case) -> bool:
    return case.events.filter(action=Action.DISPATCHED, data__on_spot=True).exists()


def receipt_title(case: Case) -> str:
    """Each outcome its own paper: a receipt, a notice of resolution, a notice of refusal."""
    if case.status == Status.REJECTED:
        return _("不予受理告知单")
    if case.status == Status.ARCHIVED and resolved_on_the_spot(case):
        return _("当场办结告知单")
    return _("受理回执")


def next_steps(case: Case) -> str:
    if case.status == Status.REJECTED:
        return _(
            "您的诉求不属于本中心受理范围，请按下列指引向有关单位反映。如对本决定有异议，"
            "可向本中心咨询。"
        )
    if case.status == Status.ARCHIVED:
        return _("您的诉求已办结。扫描二维码可查看办理结果，并对我们的工作进行评价。")
    if case.status == Status.REPORTED:
        return _("您的诉求已登记，我们将尽快审核立案。扫描二维码可随时查询办理进度。")
    return _(
        "您的诉求已立案，我们将分派承办单位办理，并在答复期限内告知您处理情况。"
        "扫描二维码可随时查询办理进度、对办理结果进行评价。"
    )


def receipt_context(case: Case, *, size: str = DEFAULT_SIZE, for_pdf: bool = False) -> dict:
    size = clean_size(size)
    applicants = list(case.case_parties.filter(role=PartyRole.APPLICANT).order_by("sort"))
    url = tracking_url(case)
    is_rejected = case.status == Status.REJECTED
    return {
        "title": receipt_title(case),
        "case": case,
        "centre": case.owner_unit,
        "clerk_number": case.created_by.work_number if case.created_by is not None else "",
        "applicants": [
            {"name": link.masked_name, "phone": link.masked_phone} for link in applicants
        ],
        "received_at": timezone.localtime(case.reported_at),
        "promise": None if is_rejected else promised_reply(case),
        "next_steps": next_steps(case),
        "is_rejected": is_rejected,
        # Vector in the browser, a pixel-exact PNG in the PDF (see intake.qr).
        "qr_svg": None if for_pdf else qr_svg(url, title=_("扫码查询办理进度")),
        "qr_png": qr_png_data_uri(url) if for_pdf else None,
        "qr_version": qr_version(url),
        "size": size,
        "sizes": SIZES,
        "page": SIZES[size],
        "for_pdf": for_pdf,
        "printed_at": timezone.localtime(),
    }


def render_receipt_html(
    case: Case, *, size: str = DEFAULT_SIZE, for_pdf: bool = False, request=None
) -> str:
    return render_to_string(
        "intake/receipt.html", receipt_context(case, size=size, for_pdf=for_pdf), request=request
    )


# --- PDF --------------------------------------------------------------------------------------


# The receipt's fetcher and its refusal, as the rest of the product knows them.
ReceiptFetchError = pdf.DocumentFetchError
make_url_fetcher = pdf.make_url_fetcher
RENDERER = pdf.Renderer("css/receipt.css")


_WARM_UP_HTML = (
    "<h1>受理回执</h1><table><tr><th>案件编号</th><td>0123456789X</td></tr></table>"
    "<p>综治中心 年月日前 申请人 张* 138****1234 诉求类别 邻里纠纷 扫码查询办理进度</p>"
)


def warm_up() -> None:
    """Load fonts and stylesheet and lay out a sample now (worker start, benchmark), so the
    first receipt a clerk waits for does not pay for it."""
    html_to_pdf(_WARM_UP_HTML)


def html_to_pdf(html: str) -> bytes:
    """Render receipt HTML with the cached fonts, stylesheet and the restricted fetcher."""
    return RENDERER.render(html)


def render_receipt_pdf(case: Case, *, size: str = DEFAULT_SIZE) -> bytes:
    return html_to_pdf(render_receipt_html(case, size=size, for_pdf=True))


def _load(case_id: int) -> Case | None:
    return (
        Case.objects.select_related(
            "owner_unit", "created_by", "category__parent", "region", "profile"
        )
        .filter(pk=case_id)
        .first()
    )


def store_receipt_pdf(*, case_id: int) -> str | None:
    """Render the case's receipt and store it in ``Case.receipt_pdf``; returns the file name.

    Idempotent: a second call replaces the file. Rendering and file writes happen outside any
    transaction; the row is switched to the new file with a conditional update, so of two
    concurrent renders one wins and the other removes its own file.
    """
    case = _load(case_id)
    if case is None:
        return None
    pdf = render_receipt_pdf(case)
    field = case.receipt_pdf
    old = field.name or ""
    # A random part: the file name is not guessable from the case code.
    name = field.field.generate_filename(case, f"{case.code}-{secrets.token_hex(8)}.pdf")
    stored = field.storage.save(name, ContentFile(pdf), max_length=field.field.max_length)
    if not services.attach_receipt(case_id=case.pk, replaces=old, name=stored):
        field.storage.delete(stored)
        return Case.objects.filter(pk=case.pk).values_list("receipt_pdf", flat=True).first()
    if old:
        field.storage.delete(old)
    return stored


RENDER_TOPIC = "receipt.render"


def queue_receipt(case: Case) -> None:
    """Record, in the current transaction, that the receipt is to be rendered and stored."""
    outbox.enqueue(
        RENDER_TOPIC, key=f"receipt:{case.pk}:{case.event_count}", payload={"case_id": case.pk}
    )


@outbox.handler(RENDER_TOPIC)
def _render_job(payload: dict) -> None:
    """Render and store the PDF; a second run replaces the file."""
    with translation.override(settings.LANGUAGE_CODE):
        store_receipt_pdf(case_id=payload["case_id"])
